"""The HTTP endpoints on `listen`: /metrics, /healthz, /readyz, /hooks/NAME, /api/v1/…"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


@dataclass
class Readiness:
    """What the probes read: whether the store is open, what is unhealthy, each provider."""

    store_open: bool = False
    problems: Callable[[], list[str]] = field(default=lambda: [])
    """Every part of the daemon that is not working (a dead or hung loop, a failing store)."""
    providers: Callable[[], Mapping[str, Any]] = field(default=lambda: {})
    role: Callable[[], str] = field(default=lambda: "leader")
    """`leader`, or `standby` on a replica that waits to take over (it is ready all the same)."""

    def reason(self) -> str | None:
        """Why the daemon is not ready, or None when it is."""
        return None if self.store_open else "store not open"


PushHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    registry: CollectorRegistry,
    readiness: Readiness,
    hooks: PushHandler | None = None,
    routes: Sequence[web.RouteDef] = (),
) -> web.Application:
    """The aiohttp application serving the probes, the metrics, (with `hooks`) the providers'
    pushes on `POST /hooks/NAME`, and `routes` (the JSON API, the status page)."""

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        # A provider's outage never shows here: restarting callmon would not mend an API.
        problems = readiness.problems()
        if problems:
            return web.json_response({"status": "unhealthy", "problems": problems}, status=503)
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        reason = readiness.reason()
        payload: dict[str, Any] = {
            "status": "ready" if reason is None else "not ready",
            "store": "open" if readiness.store_open else "closed",
            "role": readiness.role(),
            "providers": readiness.providers(),
        }
        if reason is not None:
            payload["reason"] = reason
        return web.json_response(payload, status=200 if reason is None else 503)

    app = web.Application()
    if hooks is not None:
        app.router.add_post("/hooks/{name}", hooks)
    app.router.add_routes(routes)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
