"""Pushes taken in: any replica answers `POST /hooks/NAME` for the providers with a `webhook:`.

It reads the body within limits, has the provider authenticate it and check its shape, and keeps
it in the store before answering 200, so that an accepted push is never lost; the leader applies
it (`monitor.tracking.pushes`). The same push again (a provider's retry of one kept lately) is a
duplicate: answered, counted, not kept twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from monitor.sources.settings import ProviderSettings
from monitor.sources.webhook import MAX_BODY, Received, Refused, Reply, WebhookSpec
from monitor.store import Pushes, StoreError
from monitor.telemetry import Telemetry

log = structlog.get_logger("monitor.serve.hooks")

BODY_TIMEOUT = 10.0
"""How long a push's body may take to arrive (a slow sender holds a connection)."""


class Hooks:
    """`POST /hooks/NAME` for every provider with a `webhook:`."""

    def __init__(
        self,
        providers: Mapping[str, tuple[ProviderSettings, WebhookSpec]],
        store: Callable[[], Pushes | None],
        telemetry: Telemetry,
        wake: Callable[[], None],
    ) -> None:
        self._providers = dict(providers)
        self._store = store
        self._telemetry = telemetry
        self._wake = wake
        self._recent = Recent()
        for name in self._providers:
            for outcome in OUTCOMES:
                telemetry.webhook_requests.labels(name, outcome)

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        found = self._providers.get(name)
        if found is None:
            return _error(404, f"no provider {name[:64]!r} takes pushes here")
        settings, spec = found
        webhook = getattr(settings, "webhook", None)
        try:
            body = await _body(request)
            verdict = _accept(spec, webhook, Received(request.headers, request.query, body))
        except Refused as refused:
            self._count(name, refused.outcome)
            log.warning("push refused", provider=name, status=refused.status, reason=str(refused))
            return _error(refused.status, str(refused))
        if isinstance(verdict, Reply):
            self._count(name, verdict.outcome)
            return web.json_response(verdict.body, status=verdict.status)
        if self._recent.seen(name, verdict):
            self._count(name, "duplicate")  # kept already: it would change nothing
            return web.json_response({"status": "duplicate"})
        store = self._store()
        try:
            if store is None:
                raise StoreError("the store is not open yet")
            await store.add_push(name, verdict, time.time())
        except StoreError as exc:
            self._count(name, "unavailable")
            log.error(
                "push not kept; the provider will send it again", provider=name, error=str(exc)
            )
            return _error(503, "the store is unavailable; send it again later")
        self._recent.add(name, verdict)
        self._count(name, "accepted")
        self._wake()
        return web.json_response({"status": "accepted"})

    def _count(self, provider: str, outcome: str) -> None:
        self._telemetry.webhook_requests.labels(provider, outcome).inc()


OUTCOMES = (
    "accepted",
    "duplicate",
    "ignored",
    "challenge",
    "unauthorized",
    "invalid",
    "too_large",
    "timeout",
    "unavailable",
)


def _accept(spec: WebhookSpec, webhook: Any, got: Received) -> str | Reply:
    """The provider's verdict on a push; a request it cannot even read (a header byte that is
    not UTF-8, a number out of range) is an invalid push, never an error of callmon's."""
    try:
        return spec.accept(webhook, got)
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise Refused(
            400, "invalid", f"not a push this provider sends: {type(exc).__name__}"
        ) from None


class Recent:
    """The pushes kept lately, by a digest of provider and body: the same push again (a
    provider's retry of one already kept) is answered and counted as a duplicate."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._digests: dict[bytes, None] = {}

    @staticmethod
    def _digest(provider: str, text: str) -> bytes:
        return hashlib.blake2b(f"{provider}\n{text}".encode(), digest_size=16).digest()

    def seen(self, provider: str, text: str) -> bool:
        return self._digest(provider, text) in self._digests

    def add(self, provider: str, text: str) -> None:
        self._digests[self._digest(provider, text)] = None
        if len(self._digests) > self._size:
            del self._digests[next(iter(self._digests))]


async def _body(request: web.Request) -> bytes:
    """The body, at most `MAX_BODY` bytes, within `BODY_TIMEOUT` seconds."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refused(413, "too_large", f"a push is at most {MAX_BODY // 1024} KiB")
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            body = await request.content.read(MAX_BODY + 1)
            while len(body) <= MAX_BODY and not request.content.at_eof():
                more = await request.content.read(MAX_BODY + 1 - len(body))
                if not more:
                    break
                body += more
    except TimeoutError:
        raise Refused(
            408, "timeout", f"the body did not arrive within {BODY_TIMEOUT:g} s"
        ) from None
    if len(body) > MAX_BODY:
        raise Refused(413, "too_large", f"a push is at most {MAX_BODY // 1024} KiB")
    return body


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
