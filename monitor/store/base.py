"""The store's small interface: tracked calls, cursors, rule state, silences, pushes and the outbox.

The store knows only the domain types (`monitor.model`): rule state reaches it as JSON text, a
step's writes as one `Changes`, committed in one transaction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.model import Alert, Silence, StateKey, Tracked


def display(url: str) -> str:
    """A store's URL as it may be shown: without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1@", url)


class StoreError(Exception):
    """The store could not be opened, read or written. Every store method raises only this."""


class StoreNotFound(StoreError):
    """A tool expected an existing store and found none (it never creates an empty one)."""


class LeaseLost(StoreError):
    """A write of a replica that no longer leads: refused, nothing changed (another replica took
    the lease over, or this one let it lapse)."""


RECOVERED_AFTER = 15.0
"""The store works again once this many seconds passed without a failed operation: a disk
that is full fails the large writes while small ones still succeed, and such a store is
failing all along, not recovering at every small success."""


class StoreHealth:
    """Whether the store works, from the outcome of every operation: since when it fails."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self._last_failure = 0.0

    def ok(self) -> None:
        """An operation succeeded: the store works again, unless another failed lately."""
        if self.failing_since is None:
            return
        if self._clock() - self._last_failure >= RECOVERED_AFTER:
            self.failing_since = None
            self.last_error = None

    def failed(self, error: str) -> None:
        """An operation failed; the failure started with the first of a run of them."""
        now = self._last_failure = self._clock()
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = error

    def failing_for(self) -> float:
        """Seconds the store has been failing without a success in between (0 when healthy)."""
        return 0.0 if self.failing_since is None else self._clock() - self.failing_since


@dataclass(frozen=True, slots=True)
class ProviderState:
    """What the store holds for one provider."""

    calls: dict[str, Tracked] = field(default_factory=dict)
    cursor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert for one target of a notifier (an apprise URL), as queued in the outbox."""

    alert: Alert
    target: int

    @property
    def key(self) -> str:
        """The outbox's idempotency key."""
        return f"{self.alert.key}#{self.target}"


@dataclass(frozen=True, slots=True)
class CallChanges:
    """What a poll changes of one provider's tracked calls, and its new cursor."""

    provider: str
    upserts: Mapping[str, Tracked] = field(default_factory=dict)
    deletes: Sequence[str] = ()
    cursor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """One row of the decision record: an event (`rule` None) or a rule's verdict on it."""

    decided_at: float
    provider: str
    call_id: str | None
    subject: str
    kind: str
    from_state: str | None
    to_state: str
    via: str
    at: float
    rule: str | None = None
    verdict: str | None = None
    detail: str = ""
    alert: str | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything one step writes, in one transaction: a provider's calls and cursor (after a
    poll), rule state (JSON text; None deletes) and new deliveries."""

    calls: CallChanges | None = None
    rules: Mapping[StateKey, str | None] = field(default_factory=dict)
    deliveries: Sequence[Delivery] = ()
    pushes_done: Sequence[int] = ()
    """Stored pushes this step applied: deleted with it."""
    decisions: Sequence[Decision] = ()
    """What the step saw and each rule decided, for `callmon explain`."""

    def __bool__(self) -> bool:
        return bool(
            self.calls or self.rules or self.deliveries or self.pushes_done or self.decisions
        )


@dataclass(frozen=True, slots=True)
class Push:
    """A provider's push, authenticated and kept until the leader applies it."""

    id: int
    provider: str
    body: str
    received_at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at delivering an outbox entry."""

    at: float
    outcome: str
    """`sent`, `failed` or `dead` (given up)."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A queued delivery with its bookkeeping."""

    id: int
    notifier: str
    target: int
    rule: str
    severity: str
    title: str
    body: str
    created_at: float
    attempts: int
    status: str
    last_error: str | None
    event_at: float | None = None
    tries: tuple[Attempt, ...] = ()
    """Each attempt, oldest first (filled where a call's story is read)."""


