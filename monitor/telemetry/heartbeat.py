"""A loop's sign of life: it beats whenever it makes progress and says how long it may take
until the next beat; `/healthz` reports a loop that has not beaten for three of those periods
as hung."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
STALE_PERIODS = 3
"""A loop that has not beaten for this many of its periods is reported as hung."""
STORE_SLACK = 15.0
"""What a loop's period allows for store calls waiting on a lock another process holds."""


@dataclass
class Heartbeat:
    """A loop's sign of life: when it last beat and how long until the next beat is due."""

    name: str
    period: float
    clock: Clock = time.monotonic
    last: float = field(default=0.0)
    running: bool = False
    restarts: int = 0
    error: str | None = None

    def __post_init__(self) -> None:
        self.last = self.clock()

    def __call__(self, period: float | None = None) -> None:
        """The loop made progress; with `period`, it says when to expect the next beat."""
        self.last = self.clock()
        if period is not None:
            self.period = period

    def problem(self) -> str | None:
        """Why this loop is not healthy, or None."""
        if not self.running:
            detail = f": {self.error}" if self.error else ""
            return f"loop {self.name} is not running{detail}"
        silent = self.clock() - self.last
        if silent > STALE_PERIODS * self.period:
            return f"loop {self.name} has not made progress for {silent:.0f} s (hung?)"
        return None
