"""The status page with 200 doors and 100,000 calls in the store: how long `GET /` takes (its
history as drawn before, and drawn anew after a call ended), and
`/api/v1/history?hours=168` (goal: the page's p95 ≤ 50 ms on SQLite).

The store is filled as the daemon fills it: 100,000 calls over the last week, each committed
with its hour's count in the history, on 200 doors of 4 providers. The page is served by the
daemon's own `StatusPage` over real HTTP and read like a browser reads it.

Run: `.venv/bin/python bench/history_bench.py [--calls N] [--doors N]`. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.model import CallState, Tracked
from monitor.serve.api import Api
from monitor.serve.page import StatusPage
from monitor.serve.web import Readiness, build_app
from monitor.store import CallChanges, Changes, SqliteStore, Tally

PROVIDERS = ("front-door", "support", "contact-centre", "sales")
HOUR = 3600.0


async def fill(store: SqliteStore, calls: int, doors: int, now: float) -> None:
    """`calls` ended calls over the last week, in steps of 500 as polls commit them."""
    rng = random.Random(7)
    step = 500
    for first in range(0, calls, step):
        upserts: dict[str, dict[str, Tracked]] = {p: {} for p in PROVIDERS}
        counts: dict[tuple[str, str, float], list[int]] = {}
        for n in range(first, min(calls, first + step)):
            provider = PROVIDERS[n % len(PROVIDERS)]
            door = str(100 + rng.randrange(doors)) if provider == "front-door" else ""
            began = now - rng.uniform(0, 7 * 86400)
            missed = rng.random() < 0.25
            state = CallState.MISSED if missed else CallState.ENDED
            upserts[provider][f"c{n}"] = Tracked(state, f"m{n}", began)
            count = counts.setdefault((provider, door, began - began % HOUR), [0, 0])
            count[missed] += 1
        tally = [Tally(p, d, h, a, m) for (p, d, h), (a, m) in counts.items()]
        for provider, found in upserts.items():
            await store.commit(Changes(CallChanges(provider, found), tally=tally))
            tally = []


async def timed(session: aiohttp.ClientSession, url: str, rounds: int) -> list[float]:
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        async with session.get(url) as r:
            await r.read()
            assert r.status == 200, r.status
        took.append((time.perf_counter() - started) * 1000)
    return took


def line(what: str, took: list[float]) -> str:
    took = sorted(took)
    p95 = took[int(len(took) * 0.95) - 1]
    return f"{what}: p50 {statistics.median(took):.1f} ms, p95 {p95:.1f} ms, max {took[-1]:.1f} ms"


async def main(calls: int, doors: int, rounds: int) -> None:
    now = time.time()
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(str(Path(folder) / "state.db"))
        started = time.perf_counter()
        await fill(store, calls, doors, now)
        took = time.perf_counter() - started
        print(f"store: {calls:,} calls on {doors} doors filled in {took:.1f} s")
        overview = {
            "role": "leader",
            "providers": {p: {"up": True} for p in PROVIDERS},
            "doors": [("front-door", str(100 + d), True) for d in range(doors)],
        }
        page = StatusPage(
            lambda: store,
            None,
            lambda: ["missed"],
            lambda: overview,
            CollectorRegistry(),
            UTC,
            providers=list(PROVIDERS),
        )
        api = Api(lambda: store, None, lambda: ["missed"], providers=list(PROVIDERS))
        app = build_app(
            CollectorRegistry(), Readiness(True), routes=[*page.routes(), *api.routes()]
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/") as r:
                html = await r.text()
            print(f"page: {len(html) / 1024:.0f} KiB, {html.count('<svg')} charts")
            await timed(session, base + "/", 5)  # warm
            print(line(f"GET / ({doors} doors, 24 h)", await timed(session, base + "/", rounds)))
            changed = []
            for n in range(rounds):  # a call ended before each reading: drawn anew each time
                ended = Tally("front-door", str(100 + n % doors), now - now % HOUR, 1, 0)
                await store.commit(Changes(tally=[ended]))
                changed += await timed(session, base + "/", 1)
            print(line("GET / with new counts each time", changed))
            week = base + "/api/v1/history?hours=168"
            print(line("GET /api/v1/history?hours=168", await timed(session, week, rounds)))
        await runner.cleanup()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--doors", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.doors, args.rounds))
