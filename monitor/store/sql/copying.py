"""Programs that copy a whole store (`callmon store copy`)."""

from __future__ import annotations

from typing import Any

from monitor.store.sql.statements import (
    DECISION_COLUMNS,
    Many,
    Program,
    Query,
)

# --- copying a whole store

COPIED = {
    "calls": "provider, call_id, state, marker, created",
    "cursors": "provider, data",
    "rule_state": "rule, kind, key, data",
    "silences": "id, rule, matchers, starts, ends, comment",
    "pushes": "id, provider, body, received_at",
    "decisions": "id, " + DECISION_COLUMNS,
    "attempts": "id, outbox_id, at, outcome, error",
    "history": "hour, provider, door, answered, missed",
    "outbox": "id, key, notifier, target, rule, severity, title, body, created_at, attempts, "
    "next_at, status, sent_at, last_error, event_at, story",
}
"""Every table a copy carries, with its columns (ids kept: a copy is the same store).
The lease is not copied: leadership belongs to the running replicas of each store."""
OCCUPYING = ("calls", "silences", "outbox")
"""A store holding rows in any of these is in use: a copy never writes into it."""

Dump = dict[str, list[tuple[Any, ...]]]


def dump() -> Program[Dump]:
    """Every row of every copied table."""
    tables: Dump = {}
    for table, columns in COPIED.items():
        rows = yield Query(f"SELECT {columns} FROM {table} ORDER BY 1")
        tables[table] = [tuple(row) for row in rows]
    return tables


def occupied() -> Program[list[str]]:
    """The tables that make a store in use (empty when it is fresh)."""
    found = []
    for table in OCCUPYING:
        rows = yield Query(f"SELECT 1 FROM {table} LIMIT 1")
        if rows:
            found.append(table)
    return found


def load(tables: Dump) -> Program[int]:
    """Write a dump into a fresh store; the number of rows written."""
    written = 0
    for table, columns in COPIED.items():
        rows = tables.get(table, [])
        if rows:
            marks = ", ".join(["%s"] * len(columns.split(",")))
            yield Many(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            written += len(rows)
    return written
