"""Delivery from the outbox: one worker per apprise target, in order, retrying with backoff.

Each queued message is decided in one place (`decide`): send it, or dead-letter it once it is
older than the notifier's `max_age`. A failed send stays at the head of its queue and is retried
with exponential backoff and jitter, so order is kept. A message is marked sent right after
apprise reports success; apprise gives no receipt, so a crash between those two steps resends
that one message after a restart: the only window where a message can arrive twice. Nothing is
ever dropped by a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import anyio
import structlog

from monitor.delivery.sender import Sender
from monitor.model import Severity
from monitor.store.base import LeaseLost, OutboxItem, StoreError
from monitor.store.ports import Outbox
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import Heartbeat

log = structlog.get_logger("monitor.delivery")

BATCH = 20
IDLE_CHECK = 1.0
"""The longest a worker waits before looking at its queue again (a CLI tool may change it)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with ±20 % jitter, capped."""

    first: float = 1.0
    cap: float = 30.0

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds before the next attempt after `attempts` failures."""
        base = min(self.cap, self.first * 2 ** max(0, attempts - 1))
        return float(base * (0.8 + 0.4 * rng()))


class Decision(StrEnum):
    """What to do with the message at the head of a queue."""

    SEND = "send"
    DEAD_LETTER = "dead_letter"


STORE_RETRY = RetryPolicy(first=0.5, cap=10.0)
"""How a worker backs off while the store fails."""


Waiter = Callable[[asyncio.Event, float], Awaitable[None]]
"""Waits until the event is set or the seconds have passed (injected: tests run on a fake clock)."""


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set, `seconds` at most."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def decide(item: OutboxItem, now: float, max_age: float) -> Decision:
    """Send a queued message, or give up on it when it waited longer than `max_age`."""
    if now - item.created_at > max_age:
        return Decision.DEAD_LETTER
    return Decision.SEND


