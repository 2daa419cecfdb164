"""The shared store for several replicas: PostgreSQL through psycopg 3's async pool.

Every operation is one transaction driving a program of `monitor.store.sql` on a pooled
connection. libpq does the connecting, so multi-host URLs, `PG*` variables and TLS work as
documented for libpq. Tables are created and upgraded at open, under an advisory lock held for
the transaction, so replicas starting together take turns.

Leadership lives here too, on the database's clock: one `lease` row holds the leader's fencing
token. Once a replica leads, every write it makes first reads that row `FOR SHARE` in the same
transaction and fails with `LeaseLost` when the token moved on; a takeover, which updates the row,
waits for such a write to commit, so a write either lands before the new leader reads the store
or not at all.

`NOTIFY` tells the leader what another process changed (a silence, an `outbox retry`, a released
lease); `listen` hands those topics to a callback, reconnecting when the connection drops.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from monitor.store import schema, sql
from monitor.store.base import RECOVERED_AFTER, LeaseLost, StoreError, StoreHealth, display
from monitor.store.database import SqlStore
from monitor.store.lease import _acquire, _leader, _release, _renew, _renumber
from monitor.store.sessions import CONNECT_TIMEOUT, SessionBounds

RECONNECT_FOR = 10.0
"""How long the pool retries one lost connection (1 s, doubling) before it gives that attempt up
and makes a new one when a caller next waits: psycopg_pool's default, 5 minutes, let the delays
grow to 2 minutes, so that after a database restart (and a stretch of failed attempts) replicas
stayed without a connection for minutes after it was back (the soak's finding)."""

BUSY_WITHIN = CONNECT_TIMEOUT
"""An operation that found no connection free (`PoolTimeout`) while another completed within
this many seconds met a busy store, not a failing one: every connection is at work (a slow link,
a burst of pushes), and operations are being served. Such timeouts fail their operation but do
not count as the store failing, so that the watchdog does not restart a replica that works, only
slowly (a restart cannot make the link faster). The soak found it: a replica whose database link
was slowed by 0.5 s took pushes faster than eight connections could keep them, counted the
timeouts as a failing store, and was exited after `unhealthy_exit_after`."""

log = structlog.get_logger("monitor.store")
# The pool says "error connecting" at every attempt while the server is away; callmon says it
# once, in its own words, for the operation that failed.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

T = TypeVar("T")
CHANNEL = "callmon"
"""The NOTIFY channel; its payload is the topic (`outbox`, `silences`, `lease`)."""
UPGRADE_LOCK = 0x63616C6C6D6F6E  # "callmon"
"""The advisory lock that serialises schema upgrades of replicas starting together."""


class PostgresStore(SqlStore):
    """The `Store` on a PostgreSQL database, shared by every replica of one monitor."""

    def __init__(
        self, url: str, pool: AsyncConnectionPool[Any], bounds: SessionBounds | None = None
    ) -> None:
        self.url = url
        self.bounds = bounds or SessionBounds()
        self.name = display(url)
        self.health = StoreHealth()
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """This replica, as the lease row names it."""
        self.fence: int | None = None
        """The token this replica leads with; once set, every write checks it."""
        self.on_lease_lost: Callable[[], None] = lambda: None
        """Called when a write found the lease taken: the leader steps down without waiting."""
        self.fence_valid: Callable[[], bool] = lambda: True
        """Whether this replica still holds its lease this instant (its own clock says so): a
        fenced write of a replica that no longer does is refused before it touches the database,
        so that a deposed leader's lock never delays the new one."""
        self._pool = pool
        self.clock: Callable[[], float] = time.monotonic
        self._served = 0.0
        """When an operation last completed (monotonic seconds)."""
        self._busy_at: float | None = None
        """When an operation last found every connection at work, while this spell lasts."""

    @classmethod
    async def open(
        cls, url: str, *, create: bool = True, bounds: SessionBounds | None = None
    ) -> PostgresStore:
        """Connect, and bring the schema up to date (without `create`, an empty database is a
        `StoreNotFound`: a tool never creates the daemon's store). Every session runs under
        `bounds` (lock, idle-in-transaction, statement and TCP timeouts)."""
        name = display(url)
        bounds = bounds or SessionBounds()
        try:
            conn = await bounds.connect(url)
            async with conn:
                await _upgrade(conn, name, create)
        except ValueError as exc:
            raise StoreError(f"cannot open store {name}: {exc}") from None
        except (psycopg.Error, OSError) as exc:
            raise StoreError(f"cannot open store {name}: {_one_line(exc)}") from None
        return cls(url, await _open_pool(url, bounds), bounds)

    async def _run(
        self, what: str, program: sql.Program[T], *, write: bool = False, fenced: bool = True
    ) -> T:
        """Run `program` in one transaction on a pooled connection; a fenced write of a leading
        replica first checks its token."""
        fence = self.fence if write and fenced else None
        if fence is not None and not self.fence_valid():
            self.on_lease_lost()
            raise LeaseLost(
                f"store {self.name}: cannot {what}: this replica no longer holds the lease"
            )
        limit = self.bounds.operation
        try:
            with anyio.fail_after(limit or None):
                async with self._pool.connection() as conn, conn.transaction():
                    if fence is not None:
                        await self._check_fence(conn, fence)
                    result = await _drive(conn, program)
        except TimeoutError:
            message = f"store {self.name}: cannot {what}: no answer within {limit:g} s"
            self.health.failed(message)
            raise StoreError(message) from None
        except PoolTimeout as exc:
            message = f"store {self.name}: cannot {what}: {_one_line(exc)}"
            if not self._is_busy():
                self.health.failed(message)
            raise StoreError(message) from None
        except LeaseLost as exc:
            self.on_lease_lost()
            raise LeaseLost(f"store {self.name}: cannot {what}: {exc}") from None
        except (psycopg.Error, OSError) as exc:
            message = f"store {self.name}: cannot {what}: {_one_line(exc)}"
            self.health.failed(message)
            raise StoreError(message) from None
        self._served = now = self.clock()
        if self._busy_at is not None and now - self._busy_at > RECOVERED_AFTER:
            self._busy_at = None
            log.info("store no longer busy", store=self.name)
        if write:
            self.health.ok()
        return result

    def _is_busy(self) -> bool:
        """Whether an operation that found no connection met a busy store (see `BUSY_WITHIN`);
        the first of a spell says so, with the pool's figures."""
        now = self.clock()
        if now - self._served > BUSY_WITHIN:
            return False
        if self._busy_at is None:
            stats = self._pool.get_stats()
            log.warning(
                "store busy: every connection is at work; operations wait for one, and some "
                "give up",
                store=self.name,
                connections=stats.get("pool_size"),
                waiting=stats.get("requests_waiting"),
            )
        self._busy_at = now
        return True

    @staticmethod
    async def _check_fence(conn: AsyncConnection[Any], token: int) -> None:
        cur = await conn.execute("SELECT token FROM lease WHERE id = 1 FOR SHARE")
        row = await cur.fetchone()
        if row is None or row[0] != token:
            raise LeaseLost(f"another replica leads now (token {row and row[0]}, ours {token})")

    async def check(self) -> None:
        await self._run("write", sql.nothing(), write=True)

    async def close(self) -> None:
        await self._pool.close(timeout=1.0)  # a connection still in use is closed after it

    async def _renumber(self) -> None:
        """After a copy kept its ids: the next id of each table follows the largest copied."""
        await self._run("renumber", _renumber(), write=True)

    # --- leadership

    async def acquire(self, ttl: float) -> int | None:
        """Lead, when the lease is free, has expired, or is this replica's own: the new fencing
        token; None while another replica leads."""
        return await self._run("take the lease", _acquire(self.holder, ttl))

    async def renew(self, token: int, ttl: float) -> bool:
        """Extend the lease this replica holds with `token`; False once another took it."""
        return await self._run("renew the lease", _renew(self.holder, token, ttl))

    async def release(self, token: int) -> None:
        """Let another replica lead at once (on stop)."""
        await self._run("release the lease", _release(token))

    async def leader(self) -> tuple[str, int, float] | None:
        """Who leads: holder, token and the seconds the lease has left (negative: expired)."""
        return await self._run("read the lease", _leader())

    # --- notifications

    async def listen(self, handle: Callable[[str], None]) -> None:
        """Hand every topic notified on the channel to `handle`, until cancelled; a lost
        connection is made again (a topic sent meanwhile is missed: the loops poll as well)."""
        failures = 0
        while True:
            try:
                conn = await self.bounds.connect(self.url)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    failures = 0
                    async for note in conn.notifies():
                        handle(note.payload)
            except (psycopg.Error, OSError) as exc:
                failures += 1
                if failures == 1:
                    log.warning("store notifications lost; reconnecting", error=_one_line(exc))
                await anyio.sleep(min(5.0, 0.5 * failures))


async def _drive(conn: AsyncConnection[Any], program: sql.Program[T]) -> T:
    """Run each statement the program yields, sending it the result."""
    answer: Any = None
    try:
        while True:
            statement = program.send(answer)
            if isinstance(statement, sql.Many):
                async with conn.cursor() as cur:
                    await cur.executemany(statement.sql.encode(), statement.rows)
                answer = None
            elif isinstance(statement, sql.Notify):
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, statement.topic))
                answer = None
            else:
                cur = await conn.execute(statement.sql.encode(), statement.params)
                query = isinstance(statement, sql.Query)
                answer = await cur.fetchall() if query else cur.rowcount
    except StopIteration as done:
        result: T = done.value
        return result


async def _upgrade(conn: AsyncConnection[Any], name: str, create: bool) -> None:
    """Create or upgrade the tables in one transaction, under a lock that replicas starting
    together take in turn."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (UPGRADE_LOCK,))
        await _drive(conn, schema.prepare(schema.POSTGRES, create=create, name=name))


async def _open_pool(url: str, bounds: SessionBounds) -> AsyncConnectionPool[Any]:
    """The pool of a store's connections: it fills in the background."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=8,
        open=False,
        timeout=CONNECT_TIMEOUT,
        reconnect_timeout=RECONNECT_FOR,
        kwargs=bounds.connect_args(url),
        check=AsyncConnectionPool.check_connection,
        name="callmon",
    )
    await pool.open(wait=False)
    return pool


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
