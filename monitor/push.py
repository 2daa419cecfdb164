"""Pushes: providers' webhooks, from the HTTP request to an event, through the store.

Any replica takes a push (`Hooks.handle` on `POST /hooks/NAME`): it reads the body within
limits, has the provider authenticate it and check its shape, and keeps it in the store before
answering 200, so that an accepted push is never lost. The leader applies kept pushes in order
(`PushIntake`): each becomes a one-call step through the same tracker, rules and outbox as a
poll, and is deleted in that step's transaction. The tracker drops what it already knows (a
replayed push, the poll that catches up) and never moves a call backwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from monitor.loops import every
from monitor.model import PollResult
from monitor.pipeline import Pipeline
from monitor.providers.base import ProviderError
from monitor.providers.settings import ProviderSettings
from monitor.providers.webhook import MAX_BODY, NotYet, Received, Refused, Reply, WebhookSpec
from monitor.store import Push, Store, StoreError
from monitor.supervisor import Heartbeat
from monitor.telemetry import Telemetry
from monitor.tracker import Tracker

log = structlog.get_logger("monitor.push")

BODY_TIMEOUT = 10.0
"""How long a push's body may take to arrive (a slow sender holds a connection)."""
BATCH = 50
LOOK_AGAIN = 1.0
"""The leader looks at the kept pushes at least this often (a wake-up may be missed)."""
PATIENCE = 60.0
"""How long a push whose call the API does not show yet is tried again (then polling reads
the call)."""


class Hooks:
    """`POST /hooks/NAME` for every provider with a `webhook:`."""

    def __init__(
        self,
        providers: Mapping[str, tuple[ProviderSettings, WebhookSpec]],
        store: Callable[[], Store | None],
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


class PushIntake:
    """The leader's loop that applies kept pushes, oldest first."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        targets: Mapping[str, tuple[Tracker, Any]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._targets = targets
        self._clock = clock
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """A push was kept (here, or by another replica)."""
        self._woken.set()

    async def run(self, beat: Heartbeat) -> None:
        await every(LOOK_AGAIN, self._woken, beat, self.drain, "kept pushes wait for it")

    async def drain(self) -> int:
        """Apply every kept push that can be applied now; how many were."""
        applied = 0
        waiting: set[int] = set()
        while True:
            batch = [
                p for p in await self._store.pushes(BATCH + len(waiting)) if p.id not in waiting
            ]
            if not batch:
                return applied
            for push in batch:
                target = self._targets.get(push.provider)
                if target is not None and not target[0].baselined:
                    waiting.add(push.id)  # the first poll takes the baseline; then this applies
                    continue
                if await self._apply(push, target):
                    applied += 1
                else:
                    waiting.add(push.id)

    async def _apply(self, push: Push, target: tuple[Tracker, Any] | None) -> bool:
        """Apply one kept push; False when it must wait (its call not shown by the API yet)."""
        pipeline, provider = self._pipeline, push.provider
        if target is None:
            log.warning(
                "a kept push's provider is no longer configured; dropped", provider=provider
            )
            await pipeline.forget_pushes([push.id])
            return True
        tracker, client = target
        try:
            calls = await client.pushed(push.body)
        except NotYet as exc:
            if time.time() - push.received_at < PATIENCE:
                return False
            log.info(
                "a push's call never showed; polling reads it", provider=provider, why=str(exc)
            )
            await pipeline.forget_pushes([push.id])
            return True
        except ProviderError as exc:
            if time.time() - push.received_at < PATIENCE:
                log.warning("reading a pushed call failed; trying again", error=str(exc))
                return False
            await pipeline.forget_pushes([push.id])
            return True
        except Exception as exc:  # a push the provider accepted but its client cannot read
            log.error(
                "a kept push cannot be read; dropped",
                provider=provider,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            await pipeline.forget_pushes([push.id])
            return True
        result = PollResult(calls=calls, via="push")
        await pipeline.process(tracker, result, self._clock(), pushes=[push.id])
        return True
