"""The store's operations on a SQL database, whatever the backend: each runs one program of
`monitor.store.sql` in one transaction, through the backend's `_run`."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import anyio

from monitor.model import Silence, StateKey
from monitor.store import sql
from monitor.store.base import (
    Changes,
    Decision,
    Delivery,
    OutboxItem,
    ProviderState,
    Push,
    StoreError,
    StoreHealth,
    Tally,
)

T = TypeVar("T")


class SqlStore(ABC):
    """The `Store` on a SQL database; a backend supplies `_run`, `check` and `close`."""

    health: StoreHealth

    @abstractmethod
    async def _run(
        self, what: str, program: sql.Program[T], *, write: bool = False, fenced: bool = True
    ) -> T:
        """Run `program` in one transaction (a write one with `write`); any database error
        becomes a `StoreError` that names `what`. A write is `fenced` by the lease of a leading
        replica (see `monitor.store.postgres`); a write any replica may make is not."""

    @abstractmethod
    async def check(self) -> None:
        """Raise `StoreError` when the store cannot be written (or is not the one opened)."""

    @abstractmethod
    async def close(self) -> None:
        """Close the store cleanly."""

    async def listen(self, handle: Callable[[str], None]) -> None:
        """Hand what other processes notify (`outbox`, `silences`, `lease`) to `handle`, until
        cancelled. A SQLite store is used by one process: nothing ever comes."""
        await anyio.sleep_forever()

    async def _renumber(self) -> None:
        """After a copy that kept its ids, make new ids follow them (SQLite does by itself)."""
        return

    # --- calls, cursors, rule state

    async def load_provider(self, provider: str) -> ProviderState:
        return await self._run(f"read the state of {provider}", sql.load_provider(provider))

    async def load_rule_state(self) -> dict[StateKey, str]:
        return await self._run("read rule state", sql.load_rule_state())

    async def commit(self, changes: Changes) -> int:
        calls = changes.calls
        what = f"commit the poll of {calls.provider}" if calls else "store rule state"
        return await self._run(what, sql.commit(changes), write=True)

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Queue deliveries on their own (for tools and tests)."""
        return await self.commit(Changes(deliveries=deliveries))

    # --- the outbox

    async def due(self, notifier: str, target: int, now: float, limit: int) -> list[OutboxItem]:
        return await self._run("read the outbox", sql.due(notifier, target, now, limit))

    async def next_due(self, notifier: str, target: int) -> float | None:
        return await self._run("read the outbox", sql.next_due(notifier, target))

    async def mark_sent(self, item_id: int, now: float) -> None:
        await self._run("record a sent notification", sql.mark_sent(item_id, now), write=True)

    async def mark_failed(
        self, item_id: int, retry_at: float, error: str, at: float | None = None
    ) -> None:
        program = sql.mark_failed(item_id, retry_at, error, time.time() if at is None else at)
        await self._run("record a failed delivery", program, write=True)

    async def mark_dead(self, item_id: int, error: str) -> None:
        program = sql.mark_dead(item_id, error, time.time())
        await self._run("dead-letter a notification", program, write=True)

    async def oldest_pending(self, notifier: str) -> float | None:
        return await self._run("read the outbox", sql.oldest_pending(notifier))

    async def pending_count(self, notifier: str) -> int:
        return await self._run("read the outbox", sql.pending_count(notifier))

    async def outbox(self, *, status: str | None = None) -> list[OutboxItem]:
        """Every outbox entry, optionally of one status, oldest first."""
        return await self._run("read the outbox", sql.outbox(status))

    async def outbox_select(self, *, dead: bool, notifier: str | None = None) -> list[OutboxItem]:
        """Undelivered (or, with `dead`, dead-lettered) entries, oldest first."""
        program = sql.outbox("dead" if dead else "pending", notifier)
        return await self._run("read the outbox", program)

    async def outbox_retry(self, *, dead: bool, notifier: str | None = None) -> int:
        """Make entries due now (dead ones revived with a fresh `max_age`); how many."""
        program = sql.outbox_retry(dead, notifier, time.time())
        return await self._run("retry notifications", program, write=True, fenced=False)

    async def outbox_purge(self, *, dead: bool, notifier: str | None = None) -> int:
        """Delete undelivered (or dead-lettered) entries; returns how many."""
        program = sql.outbox_purge(dead, notifier)
        return await self._run("purge notifications", program, write=True)

    async def prune_sent(self, before: float) -> int:
        """Forget delivered entries decided before `before` (their keys are no longer needed)."""
        program = sql.prune_sent(before)
        return await self._run("prune sent notifications", program, write=True)

    # --- silences

    async def add_silence(
        self,
        rule: str,
        matchers: Sequence[tuple[str, str]],
        starts: float,
        ends: float,
        comment: str,
    ) -> int:
        """Store a silence; returns its id."""
        program = sql.add_silence(rule, matchers, starts, ends, comment)
        return await self._run("add a silence", program, write=True, fenced=False)

    async def silences(self, now: float | None = None) -> list[Silence]:
        """Silences not yet expired at `now` (every one when None), oldest first."""
        return await self._run("read silences", sql.silences(now))

    # --- the decision record

    async def story(
        self, provider: str, call_id: str
    ) -> tuple[list[Decision], dict[str, list[OutboxItem]]]:
        return await self._run("read a call's story", sql.story(provider, call_id))

    async def open_calls(self, limit: int) -> list[tuple[str, str, str, float]]:
        return await self._run("read calls in progress", sql.open_calls(limit))

    async def deliveries(self, alerts: Iterable[str]) -> dict[str, list[OutboxItem]]:
        return await self._run("read the outbox", sql.deliveries(list(alerts)))

    async def latest(self, limit: int, *, fired: bool = False) -> list[Decision]:
        return await self._run("read the decision record", sql.latest(limit, fired=fired))

    async def prune_decisions(self, before: float, keep: int) -> int:
        program = sql.prune_decisions(before, keep)
        return await self._run("prune the decision record", program, write=True)

    async def history(self, since: float) -> list[Tally]:
        return await self._run("read the history", sql.history(since))

    async def prune_history(self, before: float) -> int:
        program = sql.prune_history(before)
        return await self._run("prune the history", program, write=True)

    # --- pushes

    async def add_push(self, provider: str, body: str, received_at: float) -> int:
        program = sql.add_push(provider, body, received_at)
        return await self._run("keep a push", program, write=True, fenced=False)

    async def pushes(self, limit: int) -> list[Push]:
        return await self._run("read pushes", sql.pushes(limit))

    # --- copying

    async def copy_from(self, source: SqlStore) -> int:
        """Copy every row of `source` into this store, which must be fresh (no calls, silences
        or notifications); returns how many rows were copied."""
        busy = await self._run("read the destination", sql.occupied())
        if busy:
            raise StoreError(
                f"the destination already holds {', '.join(busy)}: a copy only goes into a new, "
                "empty store"
            )
        tables = await source._run("read the whole store", sql.dump())
        copied = await self._run("write the copy", sql.load(tables), write=True)
        await self._renumber()
        return copied

    async def expire_silence(self, silence_id: int, now: float) -> bool:
        """End a silence in force now (kept, no longer in force); False when none was."""
        program = sql.expire_silence(silence_id, now)
        return await self._run("expire a silence", program, write=True, fenced=False) > 0

    async def remove_silence(self, silence_id: int) -> bool:
        """Delete a silence; False when there was none with that id."""
        program = sql.remove_silence(silence_id)
        return await self._run("remove a silence", program, write=True) > 0
