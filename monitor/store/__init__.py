"""Durable state: tracked calls, cursors and the outbox. SQLite is the embedded default."""

from __future__ import annotations

from monitor.store.base import Delivery, OutboxItem, ProviderState, Store, StoreError
from monitor.store.sqlite import SqliteStore


def open_store(url: str) -> SqliteStore:
    """Open the store a config's `store` URL names."""
    if url.startswith("sqlite:"):
        return SqliteStore.from_url(url)
    raise StoreError(f"store {url.split('://')[0]}:// is not supported yet; use sqlite:///PATH")


__all__ = [
    "Delivery",
    "OutboxItem",
    "ProviderState",
    "SqliteStore",
    "Store",
    "StoreError",
    "open_store",
]
