"""A hostile provider and careless rule files: nothing freezes callmon, fills its memory, or
makes a credential leak out of it (issue: "Hostile input cannot hurt callmon or leak through it").
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from monitor.cli import main
from monitor.simulator.faults import Fault
from monitor.simulator.server import Simulator
from tests import bombs
from tests.conftest import (
    DaemonProcess,
    Receiver,
    free_port,
    metric_value,
    metrics,
    polls,
    wait_for,
)
from tests.test_e2e import start_daemon, wait_ready

HOOK_PASSWORD = "hookPa55word-7e1"


def forms(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode().rstrip("=")]


async def test_credentials_echoed_by_a_provider_never_leave_callmon(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """Finding 1: each API answers 401 with a body that quotes the request's `Authorization`
    header; the provider-down notification, the outbox, the log, /readyz and the recording must
    not carry any credential, in any encoding (Bandwidth's is Basic: base64 of token:secret)."""
    sim.bandwidth.list_limit.count = 1000
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: down\n    when: {kind: provider, to: down}\n    notify: [chat]\n"
        "    title: '{{ provider }} down'\n    body: '{{ reason }}'\n"
    )
    port = free_port()
    hook = receiver.url.replace("json://", f"json://callmon:{HOOK_PASSWORD}@")
    providers = "\n".join(
        "  - {" + ", ".join(f"{k}: '{v}'" for k, v in p.items()) + "}"
        for p in sim.provider_configs(poll_interval="300ms")
    )
    config = (
        f"store: sqlite:///{tmp_path / 'state.db'}\nlisten: 127.0.0.1:{port}\n"
        f"rules: [{rules}]\nproviders:\n{providers}\n"
        f"notifiers:\n  chat: {{urls: ['{hook}']}}\n"
    )
    record = tmp_path / "events.jsonl"
    daemon = daemon_factory(config)
    daemon.args = ("--record", str(record))
    await daemon.start()
    await wait_ready(port)
    await wait_for(lambda: daemon.logs().count("baseline taken") == 4, timeout=20)
    for api in (sim.vms, sim.bird, sim.cinnox, sim.bandwidth):
        api.faults.add(Fault("echo"), times=3)
    answers: list[dict[str, Any]] = []
    names = {"front-door", "support", "contact-centre", "sales"}

    def reported() -> set[str]:
        return {n for a in answers for n, p in a["providers"].items() if p.get("error")}

    async with aiohttp.ClientSession() as s:
        while reported() != names:  # every provider down once, with its reason
            async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                answers.append(await r.json())
            assert len(answers) < 400, answers[-1]
            await asyncio.sleep(0.05)
    readyz = json.dumps(answers)
    await wait_for(lambda: len(receiver.received) >= 4, timeout=20)
    await polls(sim, 3)
    assert await daemon.terminate() == 0

    secrets = [
        sim.vms.token,
        sim.bird.access_key,
        sim.cinnox.token,
        sim.bandwidth.api_token,
        sim.bandwidth.api_secret,
        f"{sim.bandwidth.api_token}:{sim.bandwidth.api_secret}",
        HOOK_PASSWORD,
    ]
    db = sqlite3.connect(tmp_path / "state.db")
    rows = db.execute("SELECT title, body, last_error FROM outbox")
    outbox = "\n".join(f"{t} {b} {e}" for t, b, e in rows)
    db.close()
    texts = {
        "notifications": "\n".join(str(a.body) for a in receiver.attempts),
        "outbox": outbox,
        "log": daemon.logs(),
        "/readyz": readyz,
        "recording": record.read_text(),
    }
    assert "credentials rejected (HTTP 401): invalid credentials: " in texts["notifications"]
    assert "***" in texts["notifications"]
    for where, text in texts.items():
        for secret in secrets:
            for form in forms(secret):
                assert form not in text, f"{where} carries a form of a secret: {form}"


# --- a provider dating its records in the future (finding 3)


async def test_a_record_dated_in_the_future_never_moves_the_window_past_now(
    sim: Simulator,
) -> None:
    """Bandwidth lists newest first: records dated tomorrow and in the year 9999 lead the list.
    The stored mark stays at the present, so the calls that follow are still seen."""
    from datetime import UTC, datetime, timedelta

    from monitor.sources.bandwidth import Bandwidth
    from monitor.tracking.tracker import Tracker
    from tests.test_bandwidth import sim_settings

    sim.bandwidth.list_limit.count = 1000
    async with aiohttp.ClientSession() as session:
        client = Bandwidth(sim_settings(sim, max_requests_per_second=1000), session)
        tracker = Tracker("sales", "bandwidth")
        tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
        now = sim.bandwidth.clock()
        for at in (now + 86400, datetime(9999, 12, 31, tzinfo=UTC).timestamp()):
            sim.bandwidth.hang_up(sim.bandwidth.start_call(at=at))
        tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
        mark = datetime.fromisoformat(tracker.cursor["high_water"].replace("Z", "+00:00"))
        assert mark <= datetime.now(UTC) + timedelta(seconds=61)
        missed = sim.bandwidth.start_call()
        sim.bandwidth.no_answer(missed)
        later = tracker.diff(await client.poll(tracker), datetime.now(UTC))
        assert [(e.call.id, e.to_state) for e in later.events if e.call] == [(missed, "missed")]


