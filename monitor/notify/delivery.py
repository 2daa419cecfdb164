"""Delivery from the outbox: one worker per apprise target, in order, retrying with backoff.

A delivery is marked sent right after apprise reports success. apprise gives no receipt, so a
crash between those two steps resends that one message after a restart: the only window where a
message can arrive twice. Nothing is ever dropped from the outbox by a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from monitor.model import Severity
from monitor.notify.sender import Sender
from monitor.store.base import OutboxItem, Store
from monitor.telemetry import Telemetry

log = structlog.get_logger("monitor.notify")

BATCH = 20


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped."""

    first: float = 1.0
    cap: float = 30.0

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds before the next attempt after `attempts` failures (with ±20 % jitter)."""
        base = min(self.cap, self.first * 2 ** max(0, attempts - 1))
        return float(base * (0.8 + 0.4 * rng()))


class Worker:
    """Sends the outbox of one target of one notifier."""

    def __init__(
        self,
        notifier: str,
        target: int,
        sender: Sender,
        store: Store,
        telemetry: Telemetry,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.notifier = notifier
        self.target = target
        self._sender = sender
        self._store = store
        self._telemetry = telemetry
        self._policy = policy or RetryPolicy()
        self._clock = clock
        self._wake = asyncio.Event()
        self._failing = False

    def wake(self) -> None:
        """New deliveries were queued."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver forever; cancellation leaves unsent items queued."""
        while True:
            self._wake.clear()
            items = await self._store.due(self.notifier, self.target, self._clock(), BATCH)
            if items:
                for item in items:
                    if not await self._deliver(item):
                        break
                continue
            next_at = await self._store.next_due(self.notifier, self.target)
            wait = None if next_at is None else max(0.05, next_at - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _deliver(self, item: OutboxItem) -> bool:
        result = await self._sender.send(item.title, item.body, Severity(item.severity))
        now = self._clock()
        if result.ok:
            await self._store.mark_sent(item.id, now)
            self._telemetry.notifications.labels(self.notifier, "sent").inc()
            if self._failing:
                log.info("notifier recovered", notifier=self.notifier, target=self._sender.display)
                self._failing = False
            return True
        delay = self._policy.delay(item.attempts + 1)
        await self._store.mark_failed(item.id, now + delay, f"{result.reason}: {result.detail}")
        self._telemetry.notifications.labels(self.notifier, "retried").inc()
        if not self._failing:
            log.warning(
                "notifier failing; messages stay queued",
                notifier=self.notifier,
                target=self._sender.display,
                reason=result.reason,
                detail=result.detail,
            )
            self._failing = True
        return False
