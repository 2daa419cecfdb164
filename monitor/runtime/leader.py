"""One term of the leader's work: from the stored state, the pipeline, the delivery workers,
a poller per provider and the kept pushes' intake, every loop under the supervisor, until the
daemon stops or the lease is lost. A term owns what it built: a replica that steps down keeps
nothing of it (its page shows no provider or door as it last led them)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import anyio
import anyio.to_thread
import structlog

from monitor import sources as providers
from monitor.config import Config
from monitor.delivery.drain import drain
from monitor.delivery.sender import Sender, warm_up
from monitor.delivery.worker import IDLE_CHECK, RetryPolicy, Worker
from monitor.rules.match import Rule
from monitor.rules.state import RuleState
from monitor.runtime.build import build_engine
from monitor.runtime.loops import TICK_SECONDS, RuleClock
from monitor.runtime.supervisor import Supervisor
from monitor.sources.base import Provider
from monitor.sources.poller import Down, Polled, Poller
from monitor.sources.settings import ProviderSettings
from monitor.store import Store
from monitor.telemetry import Telemetry
from monitor.telemetry.heartbeat import STORE_SLACK
from monitor.tracking.pipeline import Pipeline
from monitor.tracking.pushes import LOOK_AGAIN, PushIntake
from monitor.tracking.recorder import Recorder
from monitor.tracking.tracker import Tracker

log = structlog.get_logger("monitor.runtime.leader")


START_BATCH = 250
"""Pollers started between two turns of the event loop."""


class Term:
    """The leader's work for as long as this replica leads (one process: for its whole run)."""

    def __init__(
        self,
        config: Config,
        store: Store,
        telemetry: Telemetry,
        supervisor: Supervisor,
        rules: Sequence[Rule],
        *,
        retry: RetryPolicy,
        recorder: Recorder | None,
        may_send: Callable[[], bool],
        checked: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.telemetry = telemetry
        self.supervisor = supervisor
        self.rules = list(rules)
        self.retry = retry
        self.recorder = recorder
        self.may_send = may_send
        self.checked = checked
        """Awaited before anything is sent: whether the config's check left for after start-up
        passed (its notifier URLs, which apprise reads once it has found its plugins, 0.15 s);
        when it did not, the daemon stops, and nothing is sent."""
        self.pollers: list[Poller] = []
        self.workers: dict[str, list[Worker]] = {}
        self.pipeline: Pipeline | None = None
        self._push_targets: dict[str, tuple[Tracker, Provider]] = {}
        self._intake: PushIntake | None = None
        self._clock_loop: RuleClock | None = None

    # --- what the daemon asks of the term

    def provider_status(self) -> dict[str, Any]:
        """Each provider's health as `/readyz`, the page and the API show it."""
        return {
            p.settings.name: {
                "up": p.up,
                "last_success": p.last_success.isoformat() if p.last_success else None,
                **({"error": p.last_error} if p.last_error else {}),
                **({"rechecks_waiting": p.behind} if p.behind else {}),
            }
            for p in self.pollers
        }

    def doors(self) -> list[tuple[str, Any, bool]]:
        """(provider, door, online) of every door the trackers know."""
        return [
            (name, door, online)
            for name, (tracker, _) in self._push_targets.items()
            for door, online in sorted(tracker.intercoms.items())
        ]

    def set_rules(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        if self.pipeline is not None:
            self.pipeline.set_rules(self.rules)

    def notified(self, topic: str) -> None:
        """Another process changed the shared store: look at it now, not at the next tick."""
        if topic == "outbox":
            for workers in self.workers.values():
                for worker in workers:
                    worker.wake()
        elif topic == "silences" and self._clock_loop is not None:
            self._clock_loop.wake()
        elif topic == "pushes":
            self.wake_intake()

    def wake_intake(self) -> None:
        if self._intake is not None:
            self._intake.wake()

    def _wake(self, notifier: str) -> None:
        for worker in self.workers.get(notifier, ()):
            worker.wake()

    # --- the work

    async def run(self, stopping: asyncio.Event, on_ready: Callable[[], None] | None) -> None:
        """Load the stored state, build the pollers, and run every loop (the senders once the
        config's check has passed)."""
        config, store = self.config, self.store
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
            await self._supervise(store, stopping, on_ready)

    def _build_workers(self, store: Store) -> None:
        for name, notifier in self.config.notifiers.items():
            policy = RetryPolicy(self.retry.first, min(self.retry.cap, notifier.retry_max))
            self.workers[name] = [
                Worker(
                    name,
                    i,
                    Sender(
                        url.get_secret_value(),
                        timeout=notifier.timeout,
                        external_url=self.config.external_url,
                    ),
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

    async def _supervise(
        self, store: Store, stopping: asyncio.Event, on_ready: Callable[[], None] | None
    ) -> None:
        """Every loop of the leader under the supervisor; on stop, polling ends first, then
        delivery drains. Cancelled (the lease lost), it stops at once."""
        assert self.pipeline is not None
        start = self.supervisor.start
        by_name = {p.settings.name: p for p in self.pollers}
        health = Down(by_name), Polled(by_name)  # live views: asked about one provider
        clock = self._clock_loop = RuleClock(
            self.pipeline,
            store,
            self.telemetry,
            list(self.config.notifiers),
            lambda: health,
            _decisions_retention=self.config.decisions_retention,
        )
        names: list[str] = []
        sending: list[Worker] = []

        async def deliver() -> None:
            """Once the config's check passed, with apprise's plugins loaded off the event loop
            (0.16 s, after ready), the senders."""
            if self.checked is not None and not await self.checked():
                return
            await anyio.to_thread.run_sync(warm_up)
            self._build_workers(store)
            for worker in (w for ws in self.workers.values() for w in ws):
                period = IDLE_CHECK + worker.timeout + STORE_SLACK
                name = f"send:{worker.notifier}:{worker.target}"
                names.append(start(delivery, name, worker.run, period=period).name)
                sending.append(worker)

        try:
            async with anyio.create_task_group() as delivery:
                delivery.start_soon(deliver)
                async with anyio.create_task_group() as intake:
                    for i, poller in enumerate(self.pollers, 1):
                        name = f"poll:{poller.settings.name}"
                        names.append(start(intake, name, poller.run, period=poller.period).name)
                        if i % START_BATCH == 0:
                            await asyncio.sleep(0)  # 10,000 at once held the loop 130 ms
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
                        notifiers=len(self.config.notifiers),
                        listen=self.config.listen,
                    )
                    if on_ready is not None:
                        on_ready()
                    await stopping.wait()
                    intake.cancel_scope.cancel()
                await drain(store, sending, self.config.shutdown_grace)
                delivery.cancel_scope.cancel()
        finally:
            # A standby has none of these loops: nothing to report about them.
            self.supervisor.forget(names)
