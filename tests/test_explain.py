"""`callmon explain`: a call's story from the decision record, as a terminal shows it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.cli import main
from monitor.model import Call, CallState, Intercom, PollResult, Silence
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules
from monitor.store import SqliteStore
from monitor.telemetry import Telemetry
from monitor.tracking.pipeline import Pipeline
from monitor.tracking.tracker import Tracker

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 13:00 in Berlin
RULES = """\
rules:
  - {name: gate, when: {to: missed, where: {call.intercom.id: 158}}, notify: [chat],
     title: "missed at the gate"}
  - {name: calm, when: {to: missed}, notify: [chat], throttle: {every: 1h}}
  - {name: hushed, when: {to: missed}, notify: [chat]}
"""


def ring(cid: str, door: int, state: CallState, at: datetime) -> Call:
    return Call(
        id=cid,
        state=state,
        raw_status=state.value,
        created_at=T0,
        intercom=Intercom(door, "Door"),
        marker=state.value,
        ended_at=at if state.terminal else None,
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with the stories of three calls, and a config that reads it."""
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "callmon.yaml").write_text(
        "store: sqlite:///state.db\ntimezone: Europe/Berlin\nrules: [rules.yaml]\n"
        "notifiers:\n  chat: {urls: ['json://127.0.0.1:1/hook']}\n"
    )
    monkeypatch.chdir(tmp_path)

    async def record() -> None:
        store = SqliteStore(str(tmp_path / "state.db"))
        rules = load_rules([tmp_path / "rules.yaml"], Context(notifiers=["chat"], providers=[]))
        pipeline = Pipeline(store, Telemetry(CollectorRegistry()), Engine(rules), {"chat": 1})
        pipeline.use_silences([Silence(4, "hushed", (), 0, 4e9, "door repair")])
        tracker = Tracker("door", "vms-intercom", baselined=True)
        for cid, door in (("1", 158), ("2", 180)):
            await pipeline.process(
                tracker, PollResult(calls=[ring(cid, door, CallState.RINGING, T0)]), T0
            )
            missed_at = T0 + timedelta(seconds=30)
            result = PollResult(calls=[ring(cid, door, CallState.MISSED, missed_at)])
            await pipeline.process(tracker, result, missed_at)
        # The gate's alert: refused twice, then delivered.
        (item,) = [i for i in await store.outbox() if i.rule == "gate"]
        for second in (31, 33):
            at = T0.timestamp() + second
            await store.mark_failed(item.id, at + 2, "failed: 503 Service Unavailable", at=at)
        await store.mark_sent(item.id, T0.timestamp() + 37)
        await store.close()

    asyncio.run(record())
    return tmp_path


def test_a_call_that_fired_tells_each_rule_s_decision_and_the_delivery(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "door", "1", "-c", "callmon.yaml"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "door call 1",
        "2026-11-23 13:00:00 CET  first seen ringing  (by poll)",
        "2026-11-23 13:00:30 CET  ringing → missed  (by poll)",
        "    gate    fired: sent",
        "              → chat #0: delivered after 3 attempts (decided 2026-11-23 13:00:30 CET)",
        "                  2026-11-23 13:00:31 CET failed — failed: 503 Service Unavailable",
        "                  2026-11-23 13:00:33 CET failed — failed: 503 Service Unavailable",
        "                  2026-11-23 13:00:37 CET sent",
        "    calm    fired: sent",
        "              → chat #0: waiting after 0 attempts (decided 2026-11-23 13:00:30 CET)",
        "    hushed  silenced: silence 4: door repair",
    ]


def test_a_call_a_where_condition_rejected_names_it_and_a_throttled_one_says_so(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "door", "2", "-c", "callmon.yaml"]) == 0
    out = capsys.readouterr().out
    assert "    gate    not matched: where call.intercom.id: 158 does not hold\n" in out
    assert "    calm    throttled: one alert per 3600 s; this one is counted\n" in out
    assert "    hushed  silenced: silence 4: door repair\n" in out


def test_an_unknown_call_is_one_line_on_stderr(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "door", "99", "-c", "callmon.yaml"]) == 1
    assert capsys.readouterr().err == (
        "callmon explain: no record of call '99' at 'door' (decisions are kept for 7 days)\n"
    )
