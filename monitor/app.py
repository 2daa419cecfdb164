"""The composition root: builds every part from the config and runs them in one task group."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import anyio
import anyio.to_thread
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor import providers
from monitor.config import Config, VmsIntercomProvider
from monitor.notify.delivery import IDLE_CHECK, RetryPolicy, Worker
from monitor.notify.sender import Sender, warm_up
from monitor.pipeline import Pipeline
from monitor.poller import Poller
from monitor.recorder import Recorder
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules, rule_files
from monitor.rules.match import Rule
from monitor.rules.schedule import Schedule, from_config
from monitor.rules.silence import Silencer
from monitor.rules.state import RuleState
from monitor.rules.templates import Templates
from monitor.store import Store, StoreError, open_store
from monitor.supervisor import STORE_SLACK, Heartbeat, Supervisor
from monitor.telemetry import Telemetry
from monitor.tracker import Tracker
from monitor.web import Readiness, build_app
from monitor.yamldoc import SourceErrors

log = structlog.get_logger("monitor.app")


SENT_RETENTION = 7 * 86400.0
"""Delivered messages are kept this long (their idempotency keys with them)."""
TICK_SECONDS = 1.0
"""How often timers, groups and digests are checked."""
WEB_CHECK = 5.0
"""How often the HTTP server is checked to be serving."""
EXIT_UNHEALTHY = 3
"""The exit status when callmon stopped because it could not work (store gone, loop hung)."""


def rules_context(config: Config) -> Context:
    """What rule files are checked against for this config."""
    return Context(
        notifiers=list(config.notifiers),
        providers=[p.name for p in config.providers],
        templates=Templates(config.zone),
        schedules=list(config.schedules),
    )


def build_schedules(config: Config) -> dict[str, Schedule]:
    """The config's named schedules, each in its own timezone or the config's."""
    return {
        name: from_config(
            name, s.days, s.from_, s.to, ZoneInfo(s.timezone) if s.timezone else config.zone
        )
        for name, s in config.schedules.items()
    }


def load_config_rules(config: Config) -> list[Rule]:
    """The rules the config names, compiled; raises `SourceErrors`."""
    return load_rules(config.rule_paths(), rules_context(config))


class Daemon:
    """callmon's running parts, wired together."""

    def __init__(
        self,
        config: Config,
        rules: Sequence[Rule],
        *,
        registry: CollectorRegistry | None = None,
        retry: RetryPolicy | None = None,
        record: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self.registry = registry or CollectorRegistry()
        self.telemetry = Telemetry(self.registry)
        self.supervisor = Supervisor(self.telemetry, clock=clock)
        self.readiness = Readiness(problems=self.problems, providers=self._provider_status)
        self.retry = retry or RetryPolicy()
        self.rules = list(rules)
        self.pollers: list[Poller] = []
        self.workers: dict[str, list[Worker]] = {}
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self.pipeline: Pipeline | None = None
        self.store: Store | None = store
        """The store to use; opened from the config's `store` URL when not given."""
        self._dropped_state: dict[Any, Any] = {}
        self._next_prune = 0.0
        self._clock = clock
        self._unhealthy_since: float | None = None
        self._silence_ids: frozenset[int] = frozenset()
        self.recorder = Recorder(record) if record else None
        self._rule_files = self._rule_files_seen()

    def _provider_status(self) -> dict[str, Any]:
        return {
            p.settings.name: {
                "up": p.up,
                "last_success": p.last_success.isoformat() if p.last_success else None,
                **({"error": p.last_error} if p.last_error else {}),
            }
            for p in self.pollers
        }

    def problems(self) -> list[str]:
        """What keeps the daemon from working now: dead or hung loops, a failing store."""
        found = self.supervisor.problems()
        if self.store is not None and self.store.health.failing_since is not None:
            found.append(
                f"store failing for {self.store.health.failing_for():.0f} s: "
                f"{self.store.health.last_error}"
            )
        return found

    def reload_rules(self) -> None:
        """Re-read rule files; a broken file is rejected and the old rules stay."""
        try:
            rules = load_config_rules(self.config)
        except SourceErrors as exc:
            self.telemetry.rule_reloads.labels("failure").inc()
            for error in exc.errors:
                log.error("rule reload rejected; previous rules stay in force", error=str(error))
            return
        except Exception as exc:  # whatever a broken file raises, the rules in force stay
            self.telemetry.rule_reloads.labels("failure").inc()
            log.error(
                "rule reload rejected; previous rules stay in force",
                error=f"{type(exc).__name__}: {exc}"[:300],
                exc_info=True,
            )
            return
        self.telemetry.rule_reloads.labels("success").inc()
        self.rules = rules
        if self.pipeline is not None:
            self._dropped_state.update(self.pipeline.engine.set_rules(rules))
        self.telemetry.declare((), (), [r.name for r in rules])
        log.info("rules reloaded", rules=len(rules))

    def _request_counter(self, provider: str) -> Callable[[str], None]:
        counter = self.telemetry.requests

        def observe(code: str) -> None:
            counter.labels(provider, code).inc()

        return observe

    def _wake(self, notifier: str) -> None:
        for worker in self.workers.get(notifier, ()):
            worker.wake()

    async def run(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Run until `stopping` is set; then stop polling, let sends finish, close the store.

        `exit_code` is 3 afterwards when the daemon stopped because it could not work.
        """
        config = self.config
        self.telemetry.declare(
            [p.name for p in config.providers], list(config.notifiers), [r.name for r in self.rules]
        )
        runner = web.AppRunner(build_app(self.registry, self.readiness), access_log=None)
        await runner.setup()
        try:
            host, port = config.listen_address()
            site = web.TCPSite(runner, host, port)
            await site.start()
            store = self.store = self.store or open_store(config.store)
            self.readiness.store_open = True
            try:
                await self._run(store, site, on_ready)
            finally:
                self.readiness.store_open = False
                with contextlib.suppress(StoreError):
                    await store.close()
        finally:
            if self.recorder is not None:
                self.recorder.close()
            await runner.cleanup()
            log.info("stopped", exit_code=self.exit_code)

    async def _run(
        self, store: Store, site: web.TCPSite, on_ready: Callable[[], None] | None
    ) -> None:
        config = self.config
        await anyio.to_thread.run_sync(warm_up)
        for name, notifier in config.notifiers.items():
            policy = RetryPolicy(self.retry.first, min(self.retry.cap, notifier.retry_max))
            self.workers[name] = [
                Worker(
                    name,
                    i,
                    Sender(url.get_secret_value(), timeout=notifier.timeout),
                    store,
                    self.telemetry,
                    policy=policy,
                    max_age=notifier.max_age,
                    min_interval=1.0 / notifier.rate_limit if notifier.rate_limit else 0.0,
                )
                for i, url in enumerate(notifier.urls)
            ]
        engine = Engine(
            self.rules,
            build_schedules(config),
            zone=config.zone,
            state=RuleState(await store.load_rule_state()),
        )
        self.pipeline = Pipeline(
            store,
            self.telemetry,
            engine,
            {name: len(n.urls) for name, n in config.notifiers.items()},
            wake=self._wake,
            sinks=[self.recorder.record] if self.recorder else [],
        )
        async with aiohttp.ClientSession() as session:
            for settings in config.providers:
                if isinstance(settings, VmsIntercomProvider):
                    watched = len(settings.intercoms or ()) or settings.max_doors
                    self.telemetry.limit_doors(settings.name, watched)
                state = await store.load_provider(settings.name)
                tracker = Tracker.from_store(
                    settings.name, settings.type, state.calls, state.cursor, settings.retention
                )
                client = providers.build(settings, session, self._request_counter(settings.name))
                self.pollers.append(
                    Poller(client, settings, tracker, self.pipeline, self.telemetry)
                )
            await self._supervise(site, on_ready)

    async def _supervise(self, site: web.TCPSite, on_ready: Callable[[], None] | None) -> None:
        """Every loop under the supervisor; on stop, polling ends first, then delivery drains."""
        start = self.supervisor.start
        workers = [w for ws in self.workers.values() for w in ws]
        async with anyio.create_task_group() as delivery:
            for worker in workers:
                start(
                    delivery,
                    f"send:{worker.notifier}:{worker.target}",
                    worker.run,
                    period=IDLE_CHECK + worker.timeout + STORE_SLACK,
                )
            async with anyio.create_task_group() as intake:
                for poller in self.pollers:
                    start(intake, f"poll:{poller.settings.name}", poller.run, period=poller.period)
                start(intake, "rules", self._tick, period=TICK_SECONDS + STORE_SLACK)
                start(intake, "rule-files", self._watch_rule_files, period=TICK_SECONDS * 5)
                start(intake, "watchdog", self._watchdog, period=TICK_SECONDS + STORE_SLACK)
                start(intake, "web", lambda beat: self._web(site, beat), period=WEB_CHECK)
                log.info(
                    "callmon running",
                    providers=len(self.pollers),
                    rules=len(self.rules),
                    notifiers=len(self.workers),
                    listen=self.config.listen,
                )
                if on_ready is not None:
                    on_ready()
                await self.stopping.wait()
                intake.cancel_scope.cancel()
            await self._drain(workers)
            delivery.cancel_scope.cancel()

    async def _web(self, site: web.TCPSite, beat: Heartbeat) -> None:
        """Watch the HTTP server: when it stops serving, serve again (raising until it can)."""
        while True:
            server: Any = site._server
            if server is None or not server.is_serving():
                log.warning("HTTP server stopped serving; starting it again")
                await site.start()
            beat()
            await anyio.sleep(WEB_CHECK)

    def _rule_files_seen(self) -> frozenset[tuple[str, float, int]]:
        """The rule files as they are on disk now: path, modification time, size."""
        seen = set()
        for path in rule_files(self.config.rule_paths()):
            try:
                stat = path.stat()
            except OSError:
                continue
            seen.add((str(path), stat.st_mtime, stat.st_size))
        return frozenset(seen)

    async def _watch_rule_files(self, beat: Heartbeat) -> None:
        """Once a second: reload the rules when a rule file changed on disk."""
        while True:
            beat()
            await anyio.sleep(TICK_SECONDS)
            files = await anyio.to_thread.run_sync(self._rule_files_seen)
            if files != self._rule_files:
                self._rule_files = files
                log.info("rule files changed; reloading")
                self.reload_rules()

    async def _tick(self, beat: Heartbeat) -> None:
        """Once a second: refresh silences, store dropped rule state, fire what is due."""
        pipeline = self.pipeline
        assert pipeline is not None
        while True:
            beat()
            await anyio.sleep(TICK_SECONDS)
            try:
                await self._tick_once(pipeline)
            except StoreError as exc:
                log.error("store failed; rule timers will be retried", error=str(exc))

    async def _tick_once(self, pipeline: Pipeline) -> None:
        silences = await pipeline.store.silences(time.time())
        ids = frozenset(s.id for s in silences)
        if ids != self._silence_ids:
            self._silence_ids = ids
            log.info("silences in force", count=len(ids), ids=sorted(ids))
        pipeline.engine.silencer = Silencer(silences)
        if self._dropped_state:
            await pipeline.commit_rule_changes(self._dropped_state)
            self._dropped_state = {}
        # A call's timer fires only once a poll after its deadline still saw the call in
        # the state (a call answered meanwhile, or while callmon was down, cancels it).
        down = frozenset(p.settings.name for p in self.pollers if p.up is False)
        polled = {
            p.settings.name: p.last_success.timestamp()
            for p in self.pollers
            if p.up is True and p.last_success is not None
        }
        await pipeline.tick(datetime.now(UTC), down, polled)
        await self._outbox_gauges()

    async def _watchdog(self, beat: Heartbeat) -> None:
        """Check the store every second; when the daemon has not been able to work for
        `unhealthy_exit_after` (a failing store, a hung loop), stop with exit code 3."""
        assert self.store is not None
        limit = self.config.unhealthy_exit_after
        while True:
            beat()
            with contextlib.suppress(StoreError):  # its health records the failure
                await self.store.check()
            stuck = self.store.health.failing_for() > 0 or any(
                "hung" in p for p in self.supervisor.problems()
            )
            now = self._clock()
            if not stuck:
                self._unhealthy_since = None
            elif self._unhealthy_since is None:
                self._unhealthy_since = now
            elif now - self._unhealthy_since > limit:
                log.critical(
                    "callmon cannot work; exiting so that it is restarted",
                    problems=self.problems(),
                    unhealthy_for=round(now - self._unhealthy_since),
                )
                self.exit_code = EXIT_UNHEALTHY
                self.stopping.set()
                return
            await anyio.sleep(TICK_SECONDS)

    async def _outbox_gauges(self) -> None:
        """Queue depth and the age of the oldest waiting message, per notifier; and, once an
        hour, forget delivered messages older than a week."""
        assert self.pipeline is not None
        store, now = self.pipeline.store, time.time()
        for name in self.workers:
            self.telemetry.queue_depth.labels(name).set(await store.pending_count(name))
            oldest = await store.oldest_pending(name)
            self.telemetry.oldest_pending.labels(name).set(0 if oldest is None else now - oldest)
        if now >= self._next_prune:
            self._next_prune = now + 3600
            await store.prune_sent(now - SENT_RETENTION)

    async def _drain(self, workers: list[Worker]) -> None:
        """Give the workers the grace period to send what is due and finish what is in flight;
        whatever is left stays queued in the store for the next start."""
        with anyio.move_on_after(self.config.shutdown_grace):
            # The workers keep sending; this only watches the outbox until nothing is due.
            with contextlib.suppress(StoreError):
                while await self._anything_due():  # noqa: ASYNC110
                    await anyio.sleep(0.1)
            for worker in workers:
                worker.stop()
            while any(w.running for w in workers):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        if any(w.sending for w in workers):
            log.warning("grace period over with a send in flight; it stays queued")

    async def _anything_due(self) -> bool:
        assert self.pipeline is not None
        now = time.time()
        for worker in (w for ws in self.workers.values() for w in ws):
            due = await self.pipeline.store.next_due(worker.notifier, worker.target)
            if due is not None and due <= now:
                return True
        return False


def install_signals(daemon: Daemon) -> None:
    """SIGTERM/SIGINT stop gracefully; SIGHUP reloads rules."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload_rules)
