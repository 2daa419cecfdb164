"""The garbage collector kept from holding the event loop.

CPython's collector walks every object of a generation at once, on whatever callback allocated
last. A full pass walks the whole heap: at 10,000 accounts (each provider's client, poller and
task, and the sleep each poller waits in: ~800,000 objects) that was 200–470 ms every few
seconds, and every poll that was due waited (issue #27).

So objects that have lived through the young passes are frozen (`gc.freeze`): those start-up
made at once, then, after each pass of the middle generation, what survived it. The oldest
generation stays empty, and a pass of it walks only what is young.

The young passes come on a timer (`YOUNG_EVERY`), not only when the collector would start them:
it starts one once it has seen 700 more objects made than freed, and every frozen object that
dies counts as one freed. At 10,000 accounts the objects of polls a few seconds old die all the
time, so that count stayed near zero while the youngest generation grew to 100,000 objects, and
its rare passes held the loop 20–160 ms. On the timer a pass walks what the last 50 ms made.

Frozen objects are still freed when nothing refers to them (reference counting does not look at
generations); only garbage in reference cycles that was alive when frozen waits for a full pass.
That pass (all unfrozen, collected, frozen again) comes when the process's memory or open files
have grown by half since the last one (or since the first minute, start-up's own growth): the
one pause left, as long as a full pass is (0.8 s at 10,000 accounts), and rare: at 10,000
accounts a pass after start-up's first minute found 289 objects to free.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup

from monitor.runtime.supervisor import Supervisor
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import Heartbeat
from monitor.telemetry.looplag import RECENT, LoopLag

log = structlog.get_logger("monitor.runtime.memory")

TICK = 1.0
"""The sampler's heartbeat period, seconds (it beats 20 times a second)."""
YOUNG_EVERY = 0.05
"""How often the youngest generation is collected, seconds."""
MIDDLE_EVERY = 2
"""Every this many young passes, the middle generation is collected too (and what survives
it frozen): a pass of it walks what 100 ms kept (at the collector's own ratio, every tenth, it
walked 20,000 objects at 10,000 accounts: 5–25 ms)."""
CHECK_EVERY = 10.0
"""How often the process's memory is looked at, seconds."""
WARM_UP = 60.0
"""Start-up's own growth: the memory a full pass is measured against is the most the process
used in its first minute."""
GROWTH = 1.5
"""A full pass once the process's resident memory, or its open files, have grown by this
factor since the last. Not the count of frozen objects: counting them walks a million of them
at 10,000 accounts, 100–300 ms on the event loop, every check. Open files, since a socket or a
file in a frozen cycle stays open until a full pass (a failed database connection's, say)."""
FILES_SLACK = 64
"""Open files count as grown only past this many more as well (a few connections come and go)."""

Usage = tuple[int, int]
"""The process's resident memory (bytes) and open files."""


def resident() -> int:
    """The process's resident memory, bytes (Linux's /proc; elsewhere its peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def usage() -> Usage:
    """Resident memory and open files (Linux's /proc; elsewhere open files count as 0)."""
    try:
        files = len(os.listdir("/proc/self/fd"))
    except OSError:
        files = 0
    return resident(), files


def grown(now: Usage, then: Usage) -> bool:
    """Whether memory or open files grew by half (files by `FILES_SLACK` too)."""
    memory, files = now
    return memory > then[0] * GROWTH or files > max(then[1] * GROWTH, then[1] + FILES_SLACK)


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """A `gc.callbacks` entry: after each pass of the middle (or oldest) generation, freeze what
    it promoted to the oldest."""
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


class OldObjects:
    """`settle` once start-up is over; `run` as a supervised loop for the full passes."""

    def __init__(
        self,
        *,
        check_every: float = CHECK_EVERY,
        clock: Callable[[], float] = time.monotonic,
        measure: Callable[[], Usage] = usage,
    ) -> None:
        self.check_every = check_every
        self._measure = measure
        self._clock = clock
        self._settled: float | None = None
        """When start-up was over (collection is off until then: `monitor.__main__`)."""
        self._after: Usage = (0, 0)
        """The process's memory and open files after the last full pass (or start-up's first
        minute)."""
        self.full_passes = 0

    def settle(self) -> None:
        """Collect the young generations, freeze what lives, and from now on freeze what
        survives each pass of the middle generation."""
        gc.collect(1)
        gc.freeze()
        if _freeze_survivors not in gc.callbacks:
            gc.callbacks.append(_freeze_survivors)
        self._settled = self._clock()
        self._after = self._measure()

    def release(self) -> None:
        """Stop freezing survivors, and unfreeze everything (the collector's own rules again)."""
        if _freeze_survivors in gc.callbacks:
            gc.callbacks.remove(_freeze_survivors)
        gc.unfreeze()

    def step(self) -> None:
        """The full pass, when it is due."""
        if self._settled is None:
            return
        before = self._measure()
        if self._clock() - self._settled < WARM_UP:
            self._after = (max(self._after[0], before[0]), max(self._after[1], before[1]))
        elif grown(before, self._after):
            started = time.perf_counter()
            gc.unfreeze()
            gc.collect()  # frozen again by `_freeze_survivors` as it ends
            gc.freeze()
            self._after = self._measure()
            self.full_passes += 1
            log.info(
                "full garbage collection",
                bytes_before=before[0],
                bytes_after=self._after[0],
                files_before=before[1],
                files_after=self._after[1],
                seconds=round(time.perf_counter() - started, 3),
            )

    async def run(self, beat: Heartbeat) -> None:
        """A young pass every `YOUNG_EVERY` (every `MIDDLE_EVERY`th of the middle generation
        too), and every `check_every` the full pass when it is due."""
        passes = 0
        checked = self._clock()
        while True:
            await anyio.sleep(YOUNG_EVERY)
            if self._settled is not None:  # in start-up a pass would walk all it made (80 ms)
                passes += 1
                gc.collect(1 if passes % MIDDLE_EVERY == 0 else 0)
            if self._clock() - checked >= self.check_every:
                checked = self._clock()
                self.step()
                beat()


class Process:
    """What the daemon keeps of its own process: how long its event loop was held (sampled on
    every replica), and with `settle` the collector kept off the loop (`OldObjects`)."""

    def __init__(self, telemetry: Telemetry, *, settle: bool) -> None:
        self.loop_lag = LoopLag(telemetry.loop_lag.observe)
        self.old_objects = OldObjects() if settle else None

    def start(self, supervisor: Supervisor, group: TaskGroup) -> None:
        """The process's loops, under the supervisor."""
        supervisor.start(group, "event-loop", self.loop_lag.run, period=TICK)
        if self.old_objects is not None:
            supervisor.start(group, "memory", self.old_objects.run, period=2 * CHECK_EVERY)

    def ready(self, on_ready: Callable[[], None] | None) -> Callable[[], None] | None:
        """`on_ready`, then (with `settle`) what start-up made frozen."""
        old = self.old_objects
        if old is None:
            return on_ready

        def ready() -> None:
            if on_ready is not None:
                on_ready()
            old.settle()

        return ready

    def release(self) -> None:
        if self.old_objects is not None:
            self.old_objects.release()

    def overview(self) -> dict[str, float | int]:
        """The event loop's recent holds, for the page and `/api/v1/status`."""
        lag = self.loop_lag.recent()
        return {
            "longest_hold_seconds": round(lag.longest, 4),
            "holds_over_20ms": lag.over_20ms,
            "over_seconds": RECENT,
        }
