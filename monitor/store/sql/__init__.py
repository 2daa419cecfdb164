"""What each store operation does, once for both backends: a *program* that yields SQL
statements and receives their results, which a backend runs in one transaction.

A program is a generator: it yields `Exec` (returns the number of rows changed), `Many` (runs
a statement for each row of parameters), `Query` (returns the rows) or `Notify`, and returns the
operation's result. SQLite runs it on its thread, PostgreSQL on an async connection; neither
holds a line of the logic. Statements use `%s` placeholders (SQLite's driver turns them into `?`).
"""

from __future__ import annotations

from monitor.store.sql.calls import (
    commit,
    load_provider,
    load_rule_state,
)
from monitor.store.sql.copying import (
    COPIED,
    OCCUPYING,
    Dump,
    dump,
    load,
    occupied,
)
from monitor.store.sql.history import add_tally, history, prune_history
from monitor.store.sql.outbox import (
    due,
    mark_dead,
    mark_failed,
    mark_sent,
    next_due,
    oldest_pending,
    outbox,
    outbox_purge,
    outbox_retry,
    pending_count,
    prune_sent,
)
from monitor.store.sql.record import (
    add_push,
    add_silence,
    deliveries,
    expire_silence,
    latest,
    nothing,
    open_calls,
    prune_decisions,
    pushes,
    remove_silence,
    silences,
    story,
)
from monitor.store.sql.statements import (
    DECISION_COLUMNS,
    ITEM_COLUMNS,
    Exec,
    Many,
    Notify,
    Program,
    Query,
    Statement,
)

__all__ = [
    "COPIED",
    "DECISION_COLUMNS",
    "ITEM_COLUMNS",
    "OCCUPYING",
    "Dump",
    "Exec",
    "Many",
    "Notify",
    "Program",
    "Query",
    "Statement",
    "add_push",
    "add_silence",
    "add_tally",
    "commit",
    "deliveries",
    "due",
    "dump",
    "expire_silence",
    "history",
    "latest",
    "load",
    "load_provider",
    "load_rule_state",
    "mark_dead",
    "mark_failed",
    "mark_sent",
    "next_due",
    "nothing",
    "occupied",
    "oldest_pending",
    "open_calls",
    "outbox",
    "outbox_purge",
    "outbox_retry",
    "pending_count",
    "prune_decisions",
    "prune_history",
    "prune_sent",
    "pushes",
    "remove_silence",
    "silences",
    "story",
]
