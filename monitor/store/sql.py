"""What each store operation does, once for both backends: a *program* that yields SQL
statements and receives their results, which a backend runs in one transaction.

A program is a generator: it yields `Exec` (returns the number of rows changed), `Many` (runs
a statement for each row of parameters), `Query` (returns the rows) or `Notify`, and returns the
operation's result. SQLite runs it on its thread, PostgreSQL on an async connection; neither
holds a line of the logic. Statements use `%s` placeholders (SQLite's driver turns them into `?`).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, replace
from typing import Any, TypeVar

from monitor.model import CallState, Silence, StateKey, Tracked, shared
from monitor.store.base import (
    Attempt,
    CallChanges,
    Changes,
    Decision,
    Delivery,
    OutboxItem,
    ProviderState,
    Push,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Exec:
    sql: str
    params: Sequence[Any] = ()


@dataclass(frozen=True, slots=True)
class Many:
    sql: str
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: Sequence[Any] = ()
    stream: bool = False
    """The rows may come as an iterator, to be read before the program's next statement
    (SQLite hands them over as they are read: no list of a hundred thousand rows at start-up)."""


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the other processes on the store that `topic` changed (PostgreSQL's NOTIFY, sent
    when the transaction commits; SQLite, used by one process, has no one to tell)."""

    topic: str


Statement = Exec | Many | Query | Notify
Program = Generator[Statement, Any, T]

DECISION_COLUMNS = (
    "decided_at, provider, call_id, subject, kind, from_state, to_state, via, at, rule, verdict, "
    "detail, alert"
)
ITEM_COLUMNS = (
    "id, notifier, target, rule, severity, title, body, created_at, attempts, status, "
    "last_error, event_at"
)
_STATES = {s.value: s for s in CallState}


def _changed(query: str, params: Sequence[Any] = ()) -> Program[int]:
    """One statement; the number of rows it changed."""
    count = yield Exec(query, params)
    return int(count)


# --- calls, cursors, rule state


def load_provider(provider: str) -> Program[ProviderState]:
    rows = yield Query(
        "SELECT call_id, state, marker, created FROM calls WHERE provider = %s",
        (provider,),
        stream=True,
    )
    calls = {
        cid: Tracked(_STATES[state], shared(marker), created)
        for cid, state, marker, created in rows
    }
    found = yield Query("SELECT data FROM cursors WHERE provider = %s", (provider,))
    cursor: Mapping[str, Any] = json.loads(found[0][0]) if found else {}
    return ProviderState(calls, cursor)


def load_rule_state() -> Program[dict[StateKey, str]]:
    rows = yield Query("SELECT rule, kind, key, data FROM rule_state")
    return {StateKey(rule, kind, key): data for rule, kind, key, data in rows}


def commit(changes: Changes) -> Program[int]:
    """A step's changes; the number of deliveries that were new."""
    if changes.calls is not None:
        yield from _write_calls(changes.calls)
    yield from _write_rule_state(changes.rules)
    if changes.pushes_done:
        yield Many("DELETE FROM pushes WHERE id = %s", [(i,) for i in changes.pushes_done])
    if changes.decisions:
        yield Many(
            f"INSERT INTO decisions ({DECISION_COLUMNS}) VALUES ({', '.join(['%s'] * 13)})",
            [astuple(d) for d in changes.decisions],
        )
    return (yield from _insert_deliveries(changes.deliveries))


def _write_calls(calls: CallChanges) -> Program[None]:
    provider = calls.provider
    if calls.upserts:
        yield Many(
            "INSERT INTO calls (provider, call_id, state, marker, created) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (provider, call_id) DO UPDATE SET "
            "state = excluded.state, marker = excluded.marker",
            [
                (provider, cid, t.state.value, t.marker, t.created)
                for cid, t in calls.upserts.items()
            ],
        )
    if calls.deletes:
        yield Many(
            "DELETE FROM calls WHERE provider = %s AND call_id = %s",
            [(provider, cid) for cid in calls.deletes],
        )
    yield Exec(
        "INSERT INTO cursors (provider, data) VALUES (%s, %s) "
        "ON CONFLICT (provider) DO UPDATE SET data = excluded.data",
        (provider, json.dumps(dict(calls.cursor), sort_keys=True)),
    )


def _write_rule_state(changes: Mapping[StateKey, str | None]) -> Program[None]:
    gone = [tuple(k) for k, v in changes.items() if v is None]
    kept = [(*k, v) for k, v in changes.items() if v is not None]
    if gone:
        yield Many("DELETE FROM rule_state WHERE rule = %s AND kind = %s AND key = %s", gone)
    if kept:
        yield Many(
            "INSERT INTO rule_state (rule, kind, key, data) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (rule, kind, key) DO UPDATE SET data = excluded.data",
            kept,
        )


def _insert_deliveries(deliveries: Sequence[Delivery]) -> Program[int]:
    new = 0
    for d in deliveries:
        alert = d.alert
        decided = alert.created_at.timestamp()
        rows = yield Query(
            "INSERT INTO outbox (key, notifier, target, rule, severity, title, body, "
            "created_at, next_at, event_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO NOTHING RETURNING id",
            (
                d.key,
                alert.notifier,
                d.target,
                alert.rule,
                alert.severity.value,
                alert.title,
                alert.body,
                decided,
                decided,
                alert.event_at.timestamp() if alert.event_at else None,
            ),
        )
        new += len(rows)
    return new


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


