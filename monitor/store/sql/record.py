"""Programs of what callmon saw and decided (the decision record, a call's story), pushes kept,
and silences."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from monitor.model import Silence
from monitor.store.base import (
    Attempt,
    Decision,
    OutboxItem,
    Push,
)
from monitor.store.sql.statements import (
    DECISION_COLUMNS,
    ITEM_COLUMNS,
    Notify,
    Program,
    Query,
    _changed,
)

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
