"""One poll's commit (500 calls changed, the cursor, a few rule states) on SQLite and on
PostgreSQL, side by side in one run.

PostgreSQL: `$CALLMON_BENCH_POSTGRES_URL`, else the local server at 127.0.0.1:5432 (database
`test`); a schema of the run's own is made and dropped. Durable settings on both (SQLite WAL
with synchronous=NORMAL, PostgreSQL as the server is configured).

Run: `.venv/bin/python bench/store_bench.py`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from monitor.model import CallState, StateKey, Tracked
from monitor.store import CallChanges, Changes, SqlStore, open_store

PAGE = 500
ROUNDS = 40
URL = os.environ.get("CALLMON_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def poll(round_: int) -> Changes:
    """Every call of the page changed (the worst poll: a page of new or moved calls)."""
    state = CallState.RINGING if round_ % 2 else CallState.MISSED
    upserts = {
        str(i): Tracked(state, f"{state.value}|{round_}", 1_800_000_000.0 + i) for i in range(PAGE)
    }
    rules = {StateKey("storm", "window", str(i)): f'{{"n":{round_}}}' for i in range(5)}
    cursor = {"baselined": True, "horizon": 1_800_000_000.0 + round_}
    return Changes(CallChanges("front-door", upserts, cursor=cursor), rules)


async def measure(store: SqlStore) -> list[float]:
    await store.commit(poll(0))  # warm: tables, caches, prepared statements
    times = []
    for r in range(1, ROUNDS + 1):
        started = time.perf_counter()
        await store.commit(poll(r))
        times.append((time.perf_counter() - started) * 1000)
    return times


def line(name: str, times: list[float]) -> str:
    p95 = statistics.quantiles(times, n=20)[18]
    per_call = statistics.median(times) * 1000 / PAGE
    return (
        f"{name:<12} median {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  "
        f"({per_call:.0f} µs per call)"
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        print(f"One poll's commit: {PAGE} calls changed, cursor, 5 rule states; {ROUNDS} rounds")
        print(line("SQLite", await measure(sqlite)))
        await sqlite.close()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        print(f"PostgreSQL   not measured: {' '.join(str(exc).split())}")
        return
    try:
        postgres = await open_store(f"{URL}?options=-csearch_path%3D{schema}")
        print(line("PostgreSQL", await measure(postgres)))
        await postgres.close()
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    asyncio.run(main())
