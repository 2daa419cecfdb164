"""What only the shared store does, on a real PostgreSQL server: upgrades under a lock, the
lease with its fencing token, notifications to other processes, and its errors."""

from __future__ import annotations

import asyncio
import sqlite3

import psycopg
import pytest
import structlog.testing

from monitor.model import CallState, Tracked
from monitor.store import (
    CallChanges,
    Changes,
    LeaseLost,
    StoreError,
    StoreNotFound,
    open_store,
    schema,
)
from monitor.store.base import RECOVERED_AFTER
from monitor.store.postgres import BUSY_WITHIN, PostgresStore
from tests.conftest import wait_for, wait_until
from tests.test_store import FIXTURES, alert

DELIVERY_COLUMNS_0_1_0 = (
    "id, key, notifier, target, rule, severity, title, body, created_at, attempts, next_at, "
    "status, sent_at, last_error"
)


async def postgres(url: str, *, create: bool = True) -> PostgresStore:
    store = await open_store(url, create=create)
    assert isinstance(store, PostgresStore)
    return store


def version(url: str) -> list[tuple[int]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version FROM schema_version").fetchall()


async def test_a_0_1_0_store_moved_to_postgresql_as_it_was_is_upgraded(pg_url: str) -> None:
    """0.1.0's tables (no version table, no `event_at`) filled with the rows of the real 0.1.0
    file, then opened: upgraded in place, every row readable."""
    old = sqlite3.connect(FIXTURES / "callmon-0.1.0.db")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in schema.statements(schema.TABLES, schema.POSTGRES):
            if "lease" not in statement:
                conn.execute(statement.encode())
        conn.execute("ALTER TABLE outbox DROP COLUMN event_at")
        for table, columns in [
            ("calls", "provider, call_id, state, marker, created"),
            ("cursors", "provider, data"),
            ("rule_state", "rule, kind, key, data"),
            ("silences", "id, rule, matchers, starts, ends, comment"),
            ("outbox", DELIVERY_COLUMNS_0_1_0),
        ]:
            rows = old.execute(f"SELECT {columns} FROM {table}").fetchall()
            marks = ", ".join(["%s"] * len(columns.split(",")))
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    old.close()

    store = await postgres(pg_url, create=False)
    state = await store.load_provider("front-door")
    assert state.calls["1001"].state is CallState.RINGING
    assert state.cursor["provider"] == {"doors": [158, 180]}
    assert [(i.status, i.attempts, i.event_at) for i in await store.outbox()] == [
        ("sent", 1, None),
        ("dead", 0, None),
        ("pending", 1, None),
    ]
    (silence,) = await store.silences()
    assert silence.matchers == (("call.intercom.id", "180"),)
    await store.close()
    assert version(pg_url) == [(schema.VERSION,)]


async def test_replicas_starting_together_upgrade_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(postgres(pg_url) for _ in range(6)))
    assert version(pg_url) == [(schema.VERSION,)]
    await stores[0].commit(Changes(CallChanges("door", {"1": Tracked(CallState.RINGING, "", 1)})))
    assert (await stores[5].load_provider("door")).calls.keys() == {"1"}
    for store in stores:
        await store.close()


async def test_a_store_written_by_a_newer_callmon_is_refused(pg_url: str) -> None:
    await (await postgres(pg_url)).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError) as refused:
        await postgres(pg_url)
    assert str(refused.value) == (
        f"cannot open store {pg_url}: the store is at schema version 99, newer than this "
        f"callmon's {schema.VERSION}: upgrade callmon, or use a store it wrote"
    )


async def test_a_tool_never_creates_the_store(pg_url: str) -> None:
    with pytest.raises(StoreNotFound, match="holds no callmon tables"):
        await postgres(pg_url, create=False)
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()
    assert tables == (0,)


async def test_an_unreachable_server_is_one_line_without_the_password(pg_server: str) -> None:
    from tests.conftest import free_port

    port = free_port()
    url = f"postgresql://callmon:hunter2-secret@127.0.0.1:{port}/callmon"
    with pytest.raises(StoreError) as failed:
        await postgres(url)
    message = str(failed.value)
    assert message.startswith(f"cannot open store postgresql://callmon@127.0.0.1:{port}/callmon: ")
    assert "connection" in message.lower()
    assert "refused" in message.lower()
    assert "hunter2" not in message
    assert "\n" not in message


