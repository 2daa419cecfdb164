"""Durable state: tracked calls, cursors, rule state, silences and the outbox.

`base` is the interface the rest of callmon sees (`Store`, `Changes`, the errors); `schema` the
versioned tables and their upgrades; `sql` what each operation does, as programs of statements
written once for every backend; `database` runs those programs in transactions; `sqlite` is the
embedded backend and `postgres` the shared one. The store imports only the model."""

from __future__ import annotations

from monitor.store.base import (
    CallChanges,
    Changes,
    Decision,
    Delivery,
    LeaseLost,
    OutboxItem,
    ProviderState,
    Push,
    StoreError,
    StoreHealth,
    StoreNotFound,
    Tally,
)
from monitor.store.database import SqlStore
from monitor.store.ports import Health, Outbox, Pushes, Records, Steps, Store, Upkeep
from monitor.store.sqlite import SqliteStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


async def open_store(url: str, *, create: bool = True, lease_ttl: float | None = None) -> SqlStore:
    """Open the store a config's `store` URL names; without `create`, a missing store is a
    `StoreNotFound` (tools never create an empty store where the daemon's should be). With
    `lease_ttl` (the daemon), a PostgreSQL session's timeouts are bounded by the lease."""
    if url.startswith("sqlite:"):
        return SqliteStore.from_url(url, create=create)
    if url.startswith(POSTGRES_SCHEMES):
        from monitor.store.postgres import PostgresStore  # psycopg only where it is used
        from monitor.store.sessions import SessionBounds

        bounds = SessionBounds.for_lease(lease_ttl) if lease_ttl else None
        return await PostgresStore.open(url, create=create, bounds=bounds)
    raise StoreError(
        f"store {url.split('://')[0]}:// is not supported; use sqlite:///PATH or postgresql://…"
    )


__all__ = [
    "CallChanges",
    "Changes",
    "Decision",
    "Delivery",
    "Health",
    "LeaseLost",
    "Outbox",
    "OutboxItem",
    "ProviderState",
    "Push",
    "Pushes",
    "Records",
    "SqlStore",
    "SqliteStore",
    "Steps",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoreNotFound",
    "Tally",
    "Upkeep",
    "open_store",
]
