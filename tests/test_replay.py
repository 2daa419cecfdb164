"""`callmon rules test`: an hour of simulator traffic, recorded through the real pipeline on a
simulated clock, replayed through the example rules; the expected alerts were worked out by hand
from the script below (tests/fixtures/replay/hour-expected.yaml)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from monitor.rules.engine import Engine
from monitor.simulator.faults import Fault
from monitor.simulator.server import Simulator
from monitor.sources.poller import Poller
from monitor.sources.vms_intercom import VmsIntercom, VmsIntercomProvider
from monitor.store import SqliteStore
from monitor.telemetry import Telemetry
from monitor.tracking.pipeline import Pipeline
from monitor.tracking.recorder import Recorder, read
from monitor.tracking.tracker import Tracker
from tests.conftest import ROOT

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
EXPECTED = ROOT / "tests" / "fixtures" / "replay" / "hour-expected.yaml"
CONFIG = f"""
rules: [{ROOT / "rules"}]
providers:
  - {{name: front-door, type: vms-intercom, base_url: "http://127.0.0.1:1", token: x}}
notifiers:
  ops-chat: {{urls: ["json://127.0.0.1:1/hook"]}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()


def at(minute: int, second: int = 0) -> datetime:
    return START + timedelta(minutes=minute, seconds=second)


def script(sim: Simulator) -> dict[datetime, list[Callable[[], None]]]:
    """The hour, minute by minute (see the expected file for what each step should raise)."""
    vms = sim.vms
    steps: dict[datetime, list[Callable[[], None]]] = {}
    calls: dict[str, int] = {}

    def on(moment: datetime, action: Callable[[], None]) -> None:
        steps.setdefault(moment, []).append(action)

    def ring(name: str, door: int) -> Callable[[], None]:
        return lambda: calls.__setitem__(name, vms.ring(door).id)

    # A: answered quickly at the front door, a short talk.
    on(at(2), ring("A", 158))
    on(at(2, 10), lambda: vms.answer(calls["A"]))
    on(at(3), lambda: vms.end(calls["A"]))
    # B: rings out at the gate after 60 s.
    on(at(5), ring("B", 180))
    on(at(6), lambda: vms.miss(calls["B"]))
    # C: a long conversation at the back door (6m 10s).
    on(at(10), ring("C", 201))
    on(at(10, 20), lambda: vms.answer(calls["C"]))
    on(at(16, 30), lambda: vms.end(calls["C"]))
    # The gate goes offline for 7 minutes.
    on(at(20), lambda: setattr(vms.doors[180], "is_online", False))
    on(at(27), lambda: setattr(vms.doors[180], "is_online", True))
    # A stuck button at the front door: six rings 20 s apart, each missed after 10 s.
    for i in range(6):
        start = at(30) + timedelta(seconds=20 * i)
        on(start, ring(f"S{i}", 158))
        on(start + timedelta(seconds=10), lambda i=i: vms.miss(calls[f"S{i}"]))
    # D: answered only after 50 s.
    on(at(40), ring("D", 158))
    on(at(40, 50), lambda: vms.answer(calls["D"]))
    on(at(42), lambda: vms.end(calls["D"]))
    # The API fails for three minutes; a call is missed at the gate meanwhile.
    on(at(50), lambda: vms.faults.add(Fault("status", status=503), times=1000))
    on(at(51), ring("E", 180))
    on(at(51, 30), lambda: vms.miss(calls["E"]))
    on(at(53), lambda: vms.faults.clear())
    return steps


@pytest.fixture
async def recorded(sim: Simulator, tmp_path: Path) -> Path:
    clock = Clock()
    sim.vms.clock = clock.seconds
    sim.traffic.seed_history(20)
    path = tmp_path / "hour.jsonl"
    recorder = Recorder(path)
    store = SqliteStore(str(tmp_path / "state.db"))
    telemetry = Telemetry(CollectorRegistry())
    pipeline = Pipeline(store, telemetry, Engine([]), {}, sinks=[recorder.record])
    settings = VmsIntercomProvider.model_validate(
        {
            "name": "front-door",
            "type": "vms-intercom",
            "base_url": sim.base_url,
            "token": sim.vms.token,
            "poll_interval": "5s",
            "intercoms": [158, 180, 201],
            "max_requests_per_second": 10000,
        }
    )
    steps = script(sim)
    async with aiohttp.ClientSession() as session:
        client = VmsIntercom(settings, session)
        client.http.RETRY_DELAYS = ()  # type: ignore[misc]
        tracker = Tracker("front-door", "vms-intercom")
        on_result, on_health = pipeline.callbacks(tracker)
        poller = Poller(client, settings, tracker, on_result, on_health, telemetry, clock=clock)
        while clock.now <= at(60):
            for action in steps.get(clock.now, []):
                action()
            client.doors.due_now()  # the doors' status is polled with every call poll
            await poller.poll_once()
            clock.now += timedelta(seconds=5)
    recorder.close()
    await store.close()
    return path


def callmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


async def test_an_hour_of_traffic_replays_to_the_alerts_worked_out_by_hand(
    recorded: Path, tmp_path: Path
) -> None:
    kinds = [(r.event.kind, r.event.to_state) for r in read(recorded)]
    assert ("provider", "down") in kinds
    assert ("intercom", "offline") in kinds
    config = tmp_path / "callmon.yaml"
    config.write_text(CONFIG)
    result = callmon(
        "rules",
        "test",
        str(ROOT / "rules"),
        "--events",
        str(recorded),
        "-c",
        str(config),
        "--expect",
        str(EXPECTED),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "# ok: 16 alerts as expected"
    lines = result.stdout.splitlines()
    assert lines[0] == "2026-11-23T12:05:45Z  ringing-too-long  Gate has been ringing for 45s"


async def test_a_wrong_expectation_fails_with_the_difference(
    recorded: Path, tmp_path: Path
) -> None:
    config = tmp_path / "callmon.yaml"
    config.write_text(CONFIG)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        EXPECTED.read_text().replace("Missed call at Gate", "Missed call at Garage", 1)
    )
    result = callmon(
        "rules",
        "test",
        str(ROOT / "rules"),
        "--events",
        str(recorded),
        "-c",
        str(config),
        "--expect",
        str(wrong),
    )
    assert result.returncode == 1
    assert "title 'Missed call at Gate' != 'Missed call at Garage'" in result.stderr