class Worker:
    """Sends the outbox of one target (apprise URL) of one notifier.

    A store that fails (locked by another process, say) never loses a message: reading the queue
    is retried with backoff; a failed attempt whose retry time cannot be stored is held back in
    memory all the same; a sent message whose record fails is recorded again until it sticks, so
    that it is not sent twice.
    """

    def __init__(
        self,
        notifier: str,
        target: int,
        sender: Sender,
        store: Outbox,
        telemetry: Telemetry,
        *,
        policy: RetryPolicy | None = None,
        max_age: float = 86400.0,
        min_interval: float = 0.0,
        clock: Callable[[], float] = time.time,
        wait: Waiter = wait_event,
        may_send: Callable[[], bool] = lambda: True,
    ) -> None:
        self.notifier = notifier
        self.target = target
        self._sender = sender
        self._store = store
        self._telemetry = telemetry
        self._policy = policy or RetryPolicy()
        self._max_age = max_age
        self._min_interval = min_interval
        self._clock = clock
        self._wait = wait
        self._may_send = may_send
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._failing = False
        self._store_failures = 0
        self._stopping = False
        self._last_send = -1e18
        self._hold_until = 0.0
        self._unrecorded: tuple[int, int] = (0, 0)
        """(id, attempts) of a failed attempt the store could not record, for its backoff."""
        self.sending = False
        self.running = False
        self._log = log.bind(notifier=notifier, target=sender.display)

    @property
    def timeout(self) -> float:
        """How long one send may take."""
        return self._sender.timeout

    def wake(self) -> None:
        """New deliveries were queued."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the send in flight, if any, then return from `run`."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    async def run(self, beat: Heartbeat | None = None) -> None:
        """Deliver until stopped; whatever is not sent stays queued in the store."""
        self.running = True
        try:
            while not self._stopping:
                if beat is not None:
                    beat()
                self._wake.clear()
                try:
                    await self._round()
                except LeaseLost:
                    await self._pause(IDLE_CHECK)  # the leader's work is being stopped
                except StoreError as exc:
                    self._store_failures += 1
                    delay = STORE_RETRY.delay(self._store_failures, rng=lambda: 0.5)
                    self._log.warning(
                        "store unavailable; delivery waits for it", error=str(exc), retry_in=delay
                    )
                    await self._pause(delay)
                else:
                    self._store_failures = 0
        finally:
            self.running = False

    async def _round(self) -> None:
        """Send what is due, or wait until something may be."""
        held = self._hold_until - self._clock()
        if held > 0:
            await self._pause(held)
            return
        items = await self._store.due(self.notifier, self.target, self._clock(), BATCH)
        if items:
            for item in items:
                if self._stopping or not await self._handle(item):
                    break
            return
        next_at = await self._store.next_due(self.notifier, self.target)
        # Look again at least every few seconds: `callmon outbox retry` changes the store
        # from another process.
        wait = IDLE_CHECK if next_at is None else max(0.05, next_at - self._clock())
        await self._pause(min(wait, IDLE_CHECK))

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or less when woken."""
        await self._wait(self._wake, seconds)

    async def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, whatever happens meanwhile."""
        await self._wait(asyncio.Event(), seconds)

    async def _handle(self, item: OutboxItem) -> bool:
        """Deal with one message; False when the queue must wait (a failed send)."""
        if decide(item, self._clock(), self._max_age) is Decision.DEAD_LETTER:
            await self._store.mark_dead(item.id, f"undelivered after {self._max_age:g} s")
            self._telemetry.notifications.labels(self.notifier, "dropped").inc()
            self._log.error(
                "notification dead-lettered: undelivered for too long",
                rule=item.rule,
                title=item.title,
                attempts=item.attempts,
            )
            return True
        wait = self._last_send + self._min_interval - self._clock()
        if wait > 0:
            await self._sleep(wait)
        if not self._may_send():
            # A replica that may no longer lead (paused past its lease) sends nothing.
            raise LeaseLost("this replica does not hold the lease: nothing is sent")
        self.sending = True
        try:
            # Shielded: a stop (SIGTERM) lets a send in flight finish and be recorded.
            with anyio.CancelScope(shield=True):
                sent = await self._send(item)
        finally:
            self.sending = False
        return sent

    async def _send(self, item: OutboxItem) -> bool:
        if item.attempts:
            self._telemetry.notifications.labels(self.notifier, "retried").inc()
        result = await self._sender.send(item.title, item.body, Severity(item.severity), item.story)
        now = self._last_send = self._clock()
        if result.ok:
            self._telemetry.notifications.labels(self.notifier, "sent").inc()
            since = item.event_at if item.event_at is not None else item.created_at
            self._telemetry.delivery_seconds.labels(self.notifier).observe(max(0.0, now - since))
            if self._failing:
                self._log.info("notifier recovered")
                self._failing = False
            return await self._record_sent(item, now)
        attempts = item.attempts + 1
        if self._unrecorded[0] == item.id:
            attempts = max(attempts, self._unrecorded[1] + 1)
        delay = self._policy.delay(attempts)
        self._telemetry.notifications.labels(self.notifier, "failed").inc()
        if not self._failing:
            self._log.warning(
                "notifier failing; messages stay queued", reason=result.reason, detail=result.detail
            )
            self._failing = True
        try:
            error = f"{result.reason}: {result.detail}"
            await self._store.mark_failed(item.id, now + delay, error, at=now)
        except StoreError:
            # Held back all the same, with its backoff growing, though the store cannot say so.
            self._hold_until = now + delay
            self._unrecorded = (item.id, attempts)
            raise
        return False

    async def _record_sent(self, item: OutboxItem, now: float) -> bool:
        """Record a sent message, again and again while the store fails (a message recorded as
        pending would be sent a second time); on stop, one last try."""
        failures = 0
        while True:
            try:
                await self._store.mark_sent(item.id, now)
            except LeaseLost:
                # The new leader sends it once more: the one documented window.
                self._log.warning("a sent message may be sent once more: the lease was lost")
                raise
            except StoreError as exc:
                failures += 1
                if self._stopping:
                    self._log.warning("a sent message may be sent once more", error=str(exc))
                    return False
                if failures == 1:
                    self._log.warning("a sent message cannot be recorded yet", error=str(exc))
                # A stop ends the wait: one last try, then the send's record is given up.
                await self._wait(self._stopped, STORE_RETRY.delay(failures, rng=lambda: 0.5))
                continue
            return True
