"""The composition root: builds every part from the config, connects them, and runs every loop
under one supervisor. This is the one module that wires; the parts know only what they are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import anyio
import anyio.to_thread
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor import sources as providers
from monitor.config import Config
from monitor.delivery.sender import Sender, warm_up
from monitor.delivery.worker import IDLE_CHECK, RetryPolicy, Worker, drain
from monitor.rules.match import Rule
from monitor.rules.state import RuleState
from monitor.runtime.build import build_engine, load_config_rules
from monitor.runtime.leadership import Leadership, Lease
from monitor.runtime.loops import (
    TICK_SECONDS,
    WEB_CHECK,
    RuleClock,
    RuleFileWatcher,
    Watchdog,
    WebWatch,
)
from monitor.runtime.supervisor import Supervisor
from monitor.serve.api import Api, Guesses
from monitor.serve.hooks import Hooks
from monitor.serve.page import StatusPage
from monitor.serve.web import ConnectionLimit, PushHandler, Readiness, build_app
from monitor.serve.web import runner as serve_runner
from monitor.sources.base import Provider
from monitor.sources.poller import Poller
from monitor.sources.settings import ProviderSettings
from monitor.store import Store, StoreError, open_store
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import STORE_SLACK
from monitor.text.yamldoc import SourceErrors
from monitor.tracking.pipeline import Pipeline
from monitor.tracking.pushes import LOOK_AGAIN, PushIntake
from monitor.tracking.recorder import Recorder
from monitor.tracking.tracker import Tracker

log = structlog.get_logger("monitor.runtime.daemon")

EXIT_UNHEALTHY = 3
"""The exit status when callmon stopped because it could not work (store gone, loop hung)."""


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
        check: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._check = check
        """A check of the config to make once ready, off the start-up path (its notifier URLs:
        apprise finds its plugins first); what it raises ends `run` with that error."""
        self._config_error: Exception | None = None
        self._checked = asyncio.Event()
        if check is None:
            self._checked.set()
        self.registry = registry or CollectorRegistry()
        self.telemetry = Telemetry(self.registry)
        self.supervisor = Supervisor(self.telemetry, clock=clock)
        self.readiness = Readiness(
            problems=self.problems, providers=self._provider_status, role=lambda: self.role
        )
        self.retry = retry or RetryPolicy()
        self.rules = list(rules)
        self.pollers: list[Poller] = []
        self._push_targets: dict[str, tuple[Tracker, Provider]] = {}
        self._intake: PushIntake | None = None
        self.workers: dict[str, list[Worker]] = {}
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self.pipeline: Pipeline | None = None
        self.store: Store | None = store
        """The store to use; opened from the config's `store` URL when not given."""
        self._clock = clock
        self.recorder = Recorder(record) if record else None
        self.leadership: Leadership | None = None
        """With a shared store: whether this replica leads (None: a single process, always)."""
        self._clock_loop: RuleClock | None = None
        self._rule_files = RuleFileWatcher(config.rule_paths, self.reload_rules)
        """Reloads rules when their files change, or on SIGHUP (on every replica: a standby
        leads with the rules on disk)."""

    @property
    def role(self) -> str:
        """`leader` or `standby`."""
        leads = self.leadership is None or self.leadership.leading
        return "leader" if leads else "standby"

    def may_send(self) -> bool:
        """Whether this replica may send a notification this instant."""
        return self.leadership is None or self.leadership.holds()

    def _provider_status(self) -> dict[str, Any]:
        return {
            p.settings.name: {
                "up": p.up,
                "last_success": p.last_success.isoformat() if p.last_success else None,
                **({"error": p.last_error} if p.last_error else {}),
                **({"rechecks_waiting": p.behind} if p.behind else {}),
            }
            for p in self.pollers
        }

    def _provider_health(self) -> tuple[frozenset[str], Mapping[str, float]]:
        down = frozenset(p.settings.name for p in self.pollers if p.up is False)
        polled = {
            p.settings.name: p.last_success.timestamp()
            for p in self.pollers
            if p.up is True and p.last_success is not None
        }
        return down, polled

    def problems(self) -> list[str]:
        """What keeps the daemon from working now: dead or hung loops, a failing store."""
        found = self.supervisor.problems()
        if self.store is not None and self.store.health.failing_since is not None:
            health = self.store.health
            found.append(f"store failing for {health.failing_for():.0f} s: {health.last_error}")
        return found

    def request_reload(self) -> None:
        """Reload the rule files now (SIGHUP): the rule-file watcher does it."""
        self._rule_files.wake()

    async def reload_rules(self) -> None:
        """Re-read rule files off the event loop; a broken file is rejected and the old rules
        stay."""
        try:
            rules = await anyio.to_thread.run_sync(load_config_rules, self.config)
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
            self.pipeline.set_rules(rules)
        self.telemetry.declare((), (), [r.name for r in rules])
        log.info("rules reloaded", rules=len(rules))

    def _wake(self, notifier: str) -> None:
        for worker in self.workers.get(notifier, ()):
            worker.wake()

    async def run(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Run until `stopping` is set; then stop polling, let sends finish, close the store.

        With a shared store (PostgreSQL), this replica leads only while it holds the lease and
        stands by otherwise. `exit_code` is 3 afterwards when the daemon stopped because it
        could not work.
        """
        config = self.config
        self.telemetry.declare(
            [p.name for p in config.providers],
            list(config.notifiers),
            [r.name for r in self.rules],
            provider_series=config.provider_series,
        )
        token = config.api_token.get_secret_value() if config.api_token else None
        rules = lambda: [r.name for r in self.rules]  # noqa: E731 (the rules in force now)
        guesses = Guesses()  # one budget of wrong tokens per address, for the API and the page
        api = Api(lambda: self.store, token, rules, status=self._overview, guesses=guesses)
        page = StatusPage(
            lambda: self.store,
            token,
            rules,
            self._overview,
            self.registry,
            config.zone,
            guesses=guesses,
        )
        app = build_app(
            self.registry, self.readiness, self._hooks(), [*api.routes(), *page.routes()]
        )
        runner = serve_runner(app)
        await runner.setup()
        assert runner.server is not None
        ConnectionLimit(runner.server)
        try:
            host, port = config.listen_address()
            site = web.TCPSite(runner, host, port)
            await site.start()
            store = self.store = self.store or await open_store(
                config.store, lease_ttl=config.lease_ttl
            )
            self.readiness.store_open = True
            try:
                await self._serve(store, site, on_ready)
            finally:
                self.readiness.store_open = False
                with contextlib.suppress(StoreError):
                    await store.close()
        finally:
            if self.recorder is not None:
                self.recorder.close()
            await runner.cleanup()
        if self._config_error is not None:
            raise self._config_error

    async def _serve(
        self, store: Store, site: web.TCPSite, on_ready: Callable[[], None] | None
    ) -> None:
        """The loops of every role (watchdog, web, rule files), and the leader's work: always
        with a store of one process; while holding the lease with a shared one."""
        start = self.supervisor.start
        watchdog = Watchdog(
            store, self.supervisor, self.config.unhealthy_exit_after, self._give_up, self._clock
        )
        async with anyio.create_task_group() as always:
            if self._check is not None:
                always.start_soon(self._check_config)
            start(always, "watchdog", watchdog.run, period=TICK_SECONDS + STORE_SLACK)
            start(always, "web", WebWatch(site).run, period=WEB_CHECK)
            start(always, "rule-files", self._rule_files.run, period=TICK_SECONDS * 5)
            if not isinstance(store, Lease):
                self.telemetry.leader.set(1)
                await self._run(store, on_ready)
            else:
                leadership = self.leadership = Leadership(
                    store, self.config.lease_ttl, on_change=self._leading
                )
                store.on_lease_lost = leadership.nudge
                always.start_soon(store.listen, self._notified)
                log.info("standing by", lease_ttl=self.config.lease_ttl)
                if on_ready is not None:
                    on_ready()
                await leadership.run(lambda: self._run(store, None), self.stopping)
            always.cancel_scope.cancel()

    async def _check_config(self) -> None:
        """The check left for after start-up; what it raises stops the daemon, and `run`
        raises it."""
        assert self._check is not None
        try:
            await anyio.to_thread.run_sync(self._check)
        except Exception as exc:
            self._config_error = exc
            self.stopping.set()
        finally:
            self._checked.set()

    def _leading(self, leading: bool) -> None:
        self.telemetry.leader.set(1 if leading else 0)

    def _overview(self) -> dict[str, Any]:
        """What only this process knows: its role, its providers' health, the doors it saw."""
        doors = [
            (name, door, online)
            for name, (tracker, _) in self._push_targets.items()
            for door, online in sorted(tracker.intercoms.items())
        ]
        return {"role": self.role, "providers": self._provider_status(), "doors": doors}

    def _hooks(self) -> PushHandler | None:
        """`POST /hooks/NAME` for the providers with a `webhook:`, on every replica."""
        takes = {}
        for settings in self.config.providers:
            spec = providers.PLUGINS[settings.type].webhook
            if spec is not None and getattr(settings, "webhook", None) is not None:
                takes[settings.name] = (settings, spec)
        if not takes:
            return None
        return Hooks(takes, lambda: self.store, self.telemetry, self._wake_intake).handle

    def _wake_intake(self) -> None:
        if self._intake is not None:
            self._intake.wake()

    def _notified(self, topic: str) -> None:
        """Another process changed the shared store: look at it now, not at the next tick."""
        if topic == "outbox":
            for workers in self.workers.values():
                for worker in workers:
                    worker.wake()
        elif topic == "silences" and self._clock_loop is not None:
            self._clock_loop.wake()
        elif topic == "pushes":
            self._wake_intake()
        elif topic == "lease" and self.leadership is not None:
            self.leadership.nudge()

    async def _run(self, store: Store, on_ready: Callable[[], None] | None) -> None:
        """The leader's work, from the stored state: poll, decide, send, until `stopping`. A
        store that fails while that state is loaded is tried again every second (the watchdog
        says when it has failed too long), never an exception out of the daemon."""
        await self._checked.wait()
        if self._config_error is not None:
            return
        failures = 0
        while not self.stopping.is_set():
            try:
                await self._work(store, on_ready)
                return
            except StoreError as exc:
                failures += 1
                if failures == 1:
                    log.error(
                        "the store failed as the leader's work started; retrying", error=str(exc)
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), TICK_SECONDS)

    async def _work(self, store: Store, on_ready: Callable[[], None] | None) -> None:
        """Load the stored state, build the pollers and workers, and run every loop."""
        config = self.config
        await anyio.to_thread.run_sync(warm_up)
        self.pollers = []
        self._push_targets = {}
        self._build_workers(store)
        state, unreadable = RuleState.load(await store.load_rule_state())
        for key in unreadable:
            log.warning("stored rule state unreadable; dropped", rule=key.rule, kind=key.kind)
        engine = build_engine(self.rules, config, state)
        self.pipeline = Pipeline(
            store,
            self.telemetry,
            engine,
            {name: len(n.urls) for name, n in config.notifiers.items()},
            wake=self._wake,
            sinks=[self.recorder.record] if self.recorder else [],
        )
        self.pipeline.drop_orphans()  # stored with the first commit
        async with aiohttp.ClientSession() as session:
            for settings in config.providers:
                await self._add_poller(store, self.pipeline, settings, session)
            await self._supervise(store, on_ready)

    def _build_workers(self, store: Store) -> None:
        for name, notifier in self.config.notifiers.items():
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
                    may_send=self.may_send,
                )
                for i, url in enumerate(notifier.urls)
            ]

    async def _add_poller(
        self,
        store: Store,
        pipeline: Pipeline,
        settings: ProviderSettings,
        session: aiohttp.ClientSession,
    ) -> None:
        """A provider's client, its tracker as the store left it, and the poller between them,
        whose results and health changes go to the pipeline."""
        name = settings.name
        state = await store.load_provider(name)
        tracker = Tracker.from_store(
            name, settings.type, state.calls, state.cursor, settings.retention
        )
        if settings.doors_with_series is not None:
            self.telemetry.limit_doors(name, settings.doors_with_series)
        requests = self.telemetry.requests

        label = self.telemetry.provider(name)
        children: dict[str, Any] = {}

        def observe(code: str) -> None:
            child = children.get(code)
            if child is None:
                child = children[code] = requests.labels(label, code)
            child.inc()

        client = providers.build(settings, session, observe)
        self._push_targets[name] = (tracker, client)
        on_result, on_health = pipeline.callbacks(tracker)
        self.pollers.append(Poller(client, settings, tracker, on_result, on_health, self.telemetry))

    async def _supervise(self, store: Store, on_ready: Callable[[], None] | None) -> None:
        """Every loop of the leader under the supervisor; on stop, polling ends first, then
        delivery drains. Cancelled (the lease lost), it stops at once."""
        assert self.pipeline is not None
        start = self.supervisor.start
        workers = [w for ws in self.workers.values() for w in ws]
        clock = self._clock_loop = RuleClock(
            self.pipeline,
            self.telemetry,
            self.workers,
            self._provider_health,
            _decisions_retention=self.config.decisions_retention,
        )
        names: list[str] = []
        try:
            async with anyio.create_task_group() as delivery:
                for worker in workers:
                    period = IDLE_CHECK + worker.timeout + STORE_SLACK
                    name = f"send:{worker.notifier}:{worker.target}"
                    names.append(start(delivery, name, worker.run, period=period).name)
                async with anyio.create_task_group() as intake:
                    for poller in self.pollers:
                        name = f"poll:{poller.settings.name}"
                        names.append(start(intake, name, poller.run, period=poller.period).name)
                    names.append(
                        start(intake, "rules", clock.run, period=TICK_SECONDS + STORE_SLACK).name
                    )
                    pushes = self._intake = PushIntake(store, self.pipeline, self._push_targets)
                    period = LOOK_AGAIN + STORE_SLACK
                    names.append(start(intake, "pushes", pushes.run, period=period).name)
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
                await drain(store, workers, self.config.shutdown_grace)
                delivery.cancel_scope.cancel()
        finally:
            # A standby has none of these loops: nothing to report about them.
            self.supervisor.forget(names)
            self._clock_loop = None
            self._intake = None
            self.pipeline = None
            # Nor does a standby report providers or doors as the leader last saw them.
            self.pollers = []
            self._push_targets = {}

    def _give_up(self, problems: list[str]) -> None:
        self.exit_code = EXIT_UNHEALTHY
        self.stopping.set()


def install_signals(daemon: Daemon) -> None:
    """SIGTERM/SIGINT stop gracefully; SIGHUP reloads rules."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
