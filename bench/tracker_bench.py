"""Tracker cost per call on a 500-call page, decode cost per record, memory per tracked call.

Run: `make bench` (or `.venv/bin/python bench/tracker_bench.py`). Prints figures; asserts nothing.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from monitor.model import Call, CallState, Intercom, PollResult, Tracked
from monitor.sources.vms_intercom import VmsIntercom, VmsIntercomProvider, _Page
from monitor.tracking.tracker import Tracker

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PAGE = 500
TRACKED = 100_000


def page_calls(start: int, state: CallState) -> list[Call]:
    door = Intercom(158, "Front door", "1 Main St")
    return [
        Call(
            id=str(start + i),
            state=state,
            raw_status=state.value,
            created_at=T0 + timedelta(seconds=i),
            intercom=door,
            marker=f"{state.value}||",
        )
        for i in range(PAGE)
    ]


def tracker_with(n: int) -> Tracker:
    calls = {
        str(i): Tracked(CallState.ENDED, f"ended|2026-11-23 10:{i % 60:02d}:00|x", T0.timestamp())
        for i in range(n)
    }
    return Tracker("door", "vms-intercom", calls, baselined=True, horizon=1.0)


def best_of(fn: object, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_diff() -> None:
    tracker = tracker_with(TRACKED)
    unchanged = [
        Call(
            id=str(i),
            state=CallState.ENDED,
            raw_status="ended",
            marker=f"ended|2026-11-23 10:{i % 60:02d}:00|x",
        )
        for i in range(PAGE)
    ]
    new_ringing = page_calls(10**7, CallState.RINGING)
    tracker.apply(tracker.diff(PollResult(calls=new_ringing), T0))
    transitions = page_calls(10**7, CallState.MISSED)
    for label, calls in (
        ("unchanged (steady state)", unchanged),
        ("all new", page_calls(2 * 10**7, CallState.MISSED)),
        ("all ringing→missed", transitions),
    ):
        seconds = best_of(lambda calls=calls: tracker.diff(PollResult(calls=calls), T0))
        print(f"  diff, 500-call page, {label:26s} {seconds / PAGE * 1e6:7.2f} µs/call")


def bench_decode() -> None:
    settings = VmsIntercomProvider.model_validate(
        {"name": "door", "type": "vms-intercom", "base_url": "http://x", "token": "t"}
    )
    import asyncio

    import aiohttp  # the client needs a session object; nothing is sent

    async def make() -> VmsIntercom:
        async with aiohttp.ClientSession() as session:
            return VmsIntercom(settings, session)

    client = asyncio.run(make())
    record = {
        "id": 5546,
        "status": "ended",
        "created_at": "2022-02-04 15:53:04",
        "intercom": {
            "id": 158,
            "title": "test",
            "is_online": False,
            "department": 1,
            "address": "Original cameras",
            "camera": {
                "id": 832,
                "group_id": 124,
                "status": "inactive",
                "type": "media_server_v2",
                "name": "intercom 1",
            },
            "created_at": "2021-11-18T11:22:30.000000Z",
        },
        "started_at": "2022-02-04 15:53:07",
        "ended_at": "2022-02-04 15:54:02",
    }
    body = json.dumps({"data": [dict(record, id=i) for i in range(PAGE)]}).encode()
    import msgspec

    def decode() -> None:
        page = msgspec.json.decode(body, type=_Page)
        for raw in page.data:
            client.decode(raw)

    seconds = best_of(decode)
    print(f"  decode, 500-record page (msgspec, slim types)  {seconds / PAGE * 1e6:7.2f} µs/call")


def bench_memory() -> None:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracker = Tracker("door", "vms-intercom", baselined=True)
    for start in range(0, TRACKED, PAGE):
        calls = [
            Call(
                id=str(10_000_000 + start + i),
                state=CallState.ENDED,
                raw_status="ended",
                created_at=T0 + timedelta(seconds=start + i),
                marker=f"ended|2026-11-23 10:00:{i % 60:02d}|2026-11-23 10:01:{i % 60:02d}",
            )
            for i in range(PAGE)
        ]
        tracker.apply(tracker.diff(PollResult(calls=calls), T0 + timedelta(days=1)))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(tracker.calls) == TRACKED
    per_call = (after - before) / TRACKED
    print(f"  memory per tracked call at {TRACKED:,} calls (tracemalloc)  {per_call:7.0f} B")


if __name__ == "__main__":
    print("tracker benchmark")
    bench_diff()
    bench_decode()
    bench_memory()
