"""The performance goals of issue #16, each measured beside a naive peer in the same run.

| figure | callmon | its peer |
|---|---|---|
| P1 | a VMS page of 500 calls tracked unchanged: decode, normalise, diff | `json.loads`, reads |
| P4 | RSS of `callmon run` tracking 100,000 calls | a process holding them as `json.loads` dicts |
| P5 | 10,000 VMS accounts polled every 5 s, one core | one task per account, stdlib JSON |
| P6 | `callmon run` start to `/readyz` 200 | a bare aiohttp app start to 200 |
| P7 | events/s through 50 rules about one door each | a dict-tree interpreter of them |
| P7b | events/s when nearly every event fires two | the same interpreter |

Run: `make bench` (ends with this), or `.venv/bin/python bench/goals.py [--quick]` (`--quick`
polls 1,000 accounts only). Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import rules_bench
import scale_bench

from monitor.model import CallState, PollResult, Tracked
from monitor.sources.vms_intercom import VmsIntercom, VmsIntercomProvider
from monitor.tracking.tracker import Tracker

PAGE = 500
TRACKED = 100_000


@dataclass
class Figure:
    name: str
    what: str
    callmon: float
    peer: float
    unit: str
    goal: str
    met: bool

    @property
    def ratio(self) -> float:
        return self.callmon / self.peer if self.peer else float("nan")


def median_time(work: Callable[[], object], repeat: int = 15) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- P1


def vms_record(i: int) -> dict[str, object]:
    return {
        "id": 1_000_000 + i,
        "status": "missed" if i % 3 else "ended",
        "created_at": "2026-11-23 10:00:00",
        "intercom": {
            "id": 158 + i % 3,
            "title": "Front door",
            "is_online": True,
            "department": 1,
            "address": "1 Main Street",
            "camera": {"id": 832, "group_id": 124, "status": "active", "type": "media_server_v2"},
            "created_at": "2021-11-18T11:22:30.000000Z",
        },
        "started_at": None if i % 3 else "2026-11-23 10:00:07",
        "ended_at": "2026-11-23 10:00:40",
    }


def p1() -> Figure:
    body = json.dumps(
        {
            "data": [vms_record(i) for i in range(PAGE)],
            "meta": {"current_page": 1, "last_page": 40, "per_page": PAGE, "total": 20_000},
        }
    ).encode()
    settings = VmsIntercomProvider.model_validate(
        {"name": "door", "type": "vms-intercom", "base_url": "http://x", "token": "t"}
    )
    client = asyncio.run(_client(settings))
    tracker = Tracker("door", "vms-intercom", baselined=True)
    now = datetime.now(UTC)
    first = client.read_page(body, 1, tracker, PollResult())
    tracker.apply(tracker.diff(PollResult(calls=first.calls), now))

    def callmon() -> None:
        page = client.read_page(body, 1, tracker, PollResult())
        tracker.diff(PollResult(calls=page.calls), now)

    def new_page() -> None:
        fresh = Tracker("door", "vms-intercom", baselined=True)
        page = client.read_page(body, 1, fresh, PollResult())
        fresh.diff(PollResult(calls=page.calls), now)

    def peer() -> None:
        for record in json.loads(body)["data"]:
            record["id"], record["status"], record["created_at"], record["intercom"]["id"]

    ours, theirs, news = median_time(callmon), median_time(peer), median_time(new_page)
    print(
        f"P1: 500-call VMS page, per call: callmon {ours / PAGE * 1e6:.2f} µs (tracked, "
        f"unchanged), {news / PAGE * 1e6:.2f} µs (all new); json.loads + dict reads "
        f"{theirs / PAGE * 1e6:.2f} µs"
    )
    return Figure(
        "P1",
        "decode+normalise+diff, 500-call page",
        ours / PAGE * 1e6,
        theirs / PAGE * 1e6,
        "µs/call",
        "≤ 0.5×",
        ours / theirs <= 0.5,
    )


async def _client(settings: VmsIntercomProvider) -> VmsIntercom:
    import aiohttp  # the client needs a session object; nothing is sent

    async with aiohttp.ClientSession() as session:
        return VmsIntercom(settings, session)


# --- P7, P7b


def p7() -> list[Figure]:
    found = []
    for name, text, goal in (
        ("P7", rules_bench.typical_rules(), 300_000),
        ("P7b", rules_bench.busy_rules(), 100_000),
    ):
        ours = rules_bench.measure(f"{name} callmon", text)
        theirs = rules_bench.measure_naive(f"{name} dict-tree interpreter", text)
        what = "events/s, 50 rules, " + ("typical" if name == "P7" else "every event fires ~2")
        found.append(Figure(name, what, ours, theirs, "events/s", f"≥ {goal:,}", ours >= goal))
    return found


# --- P4


def p4() -> Figure:
    fleet = subprocess.Popen(
        [
            *(sys.executable, str(scale_bench.HERE / "fleet.py"), "--accounts", "1"),
            *("--first-id", str(TRACKED + 1000)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: scale_bench.pinned(1),
    )
    assert fleet.stdout is not None
    port = int(fleet.stdout.readline().split()[1])
    listen = scale_bench.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        path = scale_bench.config(Path(tmp), 1, port, listen)
        asyncio.run(_prefill(f"sqlite:///{Path(tmp, 'callmon.db')}"))
        daemon = subprocess.Popen(
            [scale_bench.CALLMON, "run", "-c", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            scale_bench.until_ready(listen, daemon)
            time.sleep(12)  # polls, door status, the first alerts sent
            ours = scale_bench.rss_mib(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
            fleet.kill()
            fleet.wait()
    peer = subprocess.run(
        [sys.executable, __file__, "--hold-dicts"], capture_output=True, text=True, check=True
    )
    theirs = float(peer.stdout.split()[-1])
    print(f"P4: RSS tracking {TRACKED:,} calls: callmon {ours:.0f} MiB, dicts {theirs:.0f} MiB")
    return Figure(
        "P4",
        f"RSS of the daemon, {TRACKED:,} tracked calls",
        ours,
        theirs,
        "MiB",
        "≤ 100 MiB",
        ours <= 100,
    )


async def _prefill(url: str) -> None:
    """A store tracking 100,000 finished calls of the fleet's one account, from the last day
    (the fleet numbers its calls after them)."""
    from monitor.store import CallChanges, Changes, open_store

    store = await open_store(url)
    now = time.time()
    calls = {
        str(i): Tracked(
            CallState.ENDED if i % 3 else CallState.MISSED,
            "ended" if i % 3 else "missed",
            now - 86_400 + i * 0.8,
        )
        for i in range(1, TRACKED + 1)
    }
    cursor = {"high_id": TRACKED, "doors": [1, 2]}
    stored = {"baselined": True, "horizon": now - 90_000, "provider": cursor, "intercoms": {}}
    await store.commit(Changes(CallChanges("acct-0", calls, (), stored)))
    await store.close()


def hold_dicts() -> None:
    """The peer of P4: aiohttp imported, and every call kept as its decoded record."""
    import aiohttp  # noqa: F401 (what a poller imports)

    text = json.dumps(vms_record(0))
    kept = {}
    for i in range(TRACKED):
        record = json.loads(text)
        record["id"] = i
        kept[str(i)] = record
    print(scale_bench.rss_mib(os.getpid()))


# --- P6


def p6() -> Figure:
    with tempfile.TemporaryDirectory() as tmp:
        listen = scale_bench.free_port()
        path = scale_bench.config(Path(tmp), 1, 9, listen)
        ours = statistics.median(
            _time_to_ready([scale_bench.CALLMON, "run", "-c", str(path)], listen) for _ in range(7)
        )
    bare = (
        "import asyncio\nfrom aiohttp import web\n"
        "async def ok(request): return web.Response(text='ok')\n"
        "app = web.Application(); app.router.add_get('/readyz', ok)\n"
        "web.run_app(app, host='127.0.0.1', port=int(__import__('sys').argv[1]), print=None)\n"
    )
    listen = scale_bench.free_port()
    theirs = statistics.median(
        _time_to_ready([sys.executable, "-c", bare, str(listen)], listen) for _ in range(7)
    )
    print(f"P6: start to /readyz 200: callmon {ours:.3f} s, a bare aiohttp app {theirs:.3f} s")
    floor = statistics.median(_time_to_import(LIBRARIES) for _ in range(7))
    print(
        f"P6: a process that only imports the libraries callmon starts with: {floor:.3f} s, "
        f"{floor / theirs:.2f}x the bare app ({', '.join(LIBRARIES)}); 1.5x the bare app "
        f"leaves {1.5 * theirs - floor:.3f} s for "
        "callmon's own modules, its config, rules, store and listener"
    )
    met = ours <= 1.5 * theirs
    return Figure("P6", "`callmon run` start to /readyz 200", ours, theirs, "s", "≤ 1.5×", met)


LIBRARIES = (
    "aiohttp.web",
    "pydantic",
    "jinja2",
    "ruamel.yaml",
    "structlog",
    "prometheus_client",
    "anyio",
    "sqlite3",
    "msgspec",
)
"""What `callmon run` imports before it is ready that is not its own."""
PYDANTIC_TYPES = "from pydantic import BaseModel, Field, SecretStr"  # `import pydantic` is lazy


def _time_to_import(modules: Sequence[str]) -> float:
    """Process start to the end of importing `modules`, as the process itself tells."""
    code = f"import time, {', '.join(modules)}\n{PYDANTIC_TYPES}\nprint(time.time())"
    started = time.time()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout) - started


def _time_to_ready(command: list[str], port: int) -> float:
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return scale_bench.until_ready(port, process) - started
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


# --- P5


def p5(sizes: list[int]) -> Figure:
    """P5 on a quiet core and on a shared one; the figure is the largest fleet's on a quiet core,
    met when it keeps up and, at every size in both modes, callmon's poll lag p99 and p99.9 are
    at most twice the peer's (issue #27)."""
    runs = scale_bench.run(sizes)
    scale_bench.table(runs)
    level = all(
        m.poll.p99 <= 2 * max(p.poll.p99, 0.001) and m.poll.p999 <= 2 * max(p.poll.p999, 0.001)
        for m, p in runs
    )
    mine, peer = next(pair for pair in reversed(runs) if pair[0].mode == "quiet")
    met = (
        level
        and mine.lag_p99 <= 1.0
        and mine.cpu <= 1.0
        and mine.polls_per_second >= 0.95 * (mine.accounts / scale_bench.INTERVAL)
    )
    return Figure(
        "P5",
        f"{mine.accounts:,} accounts / 5 s: lag p99 (CPU {mine.cpu:.2f} vs {peer.cpu:.2f} core)",
        mine.lag_p99,
        peer.lag_p99,
        "s",
        "≤ 1 s, ≤ 1 core; p99, p99.9 ≤ 2× the peer's",
        met,
    )


def table(figures: list[Figure]) -> None:
    print()
    print("| figure | what | callmon | peer | ratio | goal | met |")
    print("|---|---|---|---|---|---|---|")
    for f in figures:
        print(
            f"| {f.name} | {f.what} | {_fmt(f.callmon)} {f.unit} | {_fmt(f.peer)} {f.unit} "
            f"| {f.ratio:.2f}× | {f.goal} | {'yes' if f.met else 'NO'} |"
        )


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.3g}"


def main() -> None:
    if "--hold-dicts" in sys.argv:
        hold_dicts()
        return
    quick = "--quick" in sys.argv
    figures = [p1(), *p7(), p4(), p6(), p5([1000] if quick else [1000, 5000, 10000])]
    table(figures)


if __name__ == "__main__":
    main()
