"""The embedded store: one SQLite file in WAL mode.

Every commit is one transaction; WAL with `synchronous=NORMAL` survives a killed process (`kill -9`)
without losing a committed transaction. Statements run on one worker thread, one at a time, so a
file locked by another process (a CLI tool, a backup) makes a call wait or fail with `StoreError`
without ever blocking the event loop. Every method raises only `StoreError`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from monitor.model import CallState, Silence, StateKey, Tracked
from monitor.store.base import (
    CallChanges,
    Changes,
    Delivery,
    OutboxItem,
    ProviderState,
    StoreError,
    StoreHealth,
    StoreNotFound,
)

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000
"""How long one statement waits for a lock another process holds before it fails."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    provider TEXT NOT NULL,
    call_id TEXT NOT NULL,
    state TEXT NOT NULL,
    marker TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (provider, call_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    provider TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    notifier TEXT NOT NULL,
    target INTEGER NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    sent_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (notifier, target, status, next_at, id);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT NOT NULL,
    matchers TEXT NOT NULL,
    starts REAL NOT NULL,
    ends REAL NOT NULL,
    comment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_state (
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (rule, kind, key)
) WITHOUT ROWID;
"""

_ITEM_COLUMNS = (
    "id, notifier, target, rule, severity, title, body, created_at, attempts, status, last_error, "
    "event_at"
)
MIGRATIONS = (("outbox", "event_at", "ALTER TABLE outbox ADD COLUMN event_at REAL"),)


def sqlite_path(url: str) -> str:
    """The file path of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    if url == "sqlite://":
        return ":memory:"
    if not url.startswith("sqlite:///"):
        raise StoreError(f"not a SQLite URL: {url}")
    return url[len("sqlite:///") :]


class SqliteStore:
    """The `Store` on a SQLite file."""

    def __init__(
        self, path: str, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT_MS / 1000
    ) -> None:
        self.path = path
        self.health = StoreHealth()
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        if not create and path != ":memory:" and not Path(path).is_file():
            raise StoreNotFound(
                f"store {path} not found (is this the daemon's config? a tool never creates one)"
            )
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
            self._db.executescript(SCHEMA)
            for table, column, statement in MIGRATIONS:
                columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    self._db.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        self._identity = _identity(path)
        self._lost: str | None = None
        """Set once the file was found deleted or replaced: nothing is written into it again."""

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> SqliteStore:
        """Open the store a `sqlite:///…` URL names."""
        return cls(sqlite_path(url), create=create)

    async def _run(
        self, what: str, work: Callable[[sqlite3.Connection], T], *, write: bool = False
    ) -> T:
        """Run `work` on the store's thread; a SQLite error becomes a `StoreError` naming `what`.

        The store counts as working again only once a write succeeds: reads go on in WAL mode
        while another process holds the write lock.
        """
        if self._lost is not None:
            self.health.failed(self._lost)
            raise StoreError(self._lost)
        try:
            result = await anyio.to_thread.run_sync(self._locked, work, limiter=self._limiter)
        except (sqlite3.Error, OSError) as exc:
            message = f"store {self.path}: cannot {what}: {exc}"
            self.health.failed(message)
            raise StoreError(message) from None
        if write:
            self.health.ok()
        return result

    def _locked(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return work(self._db)

    async def _transaction(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one write transaction: all of it is stored, or none."""

        def run(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result

        return await self._run(what, run, write=True)

    async def check(self) -> None:
        """Fail when the file was deleted or replaced, or when it cannot be written."""
        if self._identity is not None and _identity(self.path) != self._identity:
            self._lost = f"store {self.path}: the file was deleted or replaced while in use"
            self.health.failed(self._lost)
            raise StoreError(self._lost)
        await self._transaction("write", lambda db: None)

    async def load_provider(self, provider: str) -> ProviderState:
        def read(db: sqlite3.Connection) -> ProviderState:
            rows = db.execute(
                "SELECT call_id, state, marker, created FROM calls WHERE provider = ?", (provider,)
            )
            states = {s.value: s for s in CallState}
            calls = {
                cid: Tracked(states[state], marker, created) for cid, state, marker, created in rows
            }
            row = db.execute("SELECT data FROM cursors WHERE provider = ?", (provider,)).fetchone()
            cursor: Mapping[str, Any] = json.loads(row[0]) if row else {}
            return ProviderState(calls, cursor)

        return await self._run(f"read the state of {provider}", read)

    async def commit(self, changes: Changes) -> int:
        def write(db: sqlite3.Connection) -> int:
            if changes.calls is not None:
                _write_calls(db, changes.calls)
            _write_rule_state(db, changes.rules)
            return _insert_deliveries(db, changes.deliveries)

        what = (
            f"commit the poll of {changes.calls.provider}" if changes.calls else "store rule state"
        )
        return await self._transaction(what, write)

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Queue deliveries on their own (for tools and tests)."""
        return await self.commit(Changes(deliveries=deliveries))

    async def load_rule_state(self) -> dict[StateKey, str]:
        def read(db: sqlite3.Connection) -> dict[StateKey, str]:
            rows = db.execute("SELECT rule, kind, key, data FROM rule_state")
            return {StateKey(rule, kind, key): data for rule, kind, key, data in rows}

        return await self._run("read rule state", read)

    async def due(self, notifier: str, target: int, now: float, limit: int) -> list[OutboxItem]:
        # Order is kept per target: nothing is sent while the head of its queue waits to retry.
        def read(db: sqlite3.Connection) -> list[OutboxItem]:
            rows = db.execute(
                f"SELECT {_ITEM_COLUMNS}, next_at FROM outbox WHERE notifier = ? AND target = ? "
                "AND status = 'pending' ORDER BY id LIMIT ?",
                (notifier, target, limit),
            ).fetchall()
            if not rows or rows[0][-1] > now:
                return []
            return [OutboxItem(*row[:-1]) for row in rows]

        return await self._run("read the outbox", read)

    async def next_due(self, notifier: str, target: int) -> float | None:
        def read(db: sqlite3.Connection) -> float | None:
            row = db.execute(
                "SELECT next_at FROM outbox WHERE notifier = ? AND target = ? "
                "AND status = 'pending' ORDER BY id LIMIT 1",
                (notifier, target),
            ).fetchone()
            return None if row is None else float(row[0])

        return await self._run("read the outbox", read)

    async def mark_sent(self, item_id: int, now: float) -> None:
        await self._write(
            "record a sent notification",
            "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
            "last_error = NULL WHERE id = ?",
            (now, item_id),
        )

    async def mark_failed(self, item_id: int, retry_at: float, error: str) -> None:
        await self._write(
            "record a failed delivery",
            "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?",
            (retry_at, error[:500], item_id),
        )

    async def mark_dead(self, item_id: int, error: str) -> None:
        await self._write(
            "dead-letter a notification",
            "UPDATE outbox SET status = 'dead', last_error = ? WHERE id = ?",
            (error[:500], item_id),
        )

    async def _write(self, what: str, statement: str, args: Sequence[Any]) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        return await self._transaction(what, lambda db: db.execute(statement, args).rowcount)

    async def oldest_pending(self, notifier: str) -> float | None:
        def read(db: sqlite3.Connection) -> float | None:
            row = db.execute(
                "SELECT MIN(created_at) FROM outbox WHERE notifier = ? AND status = 'pending'",
                (notifier,),
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self._run("read the outbox", read)

    async def outbox_select(self, *, dead: bool, notifier: str | None = None) -> list[OutboxItem]:
        """Undelivered (or, with `dead`, dead-lettered) entries, oldest first."""
        query = f"SELECT {_ITEM_COLUMNS} FROM outbox WHERE status = ?"
        args: list[Any] = ["dead" if dead else "pending"]
        if notifier is not None:
            query += " AND notifier = ?"
            args.append(notifier)
        return await self._select("read the outbox", query + " ORDER BY id", args)

    async def _select(self, what: str, query: str, args: Sequence[Any]) -> list[OutboxItem]:
        return await self._run(
            what, lambda db: [OutboxItem(*row) for row in db.execute(query, args)]
        )

    async def outbox_retry(self, *, dead: bool, notifier: str | None = None) -> int:
        """Make entries due now: pending ones skip their backoff, dead ones are revived with a
        fresh `max_age` (their `created_at` restarts now; `event_at` keeps the event's time)."""
        now = time.time()
        revive = ", created_at = ?" if dead else ""
        query = (
            f"UPDATE outbox SET status = 'pending', next_at = ?, attempts = 0{revive} "
            "WHERE status = ?"
        )
        args: list[Any] = [now, *([now] if dead else []), "dead" if dead else "pending"]
        if notifier is not None:
            query += " AND notifier = ?"
            args.append(notifier)
        return await self._write("retry notifications", query, args)

    async def outbox_purge(self, *, dead: bool, notifier: str | None = None) -> int:
        """Delete undelivered (or dead-lettered) entries; returns how many."""
        query = "DELETE FROM outbox WHERE status = ?"
        args: list[Any] = ["dead" if dead else "pending"]
        if notifier is not None:
            query += " AND notifier = ?"
            args.append(notifier)
        return await self._write("purge notifications", query, args)

    async def prune_sent(self, before: float) -> int:
        """Forget delivered entries decided before `before` (their keys are no longer needed)."""
        return await self._write(
            "prune sent notifications",
            "DELETE FROM outbox WHERE status = 'sent' AND created_at < ?",
            (before,),
        )

    async def pending_count(self, notifier: str) -> int:
        def read(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE notifier = ? AND status = 'pending'",
                (notifier,),
            ).fetchone()
            return int(row[0])

        return await self._run("read the outbox", read)

    async def outbox(self, *, status: str | None = None) -> list[OutboxItem]:
        """Every outbox entry, optionally of one status, oldest first."""
        query = f"SELECT {_ITEM_COLUMNS} FROM outbox"
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        return await self._select("read the outbox", query + " ORDER BY id", args)

    async def add_silence(
        self,
        rule: str,
        matchers: Sequence[tuple[str, str]],
        starts: float,
        ends: float,
        comment: str,
    ) -> int:
        """Store a silence; returns its id."""

        def write(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO silences (rule, matchers, starts, ends, comment) "
                "VALUES (?, ?, ?, ?, ?)",
                (rule, json.dumps([list(m) for m in matchers]), starts, ends, comment),
            )
            return int(cursor.lastrowid or 0)

        return await self._transaction("add a silence", write)

    async def silences(self, now: float | None = None) -> list[Silence]:
        """Silences not yet expired at `now` (every one when None), oldest first."""
        query = "SELECT id, rule, matchers, starts, ends, comment FROM silences"
        args: tuple[Any, ...] = ()
        if now is not None:
            query += " WHERE ends > ?"
            args = (now,)

        def read(db: sqlite3.Connection) -> list[Silence]:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
            return [
                Silence(sid, rule, tuple((k, v) for k, v in json.loads(m)), starts, ends, comment)
                for sid, rule, m, starts, ends, comment in rows
            ]

        return await self._run("read silences", read)

    async def remove_silence(self, silence_id: int) -> bool:
        """Delete a silence; False when there was none with that id."""
        changed = await self._write(
            "remove a silence", "DELETE FROM silences WHERE id = ?", (silence_id,)
        )
        return changed > 0

    async def close(self) -> None:
        self._lost = None  # closing the connection is allowed whatever happened to the file
        await self._run("close", lambda db: db.close())


def _identity(path: str) -> tuple[int, int] | None:
    """The file's device and inode, to notice it being deleted or replaced; None for memory."""
    if path == ":memory:":
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_dev, stat.st_ino)


def _insert_deliveries(db: sqlite3.Connection, deliveries: Sequence[Delivery]) -> int:
    before = db.total_changes
    db.executemany(
        "INSERT OR IGNORE INTO outbox (key, notifier, target, rule, severity, title, body, "
        "created_at, next_at, event_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                d.key,
                d.alert.notifier,
                d.target,
                d.alert.rule,
                d.alert.severity.value,
                d.alert.title,
                d.alert.body,
                d.alert.created_at.timestamp(),
                d.alert.created_at.timestamp(),
                d.alert.event_at.timestamp() if d.alert.event_at else None,
            )
            for d in deliveries
        ],
    )
    return db.total_changes - before


def _write_calls(db: sqlite3.Connection, calls: CallChanges) -> None:
    provider = calls.provider
    if calls.upserts:
        db.executemany(
            "INSERT INTO calls (provider, call_id, state, marker, created) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider, call_id) DO UPDATE SET "
            "state = excluded.state, marker = excluded.marker",
            [
                (provider, cid, t.state.value, t.marker, t.created)
                for cid, t in calls.upserts.items()
            ],
        )
    if calls.deletes:
        db.executemany(
            "DELETE FROM calls WHERE provider = ? AND call_id = ?",
            [(provider, cid) for cid in calls.deletes],
        )
    db.execute(
        "INSERT INTO cursors (provider, data) VALUES (?, ?) "
        "ON CONFLICT (provider) DO UPDATE SET data = excluded.data",
        (provider, json.dumps(dict(calls.cursor), sort_keys=True)),
    )


def _write_rule_state(db: sqlite3.Connection, changes: Mapping[StateKey, str | None]) -> None:
    gone = [tuple(k) for k, v in changes.items() if v is None]
    kept = [(*k, v) for k, v in changes.items() if v is not None]
    if gone:
        db.executemany("DELETE FROM rule_state WHERE rule = ? AND kind = ? AND key = ?", gone)
    if kept:
        db.executemany(
            "INSERT INTO rule_state (rule, kind, key, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (rule, kind, key) DO UPDATE SET data = excluded.data",
            kept,
        )
