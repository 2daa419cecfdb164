"""Programs of a poll: tracked calls, cursors, rule state, and the deliveries decided with them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import astuple
from typing import Any

from monitor.model import StateKey, Tracked, shared
from monitor.store.base import (
    CallChanges,
    Changes,
    Delivery,
    ProviderState,
)
from monitor.store.sql.history import add_tally
from monitor.store.sql.statements import (
    _STATES,
    DECISION_COLUMNS,
    Exec,
    Many,
    Program,
    Query,
)

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
    if changes.tally:
        yield from add_tally(changes.tally)
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
            "created_at, next_at, event_at, story) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
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
                alert.story,
            ),
        )
        new += len(rows)
    return new
