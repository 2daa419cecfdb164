"""The daemon's own loops besides polling and delivery: the rule clock, the rule-file watcher
and the watchdog. Each runs under the supervisor and beats its heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import structlog
from aiohttp import web

from monitor.rules.loader import rule_files
from monitor.runtime.supervisor import Supervisor
from monitor.store import Health, StoreError, Upkeep
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import Heartbeat
from monitor.tracking.periodic import every
from monitor.tracking.pipeline import Pipeline

log = structlog.get_logger("monitor.runtime.loops")

TICK_SECONDS = 1.0
"""How often timers, groups, digests, silences and the store are looked at."""
WEB_CHECK = 5.0
"""How often the HTTP server is checked to be serving."""
DECISION_ROWS = 1_000_000
"""The decision record keeps at most this many rows (the newest), whatever their age."""
HISTORY_KEPT = 8 * 86400.0
"""The page's hourly history is kept this long: the API reads up to a week of it."""

ProviderHealth = Callable[[], tuple[Container[str], Mapping[str, float]]]
"""The providers that are down, and when each up provider last answered a poll (asked about one
provider at a time: a timer's)."""


@dataclass
class RuleClock:
    """Once a second: the silences in force, due timers, groups and digests, outbox gauges."""

    _pipeline: Pipeline
    _store: Upkeep
    _telemetry: Telemetry
    _notifiers: Iterable[str]
    _providers: ProviderHealth
    _silences: frozenset[int] = frozenset()
    _next_prune: float = 0.0
    _decisions_retention: float = 7 * 86400.0
    _woken: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """Tick now: another process changed the silences."""
        self._woken.set()

    async def run(self, beat: Heartbeat) -> None:
        await every(TICK_SECONDS, self._woken, beat, self.tick, "rule timers will be retried")

    async def tick(self) -> None:
        pipeline, store = self._pipeline, self._store
        silences = await store.silences(time.time())
        ids = frozenset(s.id for s in silences)
        if ids != self._silences:
            self._silences = ids
            log.info("silences in force", count=len(ids), ids=sorted(ids))
        pipeline.use_silences(silences)
        # A call's timer fires only once a poll after its deadline still saw the call in
        # the state (a call answered meanwhile, or while callmon was down, cancels it).
        down, polled = self._providers()
        await pipeline.tick(datetime.now(UTC), down, polled)
        await self._outbox_gauges(store)

    async def _outbox_gauges(self, store: Upkeep) -> None:
        """Queue depth and the age of the oldest waiting message, per notifier; and, every
        hour (or 24th of the retention, when shorter), forget the decision record and the
        delivered messages (their idempotency keys with them, the deliveries of the stories
        told) older than `decisions_retention`, and the history's hours older than 8 days."""
        now = time.time()
        for name in self._notifiers:
            self._telemetry.queue_depth.labels(name).set(await store.pending_count(name))
            oldest = await store.oldest_pending(name)
            self._telemetry.oldest_pending.labels(name).set(0 if oldest is None else now - oldest)
        if now >= self._next_prune:
            retention = self._decisions_retention
            self._next_prune = now + min(3600.0, retention / 24)
            await store.prune_sent(now - retention)
            await store.prune_decisions(now - retention, DECISION_ROWS)
            await store.prune_history(now - HISTORY_KEPT)


class RuleFileWatcher:
    """Once a second: reload the rules when a rule file changed on disk, or at once when asked
    (SIGHUP). The one place rules are reloaded; `reload` reads them off the event loop."""

    def __init__(
        self, paths: Callable[[], list[Path]], reload: Callable[[], Awaitable[None]]
    ) -> None:
        self._paths = paths
        self._reload = reload
        self._seen = self.files()
        self._asked = asyncio.Event()

    def wake(self) -> None:
        """Reload now, changed or not (SIGHUP)."""
        self._asked.set()

    def files(self) -> frozenset[tuple[str, float, int]]:
        """The rule files as they are on disk now: path, modification time, size."""
        seen = set()
        for path in rule_files(self._paths()):
            try:
                stat = path.stat()
            except OSError:
                continue
            seen.add((str(path), stat.st_mtime, stat.st_size))
        return frozenset(seen)

    async def run(self, beat: Heartbeat) -> None:
        while True:
            beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._asked.wait(), TICK_SECONDS)
            asked = self._asked.is_set()
            self._asked.clear()
            files = await anyio.to_thread.run_sync(self.files)
            if files != self._seen or asked:
                self._seen = files
                log.info("rule reload asked (SIGHUP)" if asked else "rule files changed; reloading")
                await self._reload()


@dataclass
class Watchdog:
    """Checks the store every second; when the daemon has not been able to work for `limit`
    seconds (a failing store, a hung loop), it calls `give_up`."""

    _store: Health
    _supervisor: Supervisor
    _limit: float
    _give_up: Callable[[list[str]], None]
    _clock: Callable[[], float] = time.monotonic
    _since: float | None = None

    async def run(self, beat: Heartbeat) -> None:
        while True:
            beat()
            with contextlib.suppress(StoreError):  # its health records the failure
                await self._store.check()
            if self._stuck_too_long():
                return
            await anyio.sleep(TICK_SECONDS)

    def _stuck_too_long(self) -> bool:
        hung = [p for p in self._supervisor.problems() if "hung" in p]
        failing = self._store.health.failing_for() > 0
        now = self._clock()
        if not (hung or failing):
            self._since = None
            return False
        if self._since is None:
            self._since = now
            return False
        if now - self._since <= self._limit:
            return False
        problems = hung + ([self._store.health.last_error or "store failing"] if failing else [])
        log.critical(
            "callmon cannot work; exiting so that it is restarted",
            problems=problems,
            unhealthy_for=round(now - self._since),
        )
        self._give_up(problems)
        return True


@dataclass
class WebWatch:
    """Watches the HTTP server: when it stops serving, it serves again (raising until it can)."""

    _site: web.TCPSite

    async def run(self, beat: Heartbeat) -> None:
        while True:
            server: Any = self._site._server
            if server is None or not server.is_serving():
                log.warning("HTTP server stopped serving; starting it again")
                await self._site.start()
            beat()
            await anyio.sleep(WEB_CHECK)
