"""Call traffic for the fake APIs: doors ring, get answered and hung up, or ring out unanswered."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from monitor.simulator.vms import VmsApi


@dataclass(frozen=True)
class Pace:
    """How busy the doors are and how long calls take, in seconds."""

    mean_gap: float = 8.0
    answer_rate: float = 0.6
    ring_min: float = 2.0
    ring_max: float = 12.0
    ring_timeout: float = 20.0
    talk_min: float = 5.0
    talk_max: float = 40.0


DEMO_PACE = Pace(mean_gap=6.0, ring_timeout=12.0)
REALISTIC_PACE = Pace(
    mean_gap=120.0, ring_min=3.0, ring_max=30.0, ring_timeout=60.0, talk_min=10.0, talk_max=180.0
)


class Traffic:
    """Drives calls on a `VmsApi` in real time until cancelled."""

    def __init__(self, vms: VmsApi, pace: Pace = DEMO_PACE, seed: int | None = None) -> None:
        self.vms = vms
        self.pace = pace
        self.rng = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()

    def seed_history(self, count: int, *, span: float = 86400.0) -> None:
        """Add `count` final calls spread over the `span` seconds before now."""
        now = self.vms.clock()
        doors = list(self.vms.doors)
        for i in range(count):
            created = now - span + span * i / max(1, count)
            call = self.vms.ring(self.rng.choice(doors), at=created)
            if self.rng.random() < self.pace.answer_rate:
                answered = created + self.rng.uniform(self.pace.ring_min, self.pace.ring_max)
                self.vms.answer(call.id, at=answered)
                self.vms.end(call.id, at=answered + self.rng.uniform(10, 120))
            else:
                self.vms.miss(call.id)

    async def run(self, *, open_with_missed: bool = False) -> None:
        """Ring a random door every so often, and play each call out in its own task.

        `open_with_missed` starts with a call nobody answers, so a missed call shows early.
        """
        first: bool | None = False if open_with_missed else None
        try:
            while True:
                gap = 1.0 if first is False else self.rng.expovariate(1.0 / self.pace.mean_gap)
                await asyncio.sleep(gap)
                door = self.rng.choice(list(self.vms.doors))
                task = asyncio.create_task(self._call(door, answer=first))
                first = None
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _call(self, door: int, answer: bool | None = None) -> None:
        pace, rng = self.pace, self.rng
        call = self.vms.ring(door)
        if answer is None:
            answer = rng.random() < pace.answer_rate
        if answer:
            await asyncio.sleep(rng.uniform(pace.ring_min, pace.ring_max))
            self.vms.answer(call.id)
            await asyncio.sleep(rng.uniform(pace.talk_min, pace.talk_max))
            self.vms.end(call.id)
        else:
            await asyncio.sleep(pace.ring_timeout)
            self.vms.miss(call.id)
