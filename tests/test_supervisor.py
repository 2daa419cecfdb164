"""The supervisor: a loop that raises is logged, counted and restarted; a silent one is reported.

The daemon-level tests run the real `Daemon` in this process, on a real SQLite file and real
HTTP, with a fault injected into its store; `/healthz` and `/metrics` are read over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import structlog
from prometheus_client import CollectorRegistry

from monitor.config import Config
from monitor.model import Silence
from monitor.runtime.daemon import Daemon
from monitor.runtime.supervisor import Backoff, Supervisor
from monitor.store import SqliteStore
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import Heartbeat
from tests.conftest import (
    free_port,
    metric_value,
    metrics,
    wait_for,
    wait_for_metric,
    wait_until,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_loop_that_raises_is_logged_counted_and_restarted() -> None:
    telemetry = Telemetry(CollectorRegistry())
    supervisor = Supervisor(telemetry, backoff=Backoff(first=0.01, cap=0.02))
    runs: list[int] = []

    async def flaky(beat: Heartbeat) -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError(f"failure {len(runs)}")
        await anyio.sleep_forever()

    async def steady(beat: Heartbeat) -> None:
        while True:
            beat()
            await anyio.sleep(0.01)

    with structlog.testing.capture_logs() as logs:
        async with anyio.create_task_group() as group:
            supervisor.start(group, "flaky", flaky, period=1.0)
            supervisor.start(group, "steady", steady, period=1.0)
            await wait_for(lambda: len(runs) == 3, timeout=5)
            assert supervisor.problems() == []
            group.cancel_scope.cancel()
    assert telemetry.task_restarts.labels("flaky")._value.get() == 2
    assert telemetry.task_restarts.labels("steady")._value.get() == 0
    failures = [e for e in logs if e["event"] == "loop failed; restarting it"]
    assert [e["error"] for e in failures] == ["RuntimeError: failure 1", "RuntimeError: failure 2"]
    assert all(e["exc_info"] is True and e["task"] == "flaky" for e in failures)


def test_a_dead_loop_and_a_silent_loop_are_problems() -> None:
    clock = Clock()
    beat = Heartbeat("poll:door", period=5.0, clock=clock)
    beat.running = True
    assert beat.problem() is None
    clock.now += 14.9  # under three periods
    assert beat.problem() is None
    clock.now += 0.2
    assert beat.problem() == "loop poll:door has not made progress for 15 s (hung?)"
    beat(period=60.0)  # a beat that announces a long wait (a backoff) is not a hang
    clock.now += 100
    assert beat.problem() is None
    beat.running, beat.error = False, "OSError: boom"
    assert beat.problem() == "loop poll:door is not running: OSError: boom"


def test_restarts_back_off_doubling_to_a_cap() -> None:
    assert [Backoff(1.0, 30.0).delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


class FaultyStore(SqliteStore):
    """A real store into which a test injects a fault that is not a store error (a bug)."""

    fault: BaseException | None = None

    async def silences(self, now: float | None = None) -> list[Silence]:
        if self.fault is not None:
            raise self.fault
        return await super().silences(now)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, FaultyStore, int]]:
    port = free_port()
    config = Config.model_validate(
        {"store": f"sqlite:///{tmp_path / 's.db'}", "listen": f"127.0.0.1:{port}", "rules": []}
    )
    store = FaultyStore(str(tmp_path / "s.db"))
    daemon = Daemon(config, [], store=store)
    task = asyncio.create_task(daemon.run())
    await wait_for(lambda: "rules" in daemon.supervisor.beats, timeout=10)
    yield daemon, store, port
    daemon.stopping.set()
    await asyncio.wait_for(task, 20)


async def health(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
        return r.status, await r.json()


async def test_a_failing_loop_turns_healthz_503_and_is_counted_on_live_metrics(
    daemon: tuple[Daemon, FaultyStore, int],
) -> None:
    _, store, port = daemon
    assert (await health(port))[0] == 200
    store.fault = RuntimeError("injected fault")
    status, body = await wait_until(lambda: health(port), lambda answer: answer[0] != 200)
    assert status == 503
    assert body["problems"] == ["loop rules is not running: RuntimeError: injected fault"]
    store.fault = None
    await wait_until(lambda: health(port), lambda answer: answer[0] == 200)  # restarted
    page = await metrics(port)
    restarts = metric_value(page, 'callmon_task_restarts_total{task="rules"}')
    print(
        f'\nlive /metrics after the injected fault: callmon_task_restarts_total{{task="rules"}} '
        f"{restarts}"
    )
    assert restarts >= 1
    assert metric_value(page, 'callmon_task_restarts_total{task="watchdog"}') == 0


async def test_a_store_that_fails_shows_on_healthz_but_not_on_readyz(
    daemon: tuple[Daemon, FaultyStore, int], tmp_path: Path
) -> None:
    d, store, port = daemon
    (tmp_path / "s.db").rename(tmp_path / "moved.db")  # the file is replaced under the daemon
    await wait_for(lambda: store.health.failing_since is not None, timeout=10)
    status, body = await health(port)
    assert status == 503
    assert any("deleted or replaced" in p for p in body["problems"])
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
        assert r.status == 200  # ready: it is up, with a store; liveness is what failed
    assert d.exit_code == 0


async def test_a_rule_file_nested_3000_deep_is_rejected_and_counted_and_the_loop_lives(
    tmp_path: Path,
) -> None:
    """Finding 10: a RecursionError escaped `reload_rules` and ended the once-a-second loop."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ok.yaml").write_text(
        "rules:\n  - {name: missed, when: {to: missed}, notify: [chat]}\n"
    )
    port = free_port()
    config = Config.model_validate(
        {
            "store": f"sqlite:///{tmp_path / 's.db'}",
            "listen": f"127.0.0.1:{port}",
            "rules": [str(rules)],
            "notifiers": {"chat": {"urls": ["json://127.0.0.1:1/x"]}},
        }
    )
    from monitor.runtime.build import load_config_rules

    daemon = Daemon(config, load_config_rules(config))
    task = asyncio.create_task(daemon.run())
    await wait_for(lambda: "rules" in daemon.supervisor.beats, timeout=10)
    (rules / "deep.yaml").write_text("rules: " + "[" * 3000 + "]" * 3000 + "\n")
    failure = 'callmon_rule_reloads_total{outcome="failure"}'
    await wait_for_metric(port, failure, 1)
    beat = daemon.supervisor.beats["rules"]
    last = beat.last
    await wait_for(lambda: beat.last > last, timeout=5)  # still beating
    assert [r.name for r in daemon.rules] == ["missed"]  # the rules in force stay
    assert (await health(port))[0] == 200
    daemon.request_reload()  # SIGHUP's path: no exception either
    await wait_for_metric(port, failure, 2)
    daemon.stopping.set()
    await asyncio.wait_for(task, 20)
