"""The store as each of its consumers sees it: a narrow port per consumer, holding only what it
uses (the tracking step, delivery, the rule clock, the kept pushes, the HTTP surface, the
watchdog). `Store` is all of them: what the daemon opens and hands out, port by port.

A store operation is written as a program once for both backends (`monitor.store.sql`), run by
one method of `SqlStore`, and declared here in the port of each consumer that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from monitor.model import Silence, StateKey
from monitor.store.base import (
    Changes,
    Decision,
    OutboxItem,
    ProviderState,
    Push,
    StoreHealth,
    Tally,
)


class Steps(Protocol):
    """What the tracking step needs: the stored state of providers and rules, a commit a step."""

    async def load_provider(self, provider: str) -> ProviderState:
        """The tracked calls and cursor of one provider."""
        ...

    async def load_rule_state(self) -> dict[StateKey, str]:
        """Every piece of rule state (timers, windows, throttles, batches), as JSON text."""
        ...

    async def commit(self, changes: Changes) -> int:
        """Store a step's changes in one transaction; return how many deliveries were new (a
        key already queued is not queued again)."""
        ...


class Outbox(Protocol):
    """What a delivery worker needs: its queue, and the record of each attempt."""

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


class Upkeep(Protocol):
    """What the rule clock needs each tick: silences in force, the outbox's gauges, pruning."""

    async def silences(self, now: float | None = None) -> list[Silence]:
        """Silences not yet expired at `now` (every one when None)."""
        ...

    async def pending_count(self, notifier: str) -> int:
        """How many deliveries of a notifier are still waiting."""
        ...

    async def oldest_pending(self, notifier: str) -> float | None:
        """When the oldest undelivered notification of a notifier was decided, or None."""
        ...

    async def prune_sent(self, before: float) -> int:
        """Forget delivered entries decided before `before`."""
        ...

    async def prune_decisions(self, before: float, keep: int) -> int:
        """Forget decisions made before `before`, and all but the newest `keep`."""
        ...

    async def prune_history(self, before: float) -> int:
        """Forget the history's hours that began before `before`."""
        ...


class Pushes(Protocol):
    """Kept pushes: any replica keeps them, the leader reads them."""

    async def add_push(self, provider: str, body: str, received_at: float) -> int:
        """Keep an authenticated push for the leader (any replica may); returns its id."""
        ...

    async def pushes(self, limit: int) -> list[Push]:
        """The oldest pushes waiting to be applied."""
        ...


class Records(Protocol):
    """What the API and the page read and change: what was seen and decided, silences, outbox."""

    async def latest(self, limit: int, *, fired: bool = False) -> list[Decision]:
        """The newest events seen (with `fired`: alerts decided), newest first."""
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

    async def history(self, since: float) -> list[Tally]:
        """Calls answered and missed per hour, provider and door, from the hour `since` on."""
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


class Health(Protocol):
    """What the watchdog needs: a check that the store still works."""

    health: StoreHealth
    """Updated by every operation: whether the store works, and since when it does not."""

    async def check(self) -> None:
        """Raise `StoreError` when the store cannot be written or is no longer the one opened
        (a SQLite file deleted or replaced under the daemon)."""
        ...


class Store(Steps, Outbox, Upkeep, Pushes, Records, Health, Protocol):
    """Where everything that must survive a restart lives: every port, and notifications from
    other processes, and closing."""

    async def listen(self, handle: Callable[[str], None]) -> None:
        """Hand each topic other processes notify (`outbox`, `silences`, `lease`) to `handle`,
        until cancelled (a store of one process never has any)."""
        ...

    async def close(self) -> None:
        """Close the store cleanly."""
        ...
