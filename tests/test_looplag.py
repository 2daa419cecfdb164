"""How long the event loop was held: the sampler on an injected clock, the metric and the page
of a daemon whose loop a test holds, and `--debug`'s naming of the callback that held it; and
the garbage collector kept off the loop (young passes on a timer, old objects frozen, their
cycles collected when memory grew by half)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import socket
import time
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog

from monitor.config import Config
from monitor.runtime.daemon import Daemon
from monitor.runtime.memory import FILES_SLACK, WARM_UP, OldObjects
from monitor.telemetry.heartbeat import Heartbeat
from monitor.telemetry.looplag import RECENT, SLOT, LoopLag, name_slow_callbacks
from tests.conftest import free_port, metric_value, metrics, wait_for, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_recent_figures_cover_the_last_ten_minutes() -> None:
    clock, seen = Clock(), list[float]()
    lag = LoopLag(seen.append, clock=clock)
    assert lag.recent().longest == 0.0
    lag.record(0.004)
    lag.record(0.3)
    clock.now += SLOT
    lag.record(0.03)
    lag.record(0.001)
    assert seen == [0.004, 0.3, 0.03, 0.001]  # every sample reaches the histogram
    recent = lag.recent()
    assert (recent.longest, recent.over_20ms, recent.samples) == (0.3, 2, 4)
    clock.now += RECENT - SLOT / 2  # the first slot has left the window, the second not yet
    recent = lag.recent()
    assert (recent.longest, recent.over_20ms, recent.samples) == (0.03, 1, 2)
    clock.now += SLOT
    assert lag.recent().samples == 0


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, int]]:
    port = free_port()
    config = Config.model_validate(
        {"store": f"sqlite:///{tmp_path / 's.db'}", "listen": f"127.0.0.1:{port}", "rules": []}
    )
    daemon = Daemon(config, [])
    task = asyncio.create_task(daemon.run())
    await wait_for(lambda: "event-loop" in daemon.supervisor.beats, timeout=10)
    yield daemon, port
    daemon.stopping.set()
    await asyncio.wait_for(task, 20)


def held_over(body: str, seconds: str) -> float:
    """Samples of `callmon_event_loop_lag_seconds` above the bucket bound `seconds`."""
    name = "callmon_event_loop_lag_seconds"
    return metric_value(body, f"{name}_count") - metric_value(
        body, f'{name}_bucket{{le="{seconds}"}}'
    )


async def test_a_held_loop_shows_in_the_metric_the_page_and_the_api(
    daemon: tuple[Daemon, int],
) -> None:
    _, port = daemon
    count = "callmon_event_loop_lag_seconds_count"
    await wait_until(lambda: metrics(port), lambda b: metric_value(b, count) > 0)  # it samples

    time.sleep(0.4)  # noqa: ASYNC251 (the point: holds the loop the daemon runs on)

    await wait_until(lambda: metrics(port), lambda b: held_over(b, "0.25") >= 1)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/") as r:
            page = await r.text()
        async with s.get(f"http://127.0.0.1:{port}/api/v1/status") as r:
            status = await r.json()
    found = re.search(r"event loop was held at most <span[^>]*>(\d+) ms</span>", page)
    assert found is not None, page
    assert int(found.group(1)) >= 350
    assert re.search(r"[1-9]\d* times over 20 ms", page)
    assert status["event_loop"]["longest_hold_seconds"] >= 0.35
    assert status["event_loop"]["holds_over_20ms"] >= 1


async def test_debug_names_the_callback_that_held_the_loop_and_where() -> None:
    async def holder() -> None:
        await asyncio.sleep(0)
        time.sleep(0.15)  # noqa: ASYNC251 (the hold, between the awaits around it)
        await asyncio.sleep(0)

    async def quick() -> None:
        await asyncio.sleep(0)

    undo = name_slow_callbacks(threshold=0.1)
    try:
        with structlog.testing.capture_logs() as logs:
            await asyncio.gather(asyncio.create_task(holder(), name="the-holder"), quick())
    finally:
        undo()
    # Only the holder's step is named here; on a loaded machine another callback may be too.
    held = [
        e
        for e in logs
        if e["event"] == "event loop held"
        and e["callback"].startswith("task the-holder ")
        and e["seconds"] >= 0.15
    ]
    assert len(held) == 1, logs
    entry = held[0]
    assert entry["callback"] == (
        "task the-holder (test_debug_names_the_callback_that_held_the_loop_and_where"
        ".<locals>.holder)"
    )
    source = Path(__file__).read_text().splitlines()  # noqa: ASYNC240 (this file)
    lines = {}
    for key in ("resumed_at", "suspended_at"):
        path, line = entry[key].rsplit(":", 1)
        assert path == __file__
        lines[key] = int(line)
        assert source[lines[key] - 1].strip() == "await asyncio.sleep(0)"
    assert "time.sleep(0.15)" in source[lines["resumed_at"]]  # the line after it resumed
    assert lines["suspended_at"] == lines["resumed_at"] + 2

    with structlog.testing.capture_logs() as logs:  # undone: nothing is timed any more
        await holder()
    assert logs == []


def test_debug_on_the_command_line_names_slow_callbacks() -> None:
    from monitor.cli import main

    original = asyncio.Handle._run
    try:
        main(["--debug", "config", "schema"])
        assert asyncio.Handle._run is not original
    finally:
        asyncio.Handle._run = original  # type: ignore[method-assign]
    main(["config", "schema"])
    assert asyncio.Handle._run is original


class Node:
    me: Node


def test_survivors_are_frozen_and_their_cycles_wait_for_memory_grown_by_half() -> None:
    clock, memory = Clock(), [100_000_000]
    old = OldObjects(clock=clock, measure=lambda: (memory[0], 10))
    old.settle()
    try:
        node = Node()
        node.me = node  # a cycle: only the collector frees it
        probe = weakref.ref(node)
        frozen = gc.get_freeze_count()
        gc.collect(1)  # a pass of the middle generation: its survivors are frozen
        assert gc.get_freeze_count() > frozen
        del node
        gc.collect()  # a full pass leaves frozen objects alone: no pass walks them any more
        assert probe() is not None
        clock.now += 10 * 86400.0
        old.step()
        assert probe() is not None  # no pass for time alone: each holds the loop
        assert old.full_passes == 0
        memory[0] = 150_000_001
        old.step()  # unfrozen, collected, the rest frozen again
        assert probe() is None
        assert old.full_passes == 1
        assert gc.get_freeze_count() > 0
    finally:
        old.release()
    assert gc.get_freeze_count() == 0


def test_memory_grown_by_half_gets_its_full_pass_after_start_ups_first_minute() -> None:
    clock, memory = Clock(), [100_000_000]
    old = OldObjects(clock=clock, measure=lambda: (memory[0], 10))
    old.settle()
    try:
        memory[0] = 200_000_000  # start-up's own growth: the first polls, the first calls
        old.step()
        assert old.full_passes == 0
        clock.now += WARM_UP
        memory[0] = 300_000_000
        old.step()
        assert old.full_passes == 0  # grown by half exactly since the first minute: not yet
        memory[0] = 300_000_001
        old.step()
        assert old.full_passes == 1
        old.step()
        assert old.full_passes == 1  # measured afresh after the pass
    finally:
        old.release()


class Holder:
    """A socket in a reference cycle: closed only when the collector frees the cycle."""

    def __init__(self) -> None:
        self.me = self
        self.sock = socket.socket()


def test_sockets_held_by_frozen_cycles_get_their_full_pass() -> None:
    clock = Clock()
    old = OldObjects(clock=clock)
    old.settle()
    try:
        clock.now += WARM_UP
        old.step()
        before = len(os.listdir("/proc/self/fd"))
        holders = [Holder() for _ in range(FILES_SLACK * 2)]
        gc.collect(1)  # frozen, sockets and all
        probes = [weakref.ref(h) for h in holders]
        del holders
        gc.collect()
        assert len(os.listdir("/proc/self/fd")) >= before + FILES_SLACK * 2  # still open
        old.step()  # memory barely grew; open files did
        assert old.full_passes == 1
        assert all(p() is None for p in probes)
        assert len(os.listdir("/proc/self/fd")) < before + FILES_SLACK
    finally:
        old.release()


async def test_young_passes_come_on_a_timer_though_old_deaths_keep_the_count_down() -> None:
    """Every frozen object that dies lowers the count that starts a young pass: objects made
    one for each old one freed never start one, and the youngest generation grows (at 10,000
    accounts to 100,000 objects, a pass of 20–160 ms). The memory loop's timer walks it."""
    old = OldObjects()
    beat = Heartbeat("memory", 20.0)
    old.settle()
    task: asyncio.Task[None] | None = None
    try:
        doomed = [[] for _ in range(20_000)]
        gc.collect(1)  # frozen
        gc.collect(0)
        kept = []
        for _ in range(20_000):
            kept.append([])
            doomed.pop()  # one old freed for each young made
        assert len(gc.get_objects(0)) > 15_000  # the collector started no pass
        task = asyncio.create_task(old.run(beat))
        await wait_for(lambda: len(gc.get_objects(0)) < 1_000, timeout=10)
        assert len(kept) == 20_000
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        old.release()


async def test_the_daemon_freezes_what_start_up_made_and_runs_the_memory_loop(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = Config.model_validate(
        {"store": f"sqlite:///{tmp_path / 's.db'}", "listen": f"127.0.0.1:{port}", "rules": []}
    )
    daemon = Daemon(config, [], settle=True)
    task = asyncio.create_task(daemon.run())
    try:
        await wait_for(lambda: "memory" in daemon.supervisor.beats, timeout=10)
        await wait_for(lambda: gc.get_freeze_count() > 0, timeout=10)
        assert gc.callbacks[-1].__name__ == "_freeze_survivors"
        assert daemon.supervisor.problems() == []
    finally:
        daemon.stopping.set()
        await asyncio.wait_for(task, 20)
    assert gc.get_freeze_count() == 0  # released as the daemon stopped
    assert all(c.__name__ != "_freeze_survivors" for c in gc.callbacks)
