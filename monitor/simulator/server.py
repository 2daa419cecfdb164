"""The simulator as one HTTP server on loopback: every fake API, plus the traffic that drives it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from monitor.simulator.traffic import DEMO_PACE, Pace, Traffic
from monitor.simulator.vms import VmsApi

DOORS = (
    (158, "Front door", "1 Main Street"),
    (180, "Gate", "1 Main Street, yard"),
    (201, "Back door", "1 Main Street, rear"),
)


class Simulator:
    """All fake provider APIs on one port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        pace: Pace = DEMO_PACE,
    ) -> None:
        self.host = host
        self.port = port
        self.vms = VmsApi(clock=clock)
        for door_id, title, address in DOORS:
            self.vms.add_door(door_id, title, address)
        self.traffic = Traffic(self.vms, pace, seed)
        self._runner: web.AppRunner | None = None
        self._traffic_task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        """The root URL every fake API is served under."""
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(self.vms.routes())
        return app

    async def start(self, *, traffic: bool = False, history: int = 0) -> None:
        """Serve on the configured port (0 picks a free one); optionally start traffic."""
        if history:
            self.traffic.seed_history(history)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        if traffic:
            self._traffic_task = asyncio.create_task(self.traffic.run(open_with_missed=True))

    async def stop(self) -> None:
        if self._traffic_task is not None:
            self._traffic_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._traffic_task
        if self._runner is not None:
            await self._runner.cleanup()

    def config_yaml(self, *, notifier_url: str = "console://") -> str:
        """A config file that points callmon at this simulator."""
        return (
            f"providers:\n"
            f"  - name: front-door\n"
            f"    type: vms-intercom\n"
            f"    base_url: {self.base_url}\n"
            f"    token: {self.vms.token}\n"
            f"    poll_interval: 1s\n"
            f"notifiers:\n"
            f"  ops-chat:\n"
            f'    urls: ["{notifier_url}"]\n'
        )
