"""The simulator on one loopback port: all four fake APIs and the traffic that drives them.

Each API is served on its documented paths, so a client points its `base_url` at this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from monitor.simulator.bandwidth import BandwidthApi
from monitor.simulator.bird import BirdApi
from monitor.simulator.cinnox import CinnoxApi
from monitor.simulator.common import Line
from monitor.simulator.traffic import DEMO_PACE, Pace, Traffic
from monitor.simulator.vms import VmsApi

DOORS = (
    (158, "Front door", "1 Main Street"),
    (180, "Gate", "1 Main Street, yard"),
    (201, "Back door", "1 Main Street, rear"),
)


def own_address() -> str:
    """This machine's address on its default route (no packet is sent), else loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any routable address does
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


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
        rng = random.Random(seed)
        self.vms = VmsApi(clock=clock, rng=random.Random(rng.random()))
        for door_id, title, address in DOORS:
            self.vms.add_door(door_id, title, address)
        self.bird = BirdApi(clock=clock, rng=random.Random(rng.random()))
        self.cinnox = CinnoxApi(clock=clock, rng=random.Random(rng.random()))
        self.bandwidth = BandwidthApi(clock=clock, rng=random.Random(rng.random()))
        self.lines: list[Line] = [self.vms, self.bird, self.cinnox, self.bandwidth]
        self.traffic = Traffic(self.lines, pace, seed)
        self._runner: web.AppRunner | None = None
        self._traffic_task: asyncio.Task[None] | None = None
        self.tls = False

    @property
    def base_url(self) -> str:
        """The root URL every fake API is served under: on a wildcard address (`0.0.0.0`),
        this machine's own address, which other machines and containers can reach."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = own_address()
        scheme = "https" if self.tls else "http"
        return (
            f"{scheme}://{host}:{self.port}"
            if ":" not in host
            else f"{scheme}://[{host}]:{self.port}"
        )

    def app(self) -> web.Application:
        app = web.Application()
        for api in (self.vms, self.bird, self.cinnox, self.bandwidth):
            app.add_routes(api.routes())
        return app

    async def start(
        self, *, traffic: bool = False, history: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        """Serve on the configured port (0 picks a free one), over HTTPS with `tls`;
        optionally start traffic."""
        if history:
            self.traffic.seed_history(history)
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        self.tls = tls is not None
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=tls)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        if traffic:
            self.start_traffic()

    def start_traffic(self) -> None:
        """Start the call traffic, opening with a missed call a second or two from now."""
        if self._traffic_task is None:
            self._traffic_task = asyncio.create_task(self.traffic.run(open_with_missed=True))

    async def stop(self) -> None:
        if self._traffic_task is not None:
            self._traffic_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._traffic_task
        if self._runner is not None:
            await self._runner.cleanup()

    def provider_configs(self, poll_interval: str = "2s") -> list[dict[str, Any]]:
        """One provider entry per fake API, with the credentials it accepts."""
        base = self.base_url
        return [
            {
                "name": "front-door",
                "type": "vms-intercom",
                "base_url": base,
                "token": self.vms.token,
                "poll_interval": poll_interval,
            },
            {
                "name": "support",
                "type": "bird",
                "base_url": base,
                "token": self.bird.access_key,
                "workspace_id": self.bird.workspace_id,
                "channel_id": self.bird.channel_id,
                "poll_interval": poll_interval,
            },
            {
                "name": "contact-centre",
                "type": "cinnox",
                "base_url": base,
                "app_id": self.cinnox.app_id,
                "token": self.cinnox.token,
                "poll_interval": poll_interval,
            },
            {
                "name": "sales",
                "type": "bandwidth",
                "base_url": base,
                "user_id": self.bandwidth.user_id,
                "api_token": self.bandwidth.api_token,
                "api_secret": self.bandwidth.api_secret,
                "poll_interval": poll_interval,
            },
        ]

    def config_yaml(
        self,
        *,
        notifier_url: str = "console://",
        poll_interval: str = "2s",
        rules: Sequence[str] = (),
    ) -> str:
        """A config file that points callmon at every fake API (and, given, its rule files)."""
        lines = [f"rules: [{', '.join(json.dumps(r) for r in rules)}]"] if rules else []
        lines.append("providers:")
        for provider in self.provider_configs(poll_interval):
            lines.append(f"  - name: {provider.pop('name')}")
            lines.extend(f"    {key}: {value}" for key, value in provider.items())
        lines += ["notifiers:", "  ops-chat:", f'    urls: ["{notifier_url}"]']
        return "\n".join(lines) + "\n"
