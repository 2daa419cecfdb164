"""The HTTP endpoints on `listen`: /metrics, /healthz, /readyz, /hooks/NAME, /api/v1/…, and
the listener's defences: no client can take it down (headers and bodies must arrive within a
few seconds, connections are bounded with the oldest idle one making room for a new one, so
the probes keep answering), and every response says how a browser may treat it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = structlog.get_logger("monitor.serve.web")

HEADER_TIMEOUT = 5.0
"""A connection that has not sent a whole request within this (from its start, or from its
last answer) is closed: a client sending its headers a byte at a time holds nothing for long."""
BODY_TIMEOUT = 10.0
"""How long a request's body may take to arrive (408 after)."""
MAX_CONNECTIONS = 256
"""Connections open at once; a new one beyond closes the oldest that is not being answered
(a slow or idle client), so that /healthz, /readyz and /metrics always get in."""
NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


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
        # Off the event loop: with thousands of providers a scrape is tens of milliseconds of
        # Python that would hold every poll up (prometheus_client's metrics are thread-safe).
        body = await asyncio.to_thread(generate_latest, registry)
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

    app = web.Application(middlewares=[_guarded])
    if hooks is not None:
        app.router.add_post("/hooks/{name}", hooks)
    app.router.add_routes(routes)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


STYLE = resources.files("monitor.serve").joinpath("templates/style.css").read_text().strip()
"""The page's one stylesheet, inlined as it is here: the CSP allows it by this text's hash."""


def _style_hash() -> str:
    return base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
"""On every response."""
CSP = (
    f"default-src 'none'; style-src 'sha256-{_style_hash()}'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The page's Content-Security-Policy: its one inline stylesheet (by hash), nothing else."""


@web.middleware
async def _guarded(request: web.Request, handler: Any) -> web.StreamResponse:
    """Bodies read within `BODY_TIMEOUT` (pushes read their own, within their own limits), and
    every answer with the security headers."""
    if request.method not in NO_BODY and not request.path.startswith("/hooks/"):
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                await request.read()  # kept: the handler's json() or post() reads it again
        except TimeoutError:
            return _secured(
                web.json_response(
                    {"error": f"the body did not arrive within {BODY_TIMEOUT:g} s"}, status=408
                )
            )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    except UnicodeError:  # a header or path byte that is not UTF-8
        response = web.json_response({"error": "the request is not valid UTF-8"}, status=400)
    return _secured(response)


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(SECURITY_HEADERS)
    if response.content_type == "text/html":
        response.headers["Content-Security-Policy"] = CSP
    return response


def runner(app: web.Application) -> web.AppRunner:
    """The runner of the listener: a connection that sends no whole request within
    `HEADER_TIMEOUT` is closed (aiohttp's keep-alive timer runs from a connection's start)."""
    return web.AppRunner(app, access_log=None, keepalive_timeout=HEADER_TIMEOUT)


class ConnectionLimit:
    """At most `limit` connections: past it, the oldest connection that is not being answered
    (a slow client still sending its headers, an idle keep-alive one) is closed, or the new one
    when every connection is busy. Installed on a set-up runner's server."""

    def __init__(self, server: web.Server, limit: int = MAX_CONNECTIONS) -> None:
        self._server = server
        self._limit = limit
        self._made = server.connection_made
        self._closing: set[RequestHandler] = set()
        """Connections chosen to make room, closed at the loop's next turn."""
        self.closed = 0
        """Connections closed to make room."""
        server.connection_made = self._connection_made  # type: ignore[method-assign]

    @property
    def closing(self) -> int:
        """Connections chosen to make room and not closed yet (closed at the loop's next turn)."""
        return len(self._closing)

    def _connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self._made(handler, transport)
        # A closed connection stays listed until its handler has finished: chosen again, it
        # would make no room, and the open ones grew past the limit (and the process past
        # its open files) while slow clients kept coming back.
        open_now = [h for h in self._server.connections if not _is_closed(h)]
        if len(open_now) - len(self._closing) <= self._limit:
            return
        idle = (
            h
            for h in open_now
            if h is not handler and h not in self._closing and not h._request_in_progress
        )
        victim = next(idle, handler)
        # Once its handler has started: closed before, a new connection's handler task found
        # no server and failed (`Task exception was never retrieved`, an AssertionError).
        self._closing.add(victim)
        asyncio.get_running_loop().call_soon(self._close, victim)
        self.closed += 1
        if self.closed == 1 or self.closed % 1000 == 0:
            log.warning(
                "too many connections; the oldest idle ones are closed",
                limit=self._limit,
                closed=self.closed,
            )

    def _close(self, victim: RequestHandler) -> None:
        self._closing.discard(victim)
        victim.force_close()


def _is_closed(handler: RequestHandler) -> bool:
    return handler.transport is None or handler.transport.is_closing()
