"""P5's peer: the obvious Python poller of the same fleet. One task per account, stdlib JSON,
a dict of statuses per account, one SQLite commit per poll; no rules, no notifications.

Measured as callmon is: each poll's lag (how late it started) goes to a histogram with
callmon's `callmon_poll_lag_seconds` buckets, and the event loop's lag to one fed by callmon's
own sampler (`monitor.telemetry.looplag`). Prints `ready`, then `window` when the measuring
window begins and ends, each followed by the histograms in Prometheus' text format (one line of
JSON), then `polls N` for the polls that started inside the window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from collections.abc import Callable

import aiohttp
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from monitor.telemetry.heartbeat import Heartbeat
from monitor.telemetry.looplag import BUCKETS, LoopLag
from monitor.telemetry.metrics import LAG


async def poll_forever(
    session: aiohttp.ClientSession,
    db: sqlite3.Connection,
    base: str,
    account: int,
    interval: float,
    lags: list[tuple[float, float]],
    observe: Callable[[float], None],
) -> None:
    known: dict[int, str] = {}
    headers = {"Authorization": f"Bearer acct-{account}", "X-Client": "web", "X-UUID": "naive"}
    url = f"{base}/a/{account}/api/v1/intercom/calls"
    due = time.monotonic() + interval * (account % 100) / 100
    while True:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        started = time.monotonic()
        lags.append((started, started - due))
        observe(started - due)
        due = started + interval
        try:
            async with session.get(url, params={"page": 1, "per_page": 25}, headers=headers) as r:
                page = json.loads(await r.read())
        except (aiohttp.ClientError, ValueError):
            continue
        changed = []
        for record in page["data"]:
            if known.get(record["id"]) != record["status"]:
                known[record["id"]] = record["status"]
                changed.append((account, record["id"], record["status"]))
        db.executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?)", changed)
        db.execute("INSERT OR REPLACE INTO polls VALUES (?, ?)", (account, time.time()))
        db.commit()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE calls (account INTEGER, id INTEGER, status TEXT, PRIMARY KEY (account, id))"
    )
    db.execute("CREATE TABLE polls (account INTEGER PRIMARY KEY, at REAL)")
    registry = CollectorRegistry()
    poll_lag = Histogram("peer_poll_lag_seconds", "", registry=registry, buckets=LAG)
    loop_lag = Histogram("peer_event_loop_lag_seconds", "", registry=registry, buckets=BUCKETS)
    sampler = asyncio.create_task(LoopLag(loop_lag.observe).run(Heartbeat("peer", 1.0)))
    lags: list[tuple[float, float]] = []
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        tasks = [
            asyncio.create_task(
                poll_forever(session, db, args.base, i, args.interval, lags, poll_lag.observe)
            )
            for i in range(args.accounts)
        ]
        print("ready", flush=True)
        for seconds in (args.warmup, args.window):
            await asyncio.sleep(seconds)
            print("window", json.dumps(generate_latest(registry).decode()), flush=True)
        for task in (*tasks, sampler):
            task.cancel()
    inside = [at for at, _ in lags if start + args.warmup <= at < start + args.warmup + args.window]
    print(f"polls {len(inside)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
