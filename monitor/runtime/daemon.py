"""The composition root: builds every part from the config, connects them, and runs every loop
under one supervisor. This is the one module that wires; the parts know only what they are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.config import Config
from monitor.delivery.worker import RetryPolicy
from monitor.rules.match import Rule
from monitor.runtime.build import reload_rules
from monitor.runtime.http import http_app
from monitor.runtime.leader import Term
from monitor.runtime.leadership import Leadership, Lease
from monitor.runtime.loops import (
    TICK_SECONDS,
    WEB_CHECK,
    RuleFileWatcher,
    Watchdog,
    WebWatch,
)
from monitor.runtime.memory import Process
from monitor.runtime.supervisor import Supervisor
from monitor.serve.web import ConnectionLimit, Readiness
from monitor.serve.web import runner as serve_runner
from monitor.store import Store, StoreError, open_store
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import STORE_SLACK
from monitor.tracking.recorder import Recorder

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
        settle: bool = False,
    ) -> None:
        self.config = config
        self._check = check
        """A check of the config made beside the start (its notifier URLs: apprise is slow to
        load): nothing is sent until it passed, and what it raises ends `run`."""
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
        self.term: Term | None = None
        """The leader's work while this replica leads (see `monitor.runtime.leader`)."""
        self.stopping = asyncio.Event()
        self.exit_code = 0
        self.store: Store | None = store
        """The store to use; opened from the config's `store` URL when not given."""
        self._clock = clock
        self.recorder = Recorder(record) if record else None
        self.leadership: Leadership | None = None
        """With a shared store: whether this replica leads (None: a single process, always)."""
        self.process = Process(self.telemetry, settle=settle)
        """The event loop's lag; with `settle` (the process is callmon's own: `callmon run`,
        `callmon demo`) old objects kept out of the collector's passes."""
        self._rule_files = RuleFileWatcher(config.rule_paths, self.reload_rules)
        """Reloads rules when their files change, or on SIGHUP (on every replica: a standby
        leads with the rules on disk)."""

    @property
    def role(self) -> str:
        """`leader` or `standby`."""
        # `holds`, not `leading`: a replica whose lease ran out (starved of CPU, its renewal
        # late) says so at once, not "leader" beside the one that took it (the lease ends here
        # before it does in the store, so two replicas never both hold it).
        leads = self.leadership is None or self.leadership.holds()
        return "leader" if leads else "standby"

    def may_send(self) -> bool:
        """Whether this replica may send a notification this instant."""
        return self.leadership is None or self.leadership.holds()

    def _provider_status(self) -> dict[str, Any]:
        return self.term.provider_status() if self.term is not None else {}

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
        rules = await reload_rules(self.config, self.telemetry)
        if rules is None:
            return
        self.rules = rules
        if self.term is not None:
            self.term.set_rules(rules)
        self.telemetry.declare((), (), [r.name for r in rules])
        log.info("rules reloaded", rules=len(rules))

    async def run(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Run until `stopping` is set; then stop polling, let sends finish, close the store.

        With a shared store (PostgreSQL), this replica leads only while it holds the lease and
        stands by otherwise. `exit_code` is 3 afterwards when the daemon stopped because it
        could not work.
        """
        config = self.config
        on_ready = self.process.ready(on_ready)
        self.telemetry.declare(
            [p.name for p in config.providers],
            list(config.notifiers),
            [r.name for r in self.rules],
            provider_series=config.provider_series,
        )
        app = http_app(
            config,
            self.registry,
            self.readiness,
            self.telemetry,
            store=lambda: self.store,
            rules=lambda: [r.name for r in self.rules],
            overview=self._overview,
            wake_intake=self._wake_intake,
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
            self.process.release()
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
                always.start_soon(self._check_config, self._check)
            start(always, "watchdog", watchdog.run, period=TICK_SECONDS + STORE_SLACK)
            self.process.start(self.supervisor, always)
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

    async def _check_config(self, check: Callable[[], None]) -> None:
        """The check left for after start-up: what it raises stops the daemon (`run` too)."""
        try:
            await anyio.to_thread.run_sync(check)
        except Exception as exc:
            self._config_error = exc
            self.stopping.set()
        finally:
            self._checked.set()

    async def _check_passed(self) -> bool:
        await self._checked.wait()  # the config's check is done: did it pass?
        return self._config_error is None

    def _leading(self, leading: bool) -> None:
        self.telemetry.leader.set(1 if leading else 0)

    def _overview(self) -> dict[str, Any]:
        """What only this process knows: its role, its providers' health, the doors it saw, how
        long its event loop was held lately."""
        doors = self.term.doors() if self.term is not None else []
        return {
            "role": self.role,
            "providers": self._provider_status(),
            "doors": doors,
            "event_loop": self.process.overview(),
        }

    def _wake_intake(self) -> None:
        if self.term is not None:
            self.term.wake_intake()

    def _notified(self, topic: str) -> None:
        """Another process changed the shared store: look at it now, not at the next tick."""
        if topic == "lease" and self.leadership is not None:
            self.leadership.nudge()
        elif self.term is not None:
            self.term.notified(topic)

    async def _run(self, store: Store, on_ready: Callable[[], None] | None) -> None:
        """The leader's work, from the stored state: poll, decide, send, until `stopping`. A
        store that fails while that state is loaded is tried again every second (the watchdog
        says when it has failed too long), never an exception out of the daemon."""
        failures = 0
        while not self.stopping.is_set():
            term = self.term = Term(
                self.config,
                store,
                self.telemetry,
                self.supervisor,
                self.rules,
                retry=self.retry,
                recorder=self.recorder,
                may_send=self.may_send,
                checked=self._check_passed,
            )
            try:
                await term.run(self.stopping, on_ready)
                return
            except StoreError as exc:
                failures += 1
                if failures == 1:
                    log.error(
                        "the store failed as the leader's work started; retrying", error=str(exc)
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), TICK_SECONDS)
            finally:
                self.term = None  # a standby keeps nothing of the leader's work

    def _give_up(self, problems: list[str]) -> None:
        self.exit_code = EXIT_UNHEALTHY
        self.stopping.set()


def install_signals(daemon: Daemon) -> None:
    """SIGTERM/SIGINT stop gracefully; SIGHUP reloads rules."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
