"""The statements a store program yields, and the shape of a program (see `monitor.store.sql`)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from monitor.model import CallState

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
    "last_error, event_at, story"
)
_STATES = {s.value: s for s in CallState}


def _changed(query: str, params: Sequence[Any] = ()) -> Program[int]:
    """One statement; the number of rows it changed."""
    count = yield Exec(query, params)
    return int(count)
