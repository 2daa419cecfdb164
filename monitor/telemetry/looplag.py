"""How long the event loop was held: a tiny task asks to wake every `PERIOD` and measures how
late it woke. While a callback holds the loop (a long computation, a blocking call) nothing
else runs: not a poll that is due, not a notification, not `/healthz`; the lateness of this
task is how long they all waited. Every sample goes to `callmon_event_loop_lag_seconds`, and
the page shows the longest in recent minutes.

With `--debug`, `name_slow_callbacks` logs each callback that held the loop longer than
`SLOW_CALLBACK` with where it ran: the task's coroutine and the lines it resumed at and
suspended at (asyncio's own debug mode does the like, at the cost of debug mode everywhere).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import structlog

from monitor.telemetry.heartbeat import Heartbeat

log = structlog.get_logger("monitor.telemetry.looplag")
PLUMBING = tuple(str(Path(m.__file__ or "").parent) + os.sep for m in (asyncio, anyio))
"""Where the event loop's and the task groups' own frames live: `_where` looks past them."""

PERIOD = 0.05
"""How often the loop's lag is sampled: a hold longer than this is always seen, whole."""
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""`callmon_event_loop_lag_seconds`'s buckets: 20 ms is what no callback of callmon's should
exceed, 100 ms what `--debug` names."""
RECENT = 600.0
"""How far back the page's figures look, seconds."""
SLOT = 10.0
SLOW_CALLBACK = 0.1
"""With `--debug`, a callback that holds the loop longer than this is logged by name."""


@dataclass
class Recent:
    """The longest lag and the count of samples over 20 ms in the last `RECENT` seconds."""

    longest: float
    over_20ms: int
    samples: int


class LoopLag:
    """The sampler: `run` forever, feeding `observe` (the histogram) with each sample's lag and
    keeping ten-second slots of the longest for `recent`."""

    def __init__(
        self,
        observe: Callable[[float], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        period: float = PERIOD,
    ) -> None:
        self._observe = observe
        self._clock = clock
        self.period = period
        self._slots: deque[list[float]] = deque(maxlen=round(RECENT / SLOT))
        """[slot start, longest lag, samples over 20 ms, samples], oldest first."""

    def record(self, lag: float) -> None:
        """One sample: the loop woke this task `lag` seconds after it asked to."""
        self._observe(lag)
        now = self._clock()
        if not self._slots or now - self._slots[-1][0] >= SLOT:
            self._slots.append([now, 0.0, 0, 0])
        slot = self._slots[-1]
        slot[1] = max(slot[1], lag)
        slot[2] += lag > 0.02
        slot[3] += 1

    def recent(self) -> Recent:
        """The figures of the slots that began in the last `RECENT` seconds."""
        since = self._clock() - RECENT
        kept = [s for s in self._slots if s[0] >= since]
        return Recent(
            longest=max((s[1] for s in kept), default=0.0),
            over_20ms=int(sum(s[2] for s in kept)),
            samples=int(sum(s[3] for s in kept)),
        )

    async def run(self, beat: Heartbeat) -> None:
        """Sample forever: sleep `period`, record how late the wake-up came."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.period)
            self.record(max(0.0, loop.time() - asked - self.period))
            beat()


def name_slow_callbacks(threshold: float = SLOW_CALLBACK) -> Callable[[], None]:
    """Log every callback that holds the event loop longer than `threshold` (`--debug`);
    returns what undoes it. Wraps `asyncio.Handle._run`, through which every callback and
    every step of every task runs."""
    handle = asyncio.Handle
    original = handle._run

    def timed(self: asyncio.Handle) -> None:
        resumed = _where(self)
        started = time.perf_counter()
        original(self)
        held = time.perf_counter() - started
        if held > threshold:
            log.warning(
                "event loop held",
                seconds=round(held, 3),
                callback=_describe(self),
                resumed_at=resumed,
                suspended_at=_where(self),
            )

    handle._run = timed  # type: ignore[method-assign]

    def undo() -> None:
        handle._run = original  # type: ignore[method-assign]

    return undo


def _task(h: asyncio.Handle) -> asyncio.Task[Any] | None:
    owner = getattr(h._callback, "__self__", None)  # type: ignore[attr-defined]
    return owner if isinstance(owner, asyncio.Task) else None


def _describe(h: asyncio.Handle) -> str:
    task = _task(h)
    if task is None:
        callback = h._callback  # type: ignore[attr-defined]
        return getattr(callback, "__qualname__", None) or repr(callback)
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or repr(coro)
    return f"task {task.get_name()} ({name})"


def _where(h: asyncio.Handle) -> str | None:
    """file:line of the innermost frame of the task's chain of coroutines outside asyncio's
    and anyio's own plumbing (where the task's code awaits), or None."""
    task = _task(h)
    if task is None:
        return None
    coro: Any = task.get_coro()
    frame: FrameType | None = None
    while coro is not None:
        inner = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if inner is None:  # a future, or a coroutine that has finished
            break
        if not inner.f_code.co_filename.startswith(PLUMBING):
            frame = inner
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    if frame is None:
        return None
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"
