"""What every fake API shares: the call lifecycle the traffic drives, a clock, rate limiting."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from monitor.simulator.faults import Faults

Clock = Callable[[], float]


class Line(Protocol):
    """A fake API's phone line: the traffic generator plays calls out on it."""

    name: str

    @property
    def clock(self) -> Clock:
        """The line's clock (seconds since the epoch)."""
        ...

    def start_call(self, at: float | None = None) -> str:
        """A call starts ringing; returns its id."""
        ...

    def answer(self, call_id: str, at: float | None = None) -> None:
        """Someone picked up."""
        ...

    def hang_up(self, call_id: str, at: float | None = None) -> None:
        """An answered call ended normally."""
        ...

    def no_answer(self, call_id: str, at: float | None = None) -> None:
        """Nobody picked up (rang out, or the caller gave up)."""
        ...

    def reject(self, call_id: str, at: float | None = None) -> None:
        """The callee declined, or was busy."""
        ...

    def fail(self, call_id: str, at: float | None = None) -> None:
        """The call could not be set up."""
        ...


def rfc3339(ts: float | None) -> str | None:
    """`2024-12-22T02:33:25.633Z`, as the vendors print their times."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 query parameter; ValueError when malformed."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no offset")
    return moment.timestamp()


class RateLimit:
    """At most `count` requests per `per` seconds (a sliding window), by the wall clock."""

    def __init__(self, count: int, per: float = 1.0) -> None:
        self.count = count
        self.per = per
        self._times: deque[float] = deque()
        self.rejected = 0

    def check(self) -> float | None:
        """None when the request may go ahead, else the epoch second at which it may."""
        now = time.monotonic()
        while self._times and now - self._times[0] >= self.per:
            self._times.popleft()
        if len(self._times) >= self.count:
            self.rejected += 1
            return time.time() + self.per - (now - self._times[0])
        self._times.append(now)
        return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Check = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class FakeApi:
    """What every fake API keeps: its clock, injected faults, randomness, request counters."""

    clock: Clock
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=random.Random)
    requests: int = 0
    list_requests: int = 0
    pushes: list[asyncio.Task[int]] = field(default_factory=list)
    """Webhook posts under way or done (their results are the receiver's statuses)."""
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def at(self, moment: float | None) -> float:
        """`moment`, or now when None (the traffic generator passes times for history)."""
        return self.clock() if moment is None else moment

    def number(self) -> int:
        """The next caller number's digits."""
        return next(self._numbers)

    def push(self, post: Callable[[], Coroutine[Any, Any, int]]) -> None:
        """Send a webhook in the background, as the vendor does after a change; nothing when no
        event loop runs (history made before the servers start)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.pushes.append(loop.create_task(post()))


def guarded(check: Check, handler: Handler) -> Handler:
    """`handler`, answered instead by `check` (a fault, a refused credential) when it objects."""

    async def guarded_handler(request: web.Request) -> web.StreamResponse:
        refused = await check(request)
        return refused if refused is not None else await handler(request)

    return guarded_handler
