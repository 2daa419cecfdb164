"""The embedded store: one SQLite file in WAL mode.

Every operation is one transaction (a program of `monitor.store.sql`, run on one worker thread);
WAL with `synchronous=NORMAL` survives a killed process (`kill -9`) without losing a committed
transaction. A file locked by another process (a CLI tool, a backup) makes a call wait or fail
with `StoreError` without ever blocking the event loop. Every method raises only `StoreError`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from monitor.store import schema, sql
from monitor.store.base import StoreError, StoreHealth, StoreNotFound
from monitor.store.database import SqlStore

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000
"""How long one statement waits for a lock another process holds before it fails."""


def sqlite_path(url: str) -> str:
    """The file path of a `sqlite:///relative` or `sqlite:////absolute` URL."""
    if url == "sqlite://":
        return ":memory:"
    if not url.startswith("sqlite:///"):
        raise StoreError(f"not a SQLite URL: {url}")
    return url[len("sqlite:///") :]


class SqliteStore(SqlStore):
    """The `Store` on a SQLite file."""

    def __init__(
        self, path: str, *, create: bool = True, busy_timeout: float = BUSY_TIMEOUT_MS / 1000
    ) -> None:
        self.path = path
        self.health = StoreHealth()
        self._lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(1)
        self._sql: dict[str, str] = {}
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
            self._upgrade()
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        self._identity = _identity(path)
        self._lost: str | None = None
        """Set once the file was found deleted or replaced: nothing is written into it again."""

    @classmethod
    def from_url(cls, url: str, *, create: bool = True) -> SqliteStore:
        """Open the store a `sqlite:///…` URL names."""
        return cls(sqlite_path(url), create=create)

    def _upgrade(self) -> None:
        """Bring the file to the current schema, in one exclusive transaction."""
        db = self._db
        db.execute("BEGIN EXCLUSIVE")
        try:
            self._drive(schema.prepare(schema.SQLITE, name=self.path))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    async def _run(
        self, what: str, program: sql.Program[T], *, write: bool = False, fenced: bool = True
    ) -> T:
        """Run `program` on the store's thread, in one transaction.

        The store counts as working again only once a write succeeds: reads go on in WAL mode
        while another process holds the write lock.
        """
        if self._lost is not None:
            self.health.failed(self._lost)
            raise StoreError(self._lost)
        try:
            result = await anyio.to_thread.run_sync(
                self._execute, program, write, limiter=self._limiter
            )
        except (sqlite3.Error, OSError) as exc:
            message = f"store {self.path}: cannot {what}: {exc}"
            self.health.failed(message)
            raise StoreError(message) from None
        if write:
            self.health.ok()
        return result

    def _execute(self, program: sql.Program[T], write: bool) -> T:
        with self._lock:
            db = self._db
            if write:
                db.execute("BEGIN IMMEDIATE")
            try:
                result = self._drive(program)
                if write:
                    db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result

    def _drive(self, program: sql.Program[T]) -> T:
        """Run each statement the program yields, sending it the result."""
        db = self._db
        answer: Any = None
        try:
            while True:
                statement = program.send(answer)
                if isinstance(statement, sql.Notify):
                    answer = None  # one process: nobody else to tell
                    continue
                text = self._sql.get(statement.sql)
                if text is None:
                    text = self._sql[statement.sql] = statement.sql.replace("%s", "?")
                if isinstance(statement, sql.Many):
                    db.executemany(text, statement.rows)
                    answer = None
                elif isinstance(statement, sql.Query):
                    cursor = db.execute(text, statement.params)
                    answer = cursor if statement.stream else cursor.fetchall()
                else:
                    answer = db.execute(text, statement.params).rowcount
        except StopIteration as done:
            result: T = done.value
            return result

    async def check(self) -> None:
        """Fail when the file was deleted or replaced, or when it cannot be written."""
        if self._identity is not None and _identity(self.path) != self._identity:
            self._lost = f"store {self.path}: the file was deleted or replaced while in use"
            self.health.failed(self._lost)
            raise StoreError(self._lost)
        await self._run("write", sql.nothing(), write=True)

    async def close(self) -> None:
        self._lost = None  # closing the connection is allowed whatever happened to the file
        await self._run("close", _close(self._db))


def _close(db: sqlite3.Connection) -> sql.Program[None]:
    db.close()
    return None
    yield  # a generator


def _identity(path: str) -> tuple[int, int] | None:
    """The file's device and inode, to notice it being deleted or replaced; None for memory."""
    if path == ":memory:":
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_dev, stat.st_ino)