async def test_the_lease_goes_to_one_replica_and_over_on_expiry(pg_url: str) -> None:
    a, b = await postgres(pg_url), await postgres(pg_url)
    token = await a.acquire(ttl=0.5)
    assert token == 1
    assert await b.acquire(ttl=0.5) is None
    assert await a.renew(1, ttl=0.5) is True
    await wait_until(lambda: b.acquire(ttl=30), bool, timeout=5)  # once a stopped renewing
    leader = await b.leader()
    assert leader is not None
    assert leader[0] == b.holder
    assert leader[1] == 2
    assert await a.renew(1, ttl=30) is False
    assert await a.acquire(ttl=30) is None
    await b.release(2)
    assert await a.acquire(ttl=30) == 3  # at once: no wait for the expiry
    for store in (a, b):
        await store.close()


async def test_a_leader_that_lost_the_lease_changes_nothing(pg_url: str) -> None:
    """Every write of a replica that leads checks its token in the same transaction."""
    old, new = await postgres(pg_url), await postgres(pg_url)
    old.fence = await old.acquire(ttl=0.3)
    lost: list[bool] = []
    old.on_lease_lost = lambda: lost.append(True)
    calls = CallChanges("door", {"1": Tracked(CallState.RINGING, "", 1.0)})
    await old.commit(Changes(calls))
    new.fence = await wait_until(lambda: new.acquire(ttl=30), bool, timeout=5)

    missed = CallChanges("door", {"1": Tracked(CallState.MISSED, "", 1.0)})
    writes = [
        old.commit(Changes(missed, deliveries=[])),
        old.enqueue([]),
        old.mark_sent(1, 2.0),
        old.check(),
    ]
    for write in writes:
        with pytest.raises(LeaseLost, match="another replica leads now"):
            await write
    assert lost == [True] * 4
    assert old.health.failing_since is None  # not a store failure: nothing to restart
    assert (await new.load_provider("door")).calls["1"].state is CallState.RINGING
    from monitor.store import Delivery

    assert await new.enqueue([Delivery(alert("a"), 0)]) == 1  # the leader writes
    for store in (old, new):
        await store.close()


async def test_another_process_s_changes_are_notified(pg_url: str) -> None:
    daemon, tool = await postgres(pg_url), await postgres(pg_url)
    topics: list[str] = []
    listening = asyncio.create_task(daemon.listen(topics.append))
    try:
        # LISTEN is issued on a connection of its own: wait until it hears.
        async def heard(topic: str) -> bool:
            if topic in topics:
                return True
            if topic == "silences":
                await tool.add_silence("r", [], 0, 1, "")
            return False

        await wait_until(lambda: heard("silences"), bool, timeout=10)
        from monitor.store import Delivery

        await tool.enqueue([Delivery(alert("a"), 0)])
        await tool.outbox_retry(dead=False)
        await wait_until(lambda: heard("outbox"), bool, timeout=10)
        token = await tool.acquire(ttl=30)
        assert token is not None
        await tool.release(token)
        await wait_until(lambda: heard("lease"), bool, timeout=10)
    finally:
        listening.cancel()
    for store in (daemon, tool):
        await store.close()


async def test_a_database_down_for_long_is_used_again_soon_after_it_is_back() -> None:
    """The soak's finding: after a database restart with a stretch of failed connection
    attempts, the pool retried on psycopg_pool's own schedule (1 s doubling, for 5 minutes), so
    a replica stayed without a connection for minutes after the database was back: pushes were
    refused and the leader lost its lease. Now one attempt gives up after `RECONNECT_FOR` and
    the next caller starts a fresh one."""
    import time

    from monitor.store import open_store
    from tests.pg import Cluster

    cluster = Cluster()
    try:
        store = await open_store(cluster.url)
        await store.check()
        await asyncio.to_thread(cluster.stop)
        with pytest.raises(StoreError):
            await store.check()
        down = time.monotonic()  # the pool's first attempt to reconnect starts about now
        while time.monotonic() - down < 35:  # and its attempts fail all along
            with pytest.raises(StoreError):
                await store.check()
        await asyncio.to_thread(cluster.start)

        async def works() -> bool:
            try:
                await store.check()
            except StoreError:
                return False
            return True

        # Each check waits up to CONNECT_TIMEOUT for a connection. On psycopg_pool's own
        # schedule the next attempt came 63 s after the first (seen: 17 s after the start): the
        # checks of the next half-minute failed. With `RECONNECT_FOR` it is at most 4 s away, or
        # starts with a check: the second check after the database is back works at the latest.
        assert [await works() for _ in range(2)][-1]
        await store.close()
    finally:
        await asyncio.to_thread(cluster.destroy)


