"""The one generic polling loop: interval with jitter, deadline, backoff, health and telemetry.

Providers only turn responses into calls; this loop decides when to poll, what a failure means,
and when the provider's health changed (logged and emitted as an event on change only). What a
poll found, and a change of health, go to the callbacks the wiring gave it (`app.py` hands them
to the pipeline); the poller knows neither the tracker, the pipeline nor the store.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Container, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from monitor.model import Event, EventKind, PollResult
from monitor.sources.base import Provider, ProviderError, TrackedView
from monitor.sources.settings import ProviderSettings
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import STORE_SLACK, Heartbeat
from monitor.text.redaction import redactor

log = structlog.get_logger("monitor.sources.poller")

Clock = Callable[[], datetime]
OnResult = Callable[[PollResult, datetime, bool], Awaitable[bool]]
"""Takes a poll's result, its time and whether it ends an outage (a backlog); False when it
could not be kept (the store failed): the poll is then made again."""
OnHealth = Callable[[Event, datetime], Awaitable[bool]]
"""Takes a provider health event; False when it could not be kept: it is tried again later."""


def utcnow() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def backoff(interval: float, failures: int, cap: float, retry_after: float | None = None) -> float:
    """Seconds until the next poll after `failures` failed polls in a row."""
    delay = min(cap, interval * 2 ** max(0, failures - 1)) if failures else interval
    return max(delay, retry_after or 0.0)


@dataclass
class Poller:
    """Polls one provider until cancelled."""

    provider: Provider
    settings: ProviderSettings
    view: TrackedView
    _on_result: OnResult
    _on_health: OnHealth
    telemetry: Telemetry
    clock: Clock = field(default=utcnow, kw_only=True)
    jitter: float = field(default=0.1, kw_only=True)
    redact: Callable[[str], str] = field(default=redactor.redact, kw_only=True)
    up: bool | None = field(default=None, init=False)
    failures: int = field(default=0, init=False)
    last_success: datetime | None = field(default=None, init=False)
    last_error: str | None = field(default=None, init=False)
    """Why the last poll failed (secrets removed), until a poll succeeds."""
    behind: int = field(default=0, init=False)
    """Open calls the last poll had no budget to re-check: the provider cannot keep up while
    this stays above zero (shown on /readyz, the page and `provider_rechecks_waiting`)."""

    def __post_init__(self) -> None:
        # The series this loop writes on every poll, looked up once (a lookup by label values
        # costs more than the update).
        name, t = self.settings.name, self.telemetry
        self._duration = t.poll_duration.labels(t.provider(name))
        self._last_success = t.last_success.labels(name)
        self._up = t.provider_up.labels(name)
        self._lag = t.poll_lag

    @property
    def deadline(self) -> float:
        """The longest a whole poll may take: room for paging and per-call follow-ups."""
        return max(self.settings.timeout * 10, 60.0)

    @property
    def period(self) -> float:
        """The longest healthy silence of this loop: a backoff, then a whole poll."""
        return max(self.settings.poll_interval, self.settings.max_backoff) + self.deadline

    async def run(self, beat: Heartbeat | None = None) -> None:
        """Poll forever, a poll starting every interval (not an interval after the last ended).

        The jitter only ever shortens the wait, so a change is seen within one interval.
        """
        due: float | None = None
        while True:
            started = time.monotonic()
            if due is not None:
                self._lag.observe(max(0.0, started - due))
            delay = await self.poll_once()
            delay -= random.uniform(0.0, delay * self.jitter)
            due = started + delay
            wait = max(0.0, due - time.monotonic())
            if beat is not None:
                beat(wait + self.deadline + STORE_SLACK)
            await asyncio.sleep(wait)

    async def poll_once(self) -> float:
        """One poll, its bookkeeping and health; returns the seconds to wait before the next.

        Whatever the provider raises fails this poll only: an error the client did not foresee
        (a bug, a record it could not represent) is logged with its traceback and counts as the
        provider being down, and the next poll tries again.
        """
        name = self.settings.name
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(self.provider.poll(self.view), self.deadline)
        except ProviderError as exc:
            return await self._failed(str(exc), exc.reason, exc.retry_after)
        except TimeoutError:
            message = f"provider {name}: poll did not finish within {self.deadline:g} s"
            return await self._failed(message, "timeout", None)
        except Exception as exc:
            message = f"provider {name}: unexpected {type(exc).__name__} while polling"
            log.error(
                "poll failed unexpectedly", provider=name, error=str(exc)[:300], exc_info=True
            )
            return await self._failed(message, "internal_error", None)
        finally:
            self._duration.observe(time.perf_counter() - started)
        now = self.clock()
        if not await self._on_result(result, now, self.up is False):
            return self.settings.poll_interval  # not kept: the next poll makes it again
        self.failures = 0
        self.last_success = now
        self.last_error = None
        self._keeping_up(result.rechecks_waiting)
        self._last_success.set(now.timestamp())
        self._up.set(1)
        if self.up is None:
            self.up = True  # the first poll: nothing to tell
        elif self.up is False and await self._health(True, None, now):
            log.info("provider recovered", provider=name)
        return self.settings.poll_interval

    def _keeping_up(self, waiting: int) -> None:
        """Record how many open calls wait to be re-checked; log when that starts and ends."""
        if waiting == self.behind:
            return
        name = self.settings.name
        if waiting and not self.behind:
            log.warning(
                "provider cannot keep up: open calls wait to be re-checked by later polls",
                provider=name,
                waiting=waiting,
                per_poll=self.settings.recheck_budget,
            )
        elif not waiting:
            log.info("provider caught up: every open call re-checked", provider=name)
        self.behind = waiting
        self.telemetry.set_rechecks_waiting(name, waiting)

    async def _failed(self, message: str, reason: str, retry_after: float | None) -> float:
        name = self.settings.name
        # The API's own words may echo a credential (a 401 quoting the request's header).
        message = self.last_error = self.redact(message)
        self.failures += 1
        self._up.set(0)
        if self.up is not False:
            if await self._health(False, message, self.clock()):
                log.warning("provider down", provider=name, reason=reason, error=message)
        else:
            log.debug("poll failed", provider=name, reason=reason, error=message)
        return backoff(
            self.settings.poll_interval, self.failures, self.settings.max_backoff, retry_after
        )

    async def _health(self, up: bool, reason: str | None, now: datetime) -> bool:
        """Hand a health change on as an event; False (and nothing changed) when it could not
        be kept: the change is then tried again after the next poll."""
        event = Event(
            kind=EventKind.PROVIDER,
            provider=self.settings.name,
            provider_type=self.provider.type,
            from_state=None if self.up is None else ("up" if self.up else "down"),
            to_state="up" if up else "down",
            at=now,
            reason=reason,
        )
        if not await self._on_health(event, now):
            return False
        self.up = up
        return True


class Down(Container[str]):
    """The providers whose poller is down, asked one provider at a time: the rule clock asks
    about the providers of due timers only, not about each of 10,000 every second."""

    def __init__(self, pollers: Mapping[str, Poller]) -> None:
        self._pollers = pollers

    def __contains__(self, name: object) -> bool:
        poller = self._pollers.get(name) if isinstance(name, str) else None
        return poller is not None and poller.up is False


class Polled(Mapping[str, float]):
    """When each provider that is up last answered a poll (a timestamp), looked up one
    provider at a time, as `Down`."""

    def __init__(self, pollers: Mapping[str, Poller]) -> None:
        self._pollers = pollers

    def __getitem__(self, name: str) -> float:
        poller = self._pollers[name]
        if poller.up is not True or poller.last_success is None:
            raise KeyError(name)
        return poller.last_success.timestamp()

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._pollers if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)
