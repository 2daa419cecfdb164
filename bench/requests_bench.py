"""HTTP requests per poll cycle in steady state: callmon's clients beside a naive client.

Each fake API holds 10,000 calls of history; every cycle a few calls change (fewer than one page
holds). callmon's clients poll as the daemon does; the naive client walks every page of the
history each cycle. Counts come from the simulator. Run: `.venv/bin/python bench/requests_bench.py`.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import TypeAdapter

from monitor import sources as providers
from monitor.config import ProviderConfig
from monitor.simulator.common import Line, RateLimit
from monitor.simulator.server import Simulator
from monitor.tracking.tracker import Tracker

HISTORY = 10_000
CYCLES = 10
SETTINGS: TypeAdapter[Any] = TypeAdapter(ProviderConfig)


def counters(sim: Simulator, kind: str) -> tuple[int, int]:
    api: Any = {
        "vms-intercom": sim.vms,
        "bird": sim.bird,
        "cinnox": sim.cinnox,
        "bandwidth": sim.bandwidth,
    }[kind]
    return api.list_requests, api.requests


async def naive_walk(session: aiohttp.ClientSession, sim: Simulator, kind: str) -> None:
    """Read the whole history, page after page, as a client with no cursor would."""
    base = sim.base_url
    if kind == "vms-intercom":
        headers = {"Authorization": f"Bearer {sim.vms.token}", "X-Client": "web"}
        page, last = 1, 1
        while page <= last:
            async with session.get(
                f"{base}/api/v1/intercom/calls",
                params={"page": page, "per_page": 25},
                headers=headers,
            ) as r:
                last = (await r.json())["meta"]["last_page"]
            page += 1
    elif kind == "bird":
        url = f"{base}/workspaces/{sim.bird.workspace_id}/channels/{sim.bird.channel_id}/calls"
        params: dict[str, Any] = {"limit": 100}
        while True:
            async with session.get(
                url, params=params, headers={"Authorization": f"AccessKey {sim.bird.access_key}"}
            ) as r:
                token = (await r.json()).get("nextPageToken")
            if not token:
                break
            params["pageToken"] = token
    elif kind == "cinnox":
        url = f"{base}/v1/api/apps/{sim.cinnox.app_id}/data/call-log"
        now = datetime.now(UTC)
        offset = 0
        while True:
            params = {
                "startAt": (now - timedelta(days=2)).isoformat(),
                "endAt": now.isoformat(),
                "offset": offset,
                "limit": 500,
            }
            async with session.get(
                url, params=params, headers={"Authorization": f"Bearer {sim.cinnox.token}"}
            ) as r:
                rows = (await r.json())["result"]
            if len(rows) < 500:
                break
            offset += 500
    else:
        url = f"{base}/v1/users/{sim.bandwidth.user_id}/calls/"
        auth = base64.b64encode(f"{sim.bandwidth.api_token}:{sim.bandwidth.api_secret}".encode())
        page = 0
        while True:
            async with session.get(
                url,
                params={"page": page, "size": 100},
                headers={"Authorization": f"Basic {auth.decode()}"},
            ) as r:
                more = "next" in r.headers.get("Link", "")
            if not more:
                break
            page += 1


def churn(line: Line, open_calls: list[str]) -> None:
    """A few changes: two calls end, two new ones ring."""
    for call in open_calls[:2]:
        line.no_answer(call)
    del open_calls[:2]
    open_calls.extend(line.start_call() for _ in range(2))


async def measure(kind: str) -> None:
    sim = Simulator(seed=7)
    sim.bandwidth.list_limit = RateLimit(10**6)
    sim.bird.rate_limit = RateLimit(10**6)
    sim.cinnox.rate_limit = RateLimit(10**6)
    sim.cinnox.late = (0.0, 0.0)
    line: Line = {
        "vms-intercom": sim.vms,
        "bird": sim.bird,
        "cinnox": sim.cinnox,
        "bandwidth": sim.bandwidth,
    }[kind]
    sim.traffic.lines = [line]
    sim.traffic.seed_history(HISTORY, span=86400.0)
    await sim.start()
    entry = next(p for p in sim.provider_configs() if p["type"] == kind)
    entry["max_requests_per_second"] = 10_000
    async with aiohttp.ClientSession() as session:
        client = providers.build(SETTINGS.validate_python(entry), session)
        tracker = Tracker(client.name, client.type)
        tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))  # baseline
        open_calls = [line.start_call() for _ in range(2)]
        lists = total = 0
        for _ in range(CYCLES):
            churn(line, open_calls)
            before = counters(sim, kind)
            tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
            after = counters(sim, kind)
            lists += after[0] - before[0]
            total += after[1] - before[1]
        before = counters(sim, kind)
        for _ in range(3):
            await naive_walk(session, sim, kind)
        naive = (counters(sim, kind)[0] - before[0]) / 3
    await sim.stop()
    per_list, per_total = lists / CYCLES, total / CYCLES
    print(
        f"  {kind:13s} list {per_list:5.1f}  all {per_total:5.1f}  naive {naive:6.1f}"
        f"  ratio {naive / per_total:6.1f}x"
    )


async def main() -> None:
    print(f"requests per poll cycle, {HISTORY:,} calls of history, 2 new + 2 ended per cycle")
    for kind in ("vms-intercom", "bird", "cinnox", "bandwidth"):
        await measure(kind)


if __name__ == "__main__":
    asyncio.run(main())