# --- bodies and door counts that would exhaust memory or the request budget (7, 8)


async def test_an_endless_body_fails_the_poll_without_being_read_whole(sim: Simulator) -> None:
    from monitor.sources.base import BadResponse
    from monitor.sources.vms_intercom import VmsIntercom
    from monitor.tracking.tracker import Tracker
    from tests.test_vms_intercom import settings as vms_settings

    sim.vms.faults.add(Fault("huge", size=1_500_000_000))
    async with aiohttp.ClientSession() as session:
        client = VmsIntercom(vms_settings(sim.base_url, max_response_size="4MiB"), session)
        try:
            await client.poll(Tracker("front-door", "vms-intercom"))
        except BadResponse as exc:
            problem = str(exc)
        else:
            problem = "no error"
    assert problem == (
        "provider front-door: response larger than 4 MiB (max_response_size); refused"
    )
    assert sim.vms.faults.served_bytes < 64 * 1024 * 1024  # the client hung up early


async def test_thousands_of_doors_keep_door_series_bounded_and_calls_first(
    sim: Simulator, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from prometheus_client import CollectorRegistry

    from monitor.rules.engine import Engine
    from monitor.sources.vms_intercom import VmsIntercom
    from monitor.store import SqliteStore
    from monitor.telemetry import Telemetry
    from monitor.tracking.pipeline import Pipeline
    from monitor.tracking.tracker import Tracker
    from tests.test_vms_intercom import settings as vms_settings

    store = SqliteStore(str(tmp_path / "s.db"))
    telemetry = Telemetry(CollectorRegistry())
    telemetry.limit_doors("front-door", 200)
    pipeline = Pipeline(store, telemetry, Engine([]), {})
    tracker = Tracker("front-door", "vms-intercom")
    settings = vms_settings(sim.base_url, max_requests_per_second=10000, max_pages=400)
    async with aiohttp.ClientSession() as session:
        client = VmsIntercom(settings, session)
        await pipeline.process(tracker, await client.poll(tracker), datetime.now(UTC))
        for door in range(5000):
            sim.vms.add_door(10_000 + door, f"Door {door}")
            sim.vms.miss(sim.vms.ring(10_000 + door).id)
        for _ in range(3):
            before = sim.vms.shows_requests
            await pipeline.process(tracker, await client.poll(tracker), datetime.now(UTC))
            assert sim.vms.shows_requests - before <= 2  # door status never crowds out calls
    series = [
        s
        for metric in telemetry.registry.collect()
        if metric.name in ("callmon_intercom_online", "callmon_intercom_calls")
        for s in metric.samples
        if s.labels.get("provider") == "front-door"
    ]
    doors = {s.labels["intercom"] for s in series}
    assert len(doors) <= 201  # 200 doors of their own and "other"
    assert "other" in doors
    calls = sum(s.value for s in series if s.name == "callmon_intercom_calls_total")
    assert calls == 5000  # every call counted, the overflow under "other"
    await store.close()


# --- a slow but working notifier (finding 9)


async def test_a_slow_but_working_notifier_gets_each_message_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    """apprise gave up after its own 4 s whatever the notifier's timeout: a target answering
    after 4.5 s got every message again and again."""
    from prometheus_client import CollectorRegistry

    from monitor.delivery.sender import Sender
    from monitor.delivery.worker import RetryPolicy, Worker
    from monitor.store import SqliteStore
    from monitor.telemetry import Telemetry
    from tests.test_delivery import delivery

    store = SqliteStore(str(tmp_path / "s.db"))
    telemetry = Telemetry(CollectorRegistry())
    worker = Worker(
        "chat",
        0,
        Sender(receiver.url, timeout=8),
        store,
        telemetry,
        policy=RetryPolicy(first=0.1, cap=0.2),
    )
    receiver.slow = 4.5
    import time

    await store.enqueue([delivery("a", "slow one", time.time())])
    task = asyncio.create_task(worker.run())
    await wait_for(lambda: receiver.titles() == ["slow one"], timeout=20)
    await wait_for(lambda: telemetry.notifications.labels("chat", "sent")._value.get() == 1)
    worker.stop()
    await task
    assert [a.outcome for a in receiver.attempts] == ["accepted"]
    assert telemetry.notifications.labels("chat", "failed")._value.get() == 0
    await store.close()


# --- rule files that attack the daemon (findings 4, 5, 6)


def rule_file(name: str, template: str) -> str:
    return (
        "rules:\n"
        f"  - name: {name}\n"
        "    when: {to: missed}\n"
        "    notify: [chat]\n"
        f"    title: {json.dumps(template)}\n"
    )


CONFIG = "notifiers:\n  chat: {urls: ['json://127.0.0.1:1/x']}\nrules: [rules]\n"


@pytest.mark.parametrize(
    ("name", "template"), bombs.CHECK_REFUSES, ids=[b[0] for b in bombs.CHECK_REFUSES]
)
def test_check_refuses_a_template_certain_to_exceed_the_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, template: str
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bomb.yaml").write_text(rule_file("bomb", template))
    (tmp_path / "callmon.yaml").write_text(CONFIG)
    assert main(["check", "-c", str(tmp_path / "callmon.yaml")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{tmp_path / 'rules' / 'bomb.yaml'}:5:12: ")
    assert "title: template error: exceeds the template bounds: " in line


@pytest.mark.parametrize(
    ("name", "pattern"), bombs.REGEX_REFUSED, ids=[b[0] for b in bombs.REGEX_REFUSED]
)
def test_check_refuses_a_pattern_only_a_backtracking_engine_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, pattern: str
) -> None:
    (tmp_path / "rules").mkdir()
    rule = rule_file("r", "x").replace(
        "when: {to: missed}",
        "when: {to: missed, where: {call.from: {regex: " + json.dumps(pattern) + "}}}",
    )
    (tmp_path / "rules" / "r.yaml").write_text(rule)
    (tmp_path / "callmon.yaml").write_text(CONFIG)
    assert main(["check", "-c", str(tmp_path / "callmon.yaml")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{tmp_path / 'rules' / 'r.yaml'}:3:")
    assert "invalid regex" in line
    assert "backtracking" in line


@pytest.mark.parametrize(
    ("name", "text"), bombs.yaml_bombs(), ids=[b[0] for b in bombs.yaml_bombs()]
)
def test_check_refuses_yaml_that_would_exhaust_memory_with_a_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bomb.yaml").write_text(text)
    (tmp_path / "callmon.yaml").write_text(CONFIG)
    assert main(["check", "-c", str(tmp_path / "callmon.yaml")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{tmp_path / 'rules' / 'bomb.yaml'}:")
    assert any(
        reason in line
        for reason in ("aliases expand to more than", "nested deeper than", "larger than 1024 KiB")
    ), line


@pytest.mark.parametrize(
    ("escaped", "reason"),
    [
        ("\\ud800x", "\\ud800 is half of a surrogate pair, not a character"),
        ("\\ud83d\\ude00", "write \\U0001f600 (or the character itself), not a surrogate pair"),
    ],
)
def test_check_refuses_a_surrogate_escape_with_a_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], escaped: str, reason: str
) -> None:
    """Found by `make fuzz`: a `\\ud800` escape reached the rule's fingerprint as text UTF-8
    cannot hold, and crashed the loader. YAML does not join surrogate pairs as JSON does."""
    (tmp_path / "rules").mkdir()
    text = rule_file("r", "placeholder").replace('"placeholder"', f'"{escaped}"')
    (tmp_path / "rules" / "r.yaml").write_text(text)
    (tmp_path / "callmon.yaml").write_text(CONFIG)
    assert main(["check", "-c", str(tmp_path / "callmon.yaml")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{tmp_path / 'rules' / 'r.yaml'}:"), line
    assert line.endswith(reason), line


# A bomb that reaches the recursion limit can have the collector run a weakref callback at that
# depth, which then fails too and is reported as "Exception ignored in … WeakKeyDictionary"
# (seen once in CI): the render's failure is asserted below, the callback's is not the subject.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_every_render_bomb_fails_alone_and_the_alert_still_goes_out() -> None:
    """Each template that can only fail at render time, against a real event: the engine
    returns every alert (a fallback text where the template failed) and names each failure."""
    from datetime import UTC, datetime

    from monitor.model import Call, CallState, Event, EventKind
    from monitor.rules.engine import Engine
    from monitor.rules.loader import Context, load_document
    from monitor.text.yamldoc import parse

    rules_text = (
        "rules:\n"
        + "".join(
            rule_file(f"bomb-{i}", template).removeprefix("rules:\n")
            for i, (_, template) in enumerate(bombs.RENDER_FAILS)
        )
        + rule_file("legit", "Missed call {{ call.id }}").removeprefix("rules:\n")
    )
    rules = load_document(parse(rules_text, "r.yaml"), Context(notifiers=["chat"], providers=None))
    at = datetime(2026, 11, 23, 12, tzinfo=UTC)
    call = Call(id="c1", state=CallState.MISSED, raw_status="missed", created_at=at)
    event = Event(
        kind=EventKind.TRANSITION,
        provider="p",
        provider_type="bird",
        from_state="ringing",
        to_state="missed",
        at=at,
        call=call,
    )
    outcome = Engine(rules).process([event], at)
    titles = {a.rule: a.title for a in outcome.alerts}
    assert titles["legit"] == "Missed call c1"
    assert len(titles) == len(bombs.RENDER_FAILS) + 1  # every rule's alert goes out
    failed = sorted(rule for rule, _ in outcome.errors)
    assert failed == sorted(f"bomb-{i}" for i in range(len(bombs.RENDER_FAILS)))
    for i in range(len(bombs.RENDER_FAILS)):
        assert titles[f"bomb-{i}"] == f"bomb-{i} (its title could not be rendered)"


def test_a_hostile_caller_against_a_catastrophic_pattern_is_linear() -> None:
    from monitor.rules.regex import compile_linear

    found = compile_linear(bombs.REGEX_LINEAR)
    assert found(bombs.HOSTILE_CALLER) is False
    assert found("+4930123") is True


async def test_the_daemon_survives_every_render_bomb_and_a_hostile_caller(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """The real daemon with every render-time bomb loaded, and a regex that a backtracking
    engine would spend minutes on: a missed call from a hostile caller id gets every alert
    out (fallback texts where a template failed), each failure counted, and the daemon stays
    healthy."""
    rules = tmp_path / "rules.yaml"
    body = "".join(
        rule_file(f"bomb-{i}", template).removeprefix("rules:\n")
        for i, (_, template) in enumerate(bombs.RENDER_FAILS)
    )
    hostile = (
        rule_file("hostile", "caller {{ call.from }}")
        .removeprefix("rules:\n")
        .replace(
            "when: {to: missed}",
            "when: {to: missed, where: {call.from: {not: {regex: "
            + json.dumps(bombs.REGEX_LINEAR)
            + "}}}}",
        )
    )
    rules.write_text("rules:\n" + body + hostile)
    port = free_port()
    providers = "\n".join(
        "  - {" + ", ".join(f"{k}: '{v}'" for k, v in p.items()) + "}"
        for p in sim.provider_configs(poll_interval="200ms")
        if p["type"] == "bird"
    )
    config = (
        f"store: sqlite:///{tmp_path / 'state.db'}\nlisten: 127.0.0.1:{port}\n"
        f"rules: [{rules}]\nproviders:\n{providers}\n"
        f"notifiers:\n  chat: {{urls: ['{receiver.url}']}}\n"
    )
    daemon = daemon_factory(config)
    await daemon.start()
    await wait_ready(port)
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)
    call = sim.bird.start_call()
    sim.bird.calls[call].from_ = bombs.HOSTILE_CALLER
    sim.bird.no_answer(call)
    expected = len(bombs.RENDER_FAILS) + 1
    await wait_for(lambda: len(receiver.received) >= expected, timeout=30)
    assert f"caller {bombs.HOSTILE_CALLER}" in receiver.titles()
    page = await metrics(port)
    for i in range(len(bombs.RENDER_FAILS)):
        assert metric_value(page, f'callmon_rule_errors_total{{rule="bomb-{i}"}}') == 1
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
        assert r.status == 200
    assert await daemon.terminate() == 0


async def test_a_malformed_request_to_listen_is_one_json_line(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """aiohttp wrote a traceback, not JSON, for every malformed request."""
    from tests.test_e2e import config_for

    port = free_port()
    daemon = await start_daemon(
        daemon_factory, config_for(sim, receiver, port, tmp_path / "state.db"), port, sim.vms.token
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    await writer.drain()
    assert (await reader.read(12)) == b"HTTP/1.0 400"
    writer.close()
    await wait_for(lambda: "malformed HTTP request refused" in daemon.logs(), timeout=10)
    assert await daemon.terminate() == 0
    (line,) = [x for x in daemon.logs().splitlines() if "malformed HTTP request" in x]
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "aiohttp.server"
    assert "Traceback" not in daemon.logs()
