"""Every long-lived loop runs under one supervisor: restarted with backoff when it raises, watched
through a heartbeat, so that no part of the daemon can stop without `/healthz` saying so.

A loop is an async function that takes its `Heartbeat` and runs until cancelled (or returns when
its work is done, as a delivery worker does on stop). An exception escaping it is logged with its
traceback, counted in `callmon_task_restarts_total{task}` and the loop is started again after a
backoff that doubles up to a cap; the other loops never notice. A loop beats whenever it makes
progress and says how long it may take until the next beat; one that has not beaten for three of
those periods is reported as hung.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import anyio
import structlog
from anyio.abc import TaskGroup

from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import Clock, Heartbeat

log = structlog.get_logger("monitor.runtime.supervisor")

Loop = Callable[[Heartbeat], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Seconds before restarting a loop that failed `n` times in a row: doubling, capped."""

    first: float = 1.0
    cap: float = 30.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap, self.first * 2 ** max(0, failures - 1)))


class Supervisor:
    """Starts loops in a task group, restarts the ones that fail, reports the unhealthy ones."""

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        clock: Clock = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._clock = clock
        self._backoff = backoff or Backoff()
        self.beats: dict[str, Heartbeat] = {}

    def start(self, group: TaskGroup, name: str, loop: Loop, *, period: float) -> Heartbeat:
        """Run `loop` in `group` under supervision; `period`: its longest healthy silence."""
        beat = Heartbeat(name, period, self._clock)
        self.beats[name] = beat
        self._telemetry.task_restarts.labels(name)
        group.start_soon(self._keep, loop, beat, name=name)
        return beat

    async def _keep(self, loop: Loop, beat: Heartbeat) -> None:
        failures = 0
        while True:
            beat.running = True
            beat()
            started = self._clock()
            try:
                await loop(beat)
            except Exception as exc:
                beat.running = False
                beat.error = f"{type(exc).__name__}: {exc}"[:300]
                beat.restarts += 1
                self._telemetry.task_restarts.labels(beat.name).inc()
                # A loop that ran well for a while starts its backoff afresh.
                failures = 1 if self._clock() - started > 10 * self._backoff.cap else failures + 1
                delay = self._backoff.delay(failures)
                log.error(
                    "loop failed; restarting it",
                    task=beat.name,
                    error=beat.error,
                    restart_in=delay,
                    exc_info=True,
                )
                await anyio.sleep(delay)
                continue
            beat.running = False
            beat.error = None
            return

    def forget(self, names: Iterable[str]) -> None:
        """Stop reporting on loops that were stopped on purpose (a leader standing by)."""
        for name in names:
            self.beats.pop(name, None)

    def problems(self) -> list[str]:
        """Every loop that is dead or hung, as one sentence each."""
        found = (beat.problem() for beat in self.beats.values())
        return [p for p in found if p is not None]
