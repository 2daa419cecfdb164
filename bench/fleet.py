"""A fleet of VMS accounts on one port, for P5: `/a/<n>/api/v1/...` is account n of the
simulator's own VMS API (its tokens differ), each with two doors and a few calls, and a slow
stream of new calls across the fleet (rung, then missed or answered and ended). Alerts posted
to `/alerts` are counted.

Run by `bench/scale_bench.py` on the other core; prints `ready PORT` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from typing import Any

from aiohttp import web

from monitor.simulator.vms import VmsApi

HOUR = 3600.0


def accounts(n: int, seed: int = 5, first_id: int = 1000) -> list[VmsApi]:
    rng = random.Random(seed)
    fleet = []
    for i in range(n):
        api = VmsApi(clock=time.time, rng=random.Random(rng.random()), token=f"acct-{i}")
        api._ids = itertools.count(first_id)
        for door in (1, 2):
            api.add_door(door, f"Door {door} of account {i}")
        for _ in range(rng.randint(1, 4)):
            call = api.ring(rng.choice((1, 2)), at=time.time() - HOUR)
            api.miss(call.id)
        fleet.append(api)
    return fleet


def app(fleet: list[VmsApi], alerts: list[int]) -> web.Application:
    handlers: list[dict[str, Any]] = []
    for api in fleet:
        handlers.append({route.path: route.handler for route in api.routes()})

    def dispatch(path: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            account = int(request.match_info["account"])
            if not 0 <= account < len(handlers):
                raise web.HTTPNotFound()
            found: web.StreamResponse = await handlers[account][path](request)
            return found

        return handler

    async def alert(request: web.Request) -> web.Response:
        await request.read()
        alerts[0] += 1
        return web.Response(text="ok")

    application = web.Application()
    application.add_routes(
        [
            web.get("/a/{account}/api/v1/intercom/calls", dispatch("/api/v1/intercom/calls")),
            web.get(
                "/a/{account}/api/v1/intercom/calls/{id}",
                dispatch("/api/v1/intercom/calls/{id}"),
            ),
            web.get("/a/{account}/api/v1/intercom/shows", dispatch("/api/v1/intercom/shows")),
            web.post("/alerts", alert),
        ]
    )
    return application


async def traffic(fleet: list[VmsApi], per_second: float, seed: int = 7) -> None:
    """New calls at random accounts; each is missed or answered a few seconds later."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(rng.expovariate(per_second))
        api = rng.choice(fleet)
        call = api.ring(rng.choice((1, 2)))
        if rng.random() < 0.5:
            loop.call_later(rng.uniform(3, 15), api.miss, call.id)
        else:
            loop.call_later(rng.uniform(2, 8), api.answer, call.id)
            loop.call_later(rng.uniform(10, 30), api.end, call.id)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--calls-per-second", type=float, default=10.0)
    parser.add_argument("--first-id", type=int, default=1000, help="each account's first call id")
    args = parser.parse_args()
    fleet = accounts(args.accounts, first_id=args.first_id)
    alerts = [0]
    runner = web.AppRunner(app(fleet, alerts), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    server: Any = site._server
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    task = asyncio.create_task(traffic(fleet, args.calls_per_second))
    try:
        await asyncio.Event().wait()
    finally:
        task.cancel()
        print("alerts", alerts[0], flush=True)


if __name__ == "__main__":
    asyncio.run(main())