# --- the decision record


def story(
    provider: str, call_id: str
) -> Program[tuple[list[Decision], dict[str, list[OutboxItem]]]]:
    rows = yield Query(
        f"SELECT {DECISION_COLUMNS} FROM decisions WHERE provider = %s AND call_id = %s "
        "ORDER BY id",
        (provider, call_id),
    )
    decisions = [Decision(*row) for row in rows]
    items = yield from deliveries({d.alert for d in decisions if d.alert})
    return decisions, items


def deliveries(alerts: Iterable[str]) -> Program[dict[str, list[OutboxItem]]]:
    """The outbox entries of each alert (keys `ALERT|NOTIFIER#TARGET`)."""
    items: dict[str, list[OutboxItem]] = {}
    for alert in sorted(alerts):
        # '}' sorts right after '|': the range holds exactly the alert's keys.
        found = yield Query(
            f"SELECT {ITEM_COLUMNS} FROM outbox WHERE key > %s AND key < %s ORDER BY id",
            (alert + "|", alert + "}"),
        )
        listed = []
        for row in found:
            item = OutboxItem(*row)
            tried = yield Query(
                "SELECT at, outcome, error FROM attempts WHERE outbox_id = %s ORDER BY id",
                (item.id,),
            )
            listed.append(replace(item, tries=tuple(Attempt(*t) for t in tried)))
        items[alert] = listed
    return items


def open_calls(limit: int) -> Program[list[tuple[str, str, str, float]]]:
    """Calls in progress (provider, id, state, created), newest first."""
    rows = yield Query(
        "SELECT provider, call_id, state, created FROM calls "
        "WHERE state IN ('ringing', 'answered') ORDER BY created DESC LIMIT %s",
        (limit,),
    )
    return [(str(p), str(c), str(s), float(t)) for p, c, s, t in rows]


def latest(limit: int, *, fired: bool = False) -> Program[list[Decision]]:
    """The newest events (or, with `fired`, the newest alerts decided), newest first."""
    which = "verdict = 'fired'" if fired else "rule IS NULL"
    rows = yield Query(
        f"SELECT {DECISION_COLUMNS} FROM decisions WHERE {which} ORDER BY id DESC LIMIT %s",
        (limit,),
    )
    return [Decision(*row) for row in rows]


def prune_decisions(before: float, keep: int) -> Program[int]:
    old = yield from _changed("DELETE FROM decisions WHERE decided_at < %s", (before,))
    newest = yield Query("SELECT MAX(id) FROM decisions")
    extra = 0
    if newest[0][0] is not None:
        extra = yield from _changed(
            "DELETE FROM decisions WHERE id <= %s", (int(newest[0][0]) - keep,)
        )
    return old + extra


# --- pushes


def add_push(provider: str, body: str, received_at: float) -> Program[int]:
    rows = yield Query(
        "INSERT INTO pushes (provider, body, received_at) VALUES (%s, %s, %s) RETURNING id",
        (provider, body, received_at),
    )
    yield Notify("pushes")
    return int(rows[0][0])


def pushes(limit: int) -> Program[list[Push]]:
    rows = yield Query(
        "SELECT id, provider, body, received_at FROM pushes ORDER BY id LIMIT %s", (limit,)
    )
    return [Push(int(i), provider, body, float(at)) for i, provider, body, at in rows]


# --- silences


def add_silence(
    rule: str, matchers: Sequence[tuple[str, str]], starts: float, ends: float, comment: str
) -> Program[int]:
    rows = yield Query(
        "INSERT INTO silences (rule, matchers, starts, ends, comment) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (rule, json.dumps([list(m) for m in matchers]), starts, ends, comment),
    )
    yield Notify("silences")
    return int(rows[0][0])


def silences(now: float | None) -> Program[list[Silence]]:
    query = "SELECT id, rule, matchers, starts, ends, comment FROM silences"
    args: tuple[Any, ...] = ()
    if now is not None:
        query += " WHERE ends > %s"
        args = (now,)
    rows = yield Query(query + " ORDER BY id", args)
    return [
        Silence(sid, rule, tuple((k, v) for k, v in json.loads(m)), starts, ends, comment)
        for sid, rule, m, starts, ends, comment in rows
    ]


def expire_silence(silence_id: int, now: float) -> Program[int]:
    changed = yield from _changed(
        "UPDATE silences SET ends = %s WHERE id = %s AND ends > %s", (now, silence_id, now)
    )
    if changed:
        yield Notify("silences")
    return changed


def remove_silence(silence_id: int) -> Program[int]:
    changed = yield from _changed("DELETE FROM silences WHERE id = %s", (silence_id,))
    if changed:
        yield Notify("silences")
    return changed


def nothing() -> Program[None]:
    """A program that writes nothing: a write transaction that proves the store writable."""
    return None
    yield  # a generator


# --- copying a whole store

COPIED = {
    "calls": "provider, call_id, state, marker, created",
    "cursors": "provider, data",
    "rule_state": "rule, kind, key, data",
    "silences": "id, rule, matchers, starts, ends, comment",
    "pushes": "id, provider, body, received_at",
    "decisions": "id, " + DECISION_COLUMNS,
    "attempts": "id, outbox_id, at, outcome, error",
    "outbox": "id, key, notifier, target, rule, severity, title, body, created_at, attempts, "
    "next_at, status, sent_at, last_error, event_at",
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
