"""Programs of the outbox: what is due, what was sent, failed or given up, retries and purges."""

from __future__ import annotations

from typing import Any

from monitor.store.base import (
    OutboxItem,
)
from monitor.store.sql.statements import (
    ITEM_COLUMNS,
    Exec,
    Notify,
    Program,
    Query,
    _changed,
)

# --- the outbox


def due(notifier: str, target: int, now: float, limit: int) -> Program[list[OutboxItem]]:
    # Order is kept per target: nothing is sent while the head of its queue waits to retry.
    rows = yield Query(
        f"SELECT {ITEM_COLUMNS}, next_at FROM outbox WHERE notifier = %s AND target = %s "
        "AND status = 'pending' ORDER BY id LIMIT %s",
        (notifier, target, limit),
    )
    if not rows or rows[0][-1] > now:
        return []
    return [OutboxItem(*row[:-1]) for row in rows]


def next_due(notifier: str, target: int) -> Program[float | None]:
    rows = yield Query(
        "SELECT next_at FROM outbox WHERE notifier = %s AND target = %s "
        "AND status = 'pending' ORDER BY id LIMIT 1",
        (notifier, target),
    )
    return float(rows[0][0]) if rows else None


def _attempt(item_id: int, at: float, outcome: str, error: str | None = None) -> Program[None]:
    yield Exec(
        "INSERT INTO attempts (outbox_id, at, outcome, error) VALUES (%s, %s, %s, %s)",
        (item_id, at, outcome, None if error is None else error[:500]),
    )


def mark_sent(item_id: int, now: float) -> Program[int]:
    changed = yield from _changed(
        "UPDATE outbox SET status = 'sent', sent_at = %s, attempts = attempts + 1, "
        "last_error = NULL WHERE id = %s",
        (now, item_id),
    )
    yield from _attempt(item_id, now, "sent")
    return changed


def mark_failed(item_id: int, retry_at: float, error: str, at: float) -> Program[int]:
    changed = yield from _changed(
        "UPDATE outbox SET attempts = attempts + 1, next_at = %s, last_error = %s WHERE id = %s",
        (retry_at, error[:500], item_id),
    )
    yield from _attempt(item_id, at, "failed", error)
    return changed


def mark_dead(item_id: int, error: str, at: float) -> Program[int]:
    changed = yield from _changed(
        "UPDATE outbox SET status = 'dead', last_error = %s WHERE id = %s",
        (error[:500], item_id),
    )
    yield from _attempt(item_id, at, "dead", error)
    return changed


def oldest_pending(notifier: str) -> Program[float | None]:
    rows = yield Query(
        "SELECT MIN(created_at) FROM outbox WHERE notifier = %s AND status = 'pending'",
        (notifier,),
    )
    return None if rows[0][0] is None else float(rows[0][0])


def pending_count(notifier: str) -> Program[int]:
    rows = yield Query(
        "SELECT COUNT(*) FROM outbox WHERE notifier = %s AND status = 'pending'", (notifier,)
    )
    return int(rows[0][0])


def outbox(status: str | None = None, notifier: str | None = None) -> Program[list[OutboxItem]]:
    """Entries (of one status, of one notifier), oldest first."""
    query, args = f"SELECT {ITEM_COLUMNS} FROM outbox", []
    where = [("status", status), ("notifier", notifier)]
    conditions = [f"{column} = %s" for column, value in where if value is not None]
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
        args = [value for _, value in where if value is not None]
    rows = yield Query(query + " ORDER BY id", args)
    return [OutboxItem(*row) for row in rows]


def outbox_retry(dead: bool, notifier: str | None, now: float) -> Program[int]:
    """Make entries due now: pending ones skip their backoff, dead ones are revived with a
    fresh `max_age` (their `created_at` restarts now; `event_at` keeps the event's time)."""
    revive = ", created_at = %s" if dead else ""
    query = (
        f"UPDATE outbox SET status = 'pending', next_at = %s, attempts = 0{revive} "
        "WHERE status = %s"
    )
    args: list[Any] = [now, *([now] if dead else []), "dead" if dead else "pending"]
    if notifier is not None:
        query += " AND notifier = %s"
        args.append(notifier)
    changed = yield from _changed(query, args)
    if changed:
        yield Notify("outbox")
    return changed


def outbox_purge(dead: bool, notifier: str | None) -> Program[int]:
    query = "DELETE FROM outbox WHERE status = %s"
    args: list[Any] = ["dead" if dead else "pending"]
    if notifier is not None:
        query += " AND notifier = %s"
        args.append(notifier)
    return (yield from _changed(query, args))


def prune_sent(before: float) -> Program[int]:
    pruned = yield from _changed(
        "DELETE FROM outbox WHERE status = 'sent' AND created_at < %s", (before,)
    )
    yield Exec("DELETE FROM attempts WHERE outbox_id NOT IN (SELECT id FROM outbox)")
    return pruned