class Store(Protocol):
    """Where everything that must survive a restart lives."""

    health: StoreHealth
    """Updated by every operation: whether the store works, and since when it does not."""

    async def load_provider(self, provider: str) -> ProviderState:
        """The tracked calls and cursor of one provider."""
        ...

    async def commit(self, changes: Changes) -> int:
        """Store a step's changes in one transaction; return how many deliveries were new (a
        key already queued is not queued again)."""
        ...

    async def load_rule_state(self) -> dict[StateKey, str]:
        """Every piece of rule state (timers, windows, throttles, batches), as JSON text."""
        ...

    async def due(self, notifier: str, target: int, now: float, limit: int) -> list[OutboxItem]:
        """The oldest pending deliveries for one target that are due by `now`, in order."""
        ...

    async def next_due(self, notifier: str, target: int) -> float | None:
        """When the next pending delivery for a target is due, or None when none is pending."""
        ...

    async def mark_sent(self, item_id: int, now: float) -> None:
        """Record a delivery as sent."""
        ...

    async def mark_failed(
        self, item_id: int, retry_at: float, error: str, at: float | None = None
    ) -> None:
        """Record a failed attempt (made at `at`, now when None); retry at `retry_at`."""
        ...

    async def mark_dead(self, item_id: int, error: str) -> None:
        """Give up on a delivery: kept as dead-lettered, never sent."""
        ...

    async def oldest_pending(self, notifier: str) -> float | None:
        """When the oldest undelivered notification of a notifier was decided, or None."""
        ...

    async def silences(self, now: float | None = None) -> list[Silence]:
        """Silences not yet expired at `now` (every one when None)."""
        ...

    async def add_silence(
        self,
        rule: str,
        matchers: Sequence[tuple[str, str]],
        starts: float,
        ends: float,
        comment: str,
    ) -> int:
        """Store a silence (any replica may); returns its id."""
        ...

    async def expire_silence(self, silence_id: int, now: float) -> bool:
        """End a silence in force at `now`; False when none was."""
        ...

    async def outbox(self, *, status: str | None = None) -> list[OutboxItem]:
        """Every outbox entry, optionally of one status, oldest first."""
        ...

    async def outbox_retry(self, *, dead: bool, notifier: str | None = None) -> int:
        """Make entries due now (dead ones revived); how many (any replica may)."""
        ...

    async def prune_sent(self, before: float) -> int:
        """Forget delivered entries decided before `before`."""
        ...

    async def pending_count(self, notifier: str) -> int:
        """How many deliveries of a notifier are still waiting."""
        ...

    async def add_push(self, provider: str, body: str, received_at: float) -> int:
        """Keep an authenticated push for the leader (any replica may); returns its id."""
        ...

    async def pushes(self, limit: int) -> list[Push]:
        """The oldest pushes waiting to be applied."""
        ...

    async def story(
        self, provider: str, call_id: str
    ) -> tuple[list[Decision], dict[str, list[OutboxItem]]]:
        """A call's decision record, oldest first, and the outbox entries of each alert."""
        ...

    async def deliveries(self, alerts: Iterable[str]) -> dict[str, list[OutboxItem]]:
        """The outbox entries of each alert."""
        ...

    async def open_calls(self, limit: int) -> list[tuple[str, str, str, float]]:
        """Calls in progress: (provider, id, state, created), newest first."""
        ...

    async def latest(self, limit: int, *, fired: bool = False) -> list[Decision]:
        """The newest events seen (with `fired`: alerts decided), newest first."""
        ...

    async def prune_decisions(self, before: float, keep: int) -> int:
        """Forget decisions made before `before`, and all but the newest `keep`."""
        ...

    async def listen(self, handle: Callable[[str], None]) -> None:
        """Hand each topic other processes notify (`outbox`, `silences`, `lease`) to `handle`,
        until cancelled (a store of one process never has any)."""
        ...

    async def check(self) -> None:
        """Raise `StoreError` when the store cannot be written or is no longer the one opened
        (a SQLite file deleted or replaced under the daemon)."""
        ...

    async def close(self) -> None:
        """Close the store cleanly."""
        ...
