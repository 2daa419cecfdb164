"""From a poll's result to stored state and queued notifications, in one transaction.

diff (tracker, pure) → rules (engine, pure) → commit (store) → apply to memory → metrics → wake the
delivery workers. Memory changes only after the store has committed, so a crash at any point
replays the same poll, and the outbox's idempotency keys drop what was already queued.

Each step (a poll, a health change, a clock tick) holds one lock from the decision to the apply:
the store's calls yield to the event loop, and two steps deciding on the same rule state at once
would each commit a change made without the other's. What the engine reads besides its state
(silences, door timetables) is the pipeline's to hold and pass in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container, Iterable, Mapping, Sequence
from datetime import datetime

import anyio
import msgspec
import structlog

from monitor.model import (
    Alert,
    CallState,
    Event,
    EventKind,
    PollResult,
    Silence,
    StateKey,
)
from monitor.rules.engine import Engine
from monitor.rules.match import Rule
from monitor.rules.run import TIMETABLE, Outcome
from monitor.rules.schedule import Schedule, from_timetable
from monitor.rules.silence import Silencer
from monitor.rules.state import State, encode_changes
from monitor.store.base import CallChanges, Changes, Delivery, StoreError
from monitor.store.ports import Steps
from monitor.telemetry import OTHER, Telemetry
from monitor.text.redaction import redactor
from monitor.tracking.calls_seen import observe_call, tally
from monitor.tracking.decisions import decisions
from monitor.tracking.tracker import Diff, Tracker

log = structlog.get_logger("monitor.tracking.pipeline")


EventSink = Callable[[Event, bool], None]
"""Called with every event and whether it came in a backlog (the recorder is one)."""


class Pipeline:
    """Turns poll results, health changes and clock ticks into stored state and outbox entries."""

    def __init__(
        self,
        store: Steps,
        telemetry: Telemetry,
        engine: Engine,
        targets: Mapping[str, int],
        *,
        wake: Callable[[str], None] = lambda notifier: None,
        sinks: Iterable[EventSink] = (),
        redact: Callable[[str], str] = redactor.redact,
    ) -> None:
        self.store = store
        self.telemetry = telemetry
        self.engine = engine
        self._targets = dict(targets)
        self._wake = wake
        self._sinks = list(sinks)
        self._redact = redact
        self._step = anyio.Lock()
        self._unkept: set[str] = set()
        """Providers whose last write failed: logged once per run of failures."""
        self._silencer = Silencer()
        self._timetables: dict[tuple[str, int], Schedule] = {}
        self._unstored: dict[StateKey, State | None] = {}
        """Rule-state changes decided outside a step (rules removed), stored with the next."""

    # --- what is in force

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Put rules in force; the state of removed or changed rules is dropped with the next
        commit."""
        self._unstored.update(self.engine.set_rules(rules).changes)

    def drop_orphans(self) -> None:
        """Drop, with the next commit, the stored state of rules no longer in force."""
        self._unstored.update(self.engine.orphans().changes)

    def use_silences(self, silences: Iterable[Silence]) -> None:
        """The silences in force from now on."""
        self._silencer = Silencer(silences)

    # --- the steps

    def callbacks(
        self, tracker: Tracker
    ) -> tuple[
        Callable[[PollResult, datetime, bool], Awaitable[bool]],
        Callable[[Event, datetime], Awaitable[bool]],
    ]:
        """What a poller of the tracker's provider hands its results and health changes to:
        each says False when the store failed (the poller then tries again later)."""
        provider = tracker.provider

        async def on_result(result: PollResult, now: datetime, backlog: bool) -> bool:
            step = self.process(tracker, result, now, backlog=backlog)
            return await self._kept(step, provider, "the poll will be repeated")

        async def on_health(event: Event, now: datetime) -> bool:
            step = self.emit([event], now)
            return await self._kept(step, provider, "the health change is stored later")

        return on_result, on_health

    def deliveries(self, alerts: Iterable[Alert]) -> list[Delivery]:
        """One delivery per alert per apprise URL of its notifier, with every secret removed
        from its text (a template may quote what a provider echoed)."""
        redact = self._redact
        return [
            Delivery(
                msgspec.structs.replace(alert, title=redact(alert.title), body=redact(alert.body)),
                target,
            )
            for alert in alerts
            for target in range(self._targets.get(alert.notifier, 0))
        ]

    async def _kept(self, step: Awaitable[object], provider: str, retry: str) -> bool:
        """Whether the step was stored; a store failure is logged (once until a write of that
        provider succeeds again), and the caller retries."""
        try:
            await step
        except StoreError as exc:
            if provider not in self._unkept:
                self._unkept.add(provider)
                log.error(f"store write failed; {retry}", provider=provider, error=str(exc))
            else:
                log.debug(f"store write failed; {retry}", provider=provider, error=str(exc))
            return False
        if provider in self._unkept:
            self._unkept.discard(provider)
            log.info("store write succeeded again", provider=provider)
        return True

    async def process(
        self,
        tracker: Tracker,
        result: PollResult,
        now: datetime,
        *,
        backlog: bool = False,
        pushes: Sequence[int] = (),
    ) -> Diff:
        """Diff a poll (or a push) against the tracker, decide alerts, commit, then update memory.

        `backlog` (the first poll after an outage) sums up each rule's call alerts in one message;
        `pushes` are the stored pushes this step applies, deleted in its transaction.
        """
        async with self._step:
            diff = tracker.diff(result, now)
            outcome = self.engine.process(
                diff.events,
                now,
                backlog=backlog,
                silencer=self._silencer,
                timetables=self._timetables,
            )
            calls = None
            if not tracker.stores_nothing(diff):
                calls = CallChanges(tracker.provider, diff.upserts, diff.deletes, diff.stored())
            queued = await self._commit(outcome, calls, pushes, diff.events)
            tracker.apply(diff)
            self._learn_timetables(tracker.provider, result)
        if diff.baseline:
            log.info(
                "baseline taken",
                provider=tracker.provider,
                calls=len(diff.upserts),
                alerted=len(diff.events),
            )
        if result.skipped:
            label = self.telemetry.provider(tracker.provider)
            self.telemetry.records_skipped.labels(label).inc(result.skipped)
        if diff.delays and not diff.baseline:
            label = self.telemetry.provider(tracker.provider)
            detection = self.telemetry.detection_seconds.labels(label, result.via)
            for delay in diff.delays:
                detection.observe(delay)
        self._observe(tracker, diff.events, outcome, queued, backlog)
        return diff

    async def forget_pushes(self, pushes: Sequence[int]) -> None:
        """Delete stored pushes that cannot be applied (each was logged)."""
        async with self._step:
            await self._commit(Outcome(), None, pushes)

    async def emit(self, events: Sequence[Event], now: datetime) -> None:
        """Evaluate and store events that change no tracked call (provider health)."""
        async with self._step:
            outcome = self.engine.process(
                events, now, silencer=self._silencer, timetables=self._timetables
            )
            queued = await self._commit(outcome, events=events)
        self._observe(None, events, outcome, queued)

    async def tick(
        self,
        now: datetime,
        down: Container[str] = frozenset(),
        polled: Mapping[str, float] | None = None,
    ) -> None:
        """Fire due timers and flush due groups and digests (see `Engine.tick`); store what a
        rule reload left to store."""
        async with self._step:
            outcome = self.engine.tick(
                now, down, polled, silencer=self._silencer, timetables=self._timetables
            )
            if not outcome and not self._unstored:
                return
            queued = await self._commit(outcome)
        self._observe(None, (), outcome, queued)

    async def _commit(
        self,
        outcome: Outcome,
        calls: CallChanges | None = None,
        pushes: Sequence[int] = (),
        events: Sequence[Event] = (),
    ) -> int:
        """Store the outcome (with the rule changes decided outside a step), the calls and the
        decision record in one transaction, then apply it to the engine; on failure nothing
        changes."""
        rules = {**self._unstored, **outcome.changes}
        queued = 0
        changes = Changes(
            calls,
            encode_changes(rules),
            self.deliveries(outcome.alerts),
            pushes,
            decisions(events, outcome),
            tally(events),
        )
        if changes:
            queued = await self.store.commit(changes)
        self._unstored.clear()
        self.engine.apply(Outcome(changes=rules))
        return queued

    def _learn_timetables(self, provider: str, result: PollResult) -> None:
        """Keep each door's timetable, when a rule in force reads them (`intercom-timetable`):
        ten thousand doors' timetables are tens of MiB nobody else needs."""
        if not any(TIMETABLE in (r.during, r.outside) for r in self.engine.rules):
            return
        for door in result.intercoms:
            if door.timetable:
                schedule = from_timetable(door.timetable, self.engine.zone)
                if schedule is not None:
                    self._timetables[(provider, door.id)] = schedule

    def _observe(
        self,
        tracker: Tracker | None,
        events: Sequence[Event],
        outcome: Outcome,
        queued: int,
        backlog: bool = False,
    ) -> None:
        t = self.telemetry
        for event in events:
            for sink in self._sinks:
                sink(event, backlog)
            if event.kind is EventKind.TRANSITION and event.call is not None:
                observe_call(self.telemetry, event)
        if tracker is not None:
            counts = tracker.active_counts()
            for state in (CallState.RINGING, CallState.ANSWERED):
                t.set_active(tracker.provider, state.value, counts.get(state, 0))
            for door, online in tracker.intercoms.items():
                label = t.door(tracker.provider, door)
                if label != OTHER:
                    t.intercom_online.labels(tracker.provider, label).set(1 if online else 0)
        for rule in outcome.fired:
            t.rule_fired.labels(rule).inc()
        for rule in outcome.silenced:
            t.silenced.labels(rule).inc()
        for rule, problem in outcome.errors:
            t.rule_errors.labels(rule).inc()
            log.warning("rule template failed; a fallback text is sent", rule=rule, problem=problem)
        if queued:
            for notifier in {alert.notifier for alert in outcome.alerts}:
                self._wake(notifier)
