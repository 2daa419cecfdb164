"""Call traffic for the fake APIs: calls ring, get answered and hung up, or end unanswered."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.simulator.common import Line


@dataclass(frozen=True)
class Pace:
    """How busy the lines are, how calls end and how long they take, in seconds."""

    mean_gap: float = 8.0
    answer_rate: float = 0.6
    reject_rate: float = 0.06
    fail_rate: float = 0.04
    ring_min: float = 2.0
    ring_max: float = 12.0
    ring_timeout: float = 20.0
    talk_min: float = 5.0
    talk_max: float = 40.0
    first_ring: float = 1.0
    """How long the opening missed call (`open_with_missed`) rings: a caller who gives up at
    once, so that a missed call shows within seconds of a start."""


DEMO_PACE = Pace(mean_gap=4.0, ring_timeout=12.0)
REALISTIC_PACE = Pace(
    mean_gap=120.0, ring_min=3.0, ring_max=30.0, ring_timeout=60.0, talk_min=10.0, talk_max=180.0
)


class Traffic:
    """Plays calls out on the lines in real time until cancelled."""

    def __init__(self, lines: Sequence[Line], pace: Pace = DEMO_PACE, seed: int | None = None):
        self.lines = list(lines)
        self.pace = pace
        self.rng = random.Random(seed)
        self._tasks: set[asyncio.Task[str]] = set()

    def outcome(self) -> str:
        """How the next call ends: answered, missed, rejected or failed."""
        roll, pace = self.rng.random(), self.pace
        if roll < pace.answer_rate:
            return "answered"
        if roll < pace.answer_rate + pace.reject_rate:
            return "rejected"
        if roll < pace.answer_rate + pace.reject_rate + pace.fail_rate:
            return "failed"
        return "missed"

    def seed_history(self, count: int, *, span: float = 86400.0) -> None:
        """Give every line `count` finished calls spread over the `span` seconds before now."""
        for line in self.lines:
            now = line.clock()
            for i in range(count):
                start = now - span + span * i / max(1, count)
                call = line.start_call(at=start)
                self._finish(line, call, self.outcome(), start)

    def _finish(self, line: Line, call: str, outcome: str, start: float) -> None:
        pace, rng = self.pace, self.rng
        if outcome == "answered":
            answered = start + rng.uniform(pace.ring_min, pace.ring_max)
            line.answer(call, at=answered)
            line.hang_up(call, at=answered + rng.uniform(pace.talk_min, pace.talk_max))
        elif outcome == "rejected":
            line.reject(call, at=start + rng.uniform(pace.ring_min, pace.ring_max))
        elif outcome == "failed":
            line.fail(call, at=start + 1.0)
        else:
            line.no_answer(call, at=start + pace.ring_timeout)

    async def run(self, *, open_with_missed: bool = False) -> None:
        """Start a call on a random line every so often; each plays out in its own task.

        `open_with_missed` starts, after a second, with a call whose caller gives up at once
        (`Pace.first_ring`), so a missed call shows within seconds.
        """
        first = open_with_missed
        try:
            while True:
                gap = 1.0 if first else self.rng.expovariate(1.0 / self.pace.mean_gap)
                await asyncio.sleep(gap)
                line = self.lines[0] if first else self.rng.choice(self.lines)
                outcome = "missed" if first else self.outcome()
                ring = self.pace.first_ring if first else None
                first = False
                task = asyncio.create_task(self.play(line, outcome, ring=ring))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def play(self, line: Line, outcome: str, *, ring: float | None = None) -> str:
        """Play one call out in real time; returns its id. A missed call rings `ring` seconds
        (by default the pace's `ring_timeout`)."""
        pace, rng = self.pace, self.rng
        call = line.start_call()
        if outcome == "answered":
            await asyncio.sleep(rng.uniform(pace.ring_min, pace.ring_max))
            line.answer(call)
            await asyncio.sleep(rng.uniform(pace.talk_min, pace.talk_max))
            line.hang_up(call)
        elif outcome == "rejected":
            await asyncio.sleep(rng.uniform(pace.ring_min, pace.ring_max))
            line.reject(call)
        elif outcome == "failed":
            await asyncio.sleep(1.0)
            line.fail(call)
        else:
            await asyncio.sleep(pace.ring_timeout if ring is None else ring)
            line.no_answer(call)
        return call