async def test_a_busy_store_is_not_a_failing_one(pg_url: str) -> None:
    """The soak's finding: a replica whose database link was slowed took pushes faster than its
    connections could keep them; the operations that found every connection at work counted as
    the store failing, and the watchdog exited a replica that worked, only slowly. Such a
    timeout fails its operation, says once that the store is busy, and the store stays healthy
    while operations complete; it fails once none has completed for `BUSY_WITHIN`."""
    store = await postgres(pg_url)
    now = [1000.0]
    store.clock = lambda: now[0]
    pool = store._pool
    pool.timeout = 0.2
    lost = [await pool.getconn() for _ in range(7)]  # one connection left for the store's use
    released = asyncio.Event()

    async def hold() -> None:
        async with pool.connection():
            await released.wait()

    try:
        with structlog.testing.capture_logs() as logs:
            await store.check()  # an operation completes
            holder = asyncio.create_task(hold())
            await wait_for(lambda: pool.get_stats()["pool_available"] == 0, timeout=30)
            for _ in range(2):
                now[0] += 1.0
                with pytest.raises(StoreError, match="couldn't get a connection"):
                    await store.check()
            assert store.health.failing_since is None  # busy, not failing
            busy = [e for e in logs if e["event"].startswith("store busy")]
            assert len(busy) == 1, logs  # once for the spell
            assert busy[0]["connections"] == 8
            now[0] += BUSY_WITHIN + 1  # no operation has completed since
            with pytest.raises(StoreError, match="couldn't get a connection"):
                await store.check()
            assert store.health.failing_since is not None
            released.set()
            await holder
            await store.check()
            now[0] += RECOVERED_AFTER + 1
            await store.check()
        assert [e["event"] for e in logs].count("store no longer busy") == 1
    finally:
        released.set()
        for conn in lost:
            await pool.putconn(conn)
        await store.close()


async def test_a_store_whose_database_is_away_fails(pg_server: str) -> None:
    """No connection because the database takes none: that is a failing store, not a busy one,
    however recently an operation completed before."""
    from tests.pg import Cluster

    cluster = Cluster()
    try:
        store = await postgres(cluster.url)
        now = [1000.0]
        store.clock = lambda: now[0]
        await store.check()
        await asyncio.to_thread(cluster.stop)
        now[0] += BUSY_WITHIN + 1
        with pytest.raises(StoreError):
            await store.check()
        assert store.health.failing_since is not None
        await store.close()
    finally:
        await asyncio.to_thread(cluster.destroy)


async def test_every_connection_starts_under_the_bounds_and_the_urls_own_options(
    pg_url: str,
) -> None:
    """The session's limits travel with the connection request (no `SET` round trips after it),
    beside the options the URL gives (here its `search_path`)."""
    store = await open_store(pg_url, lease_ttl=6.0)
    assert isinstance(store, PostgresStore)
    try:
        async with store._pool.connection() as conn:
            shown = {}
            for name in ("lock_timeout", "idle_in_transaction_session_timeout", "tcp_user_timeout"):
                cur = await conn.execute(f"SHOW {name}")
                shown[name] = (await cur.fetchall())[0][0]
            cur = await conn.execute("SHOW search_path")
            search_path = (await cur.fetchall())[0][0]
        assert shown == {
            "lock_timeout": "2s",
            "idle_in_transaction_session_timeout": "2s",
            "tcp_user_timeout": "2000",  # milliseconds, shown without a unit
        }
        assert search_path.startswith("t_")  # the URL's own option, kept
    finally:
        await store.close()
