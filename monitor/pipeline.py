"""From a poll's result to stored state and queued notifications, in one transaction.

diff (tracker, pure) → rules (engine, pure) → commit (store) → apply to memory → metrics → wake the
delivery workers. Memory changes only after the store has committed, so a crash at any point
replays the same poll, and the outbox's idempotency keys drop what was already queued.

Each step (a poll, a health change, a clock tick) holds one lock from the decision to the apply:
the store's calls yield to the event loop, and two steps deciding on the same rule state at once
would each commit a change made without the other's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio
import msgspec
import structlog

from monitor.model import TERMINAL_STATES, Alert, CallState, Event, EventKind
from monitor.providers.base import PollResult
from monitor.redaction import redactor
from monitor.rules.engine import Engine, Outcome
from monitor.store.base import Delivery, Store
from monitor.telemetry import Telemetry
from monitor.tracker import Diff, Tracker

log = structlog.get_logger("monitor.pipeline")

TERMINAL = frozenset(s.value for s in TERMINAL_STATES)

EventSink = Callable[[Event, bool], None]
"""Called with every event and whether it came in a backlog (the recorder is one)."""


class Pipeline:
    """Turns poll results, health changes and clock ticks into stored state and outbox entries."""

    def __init__(
        self,
        store: Store,
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

    async def process(
        self, tracker: Tracker, result: PollResult, now: datetime, *, backlog: bool = False
    ) -> Diff:
        """Diff a poll against the tracker, decide alerts, commit, then update memory.

        `backlog` (the first poll after an outage) sums up each rule's call alerts in one message.
        """
        async with self._step:
            return await self._process(tracker, result, now, backlog)

    async def _process(
        self, tracker: Tracker, result: PollResult, now: datetime, backlog: bool
    ) -> Diff:
        diff = tracker.diff(result, now)
        if result.intercoms:
            self.engine.update_timetables(tracker.provider, result.intercoms)
        outcome = self.engine.process(diff.events, now, backlog=backlog)
        queued = await self.store.commit(
            tracker.provider, diff, diff.stored(), self.deliveries(outcome.alerts), outcome.changes
        )
        tracker.apply(diff)
        self.engine.apply(outcome)
        if diff.baseline:
            log.info(
                "baseline taken",
                provider=tracker.provider,
                calls=len(diff.upserts),
                alerted=len(diff.events),
            )
        if result.skipped:
            self.telemetry.records_skipped.labels(tracker.provider).inc(result.skipped)
        self._observe(tracker, diff.events, outcome, queued, backlog)
        return diff

    async def emit(self, events: Sequence[Event], now: datetime) -> None:
        """Evaluate and store events that change no tracked call (provider health)."""
        async with self._step:
            await self._commit_outcome(self.engine.process(events, now), events)

    async def tick(
        self,
        now: datetime,
        down: frozenset[str] = frozenset(),
        polled: Mapping[str, float] | None = None,
    ) -> None:
        """Fire due timers and flush due groups and digests (see `Engine.tick`)."""
        async with self._step:
            outcome = self.engine.tick(now, down, polled)
            if outcome:
                await self._commit_outcome(outcome, ())

    async def commit_rule_changes(self, changes: Mapping[Any, Any]) -> None:
        """Store and apply rule-state changes that no event caused (state of removed rules)."""
        async with self._step:
            await self.store.commit_rules(changes, [])
            self.engine.state.apply(changes)

    async def _commit_outcome(self, outcome: Outcome, events: Sequence[Event]) -> None:
        queued = 0
        if outcome:
            queued = await self.store.commit_rules(outcome.changes, self.deliveries(outcome.alerts))
            self.engine.apply(outcome)
        self._observe(None, events, outcome, queued)

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
            if event.kind is not EventKind.TRANSITION or event.call is None:
                continue
            t.transitions.labels(event.provider, event.from_state or "none", event.to_state).inc()
            call, to = event.call, event.to_state
            ring = call.ring_seconds
            # The ring ends once per call: when answered, or at an unanswered end; a call first
            # seen already over (every CINNOX record) rang too, by the provider's own times.
            if ring is not None:
                if to == CallState.ANSWERED or (to == CallState.ENDED and event.from_state is None):
                    t.ring_seconds.labels(event.provider, "answered").observe(ring)
                elif to in ("missed", "rejected", "failed"):
                    t.ring_seconds.labels(event.provider, to).observe(ring)
            if to == CallState.ENDED and call.talk_seconds is not None:
                t.talk_seconds.labels(event.provider).observe(call.talk_seconds)
            if call.intercom is not None and to in TERMINAL:
                result = "answered" if to == CallState.ENDED else to
                door = t.door(event.provider, str(call.intercom.id))
                t.intercom_calls.labels(event.provider, door, result).inc()
        if tracker is not None:
            counts = tracker.active_counts()
            for state in (CallState.RINGING, CallState.ANSWERED):
                t.calls_active.labels(tracker.provider, state.value).set(counts.get(state, 0))
            for door, online in tracker.intercoms.items():
                label = t.door(tracker.provider, door)
                if label != "other":
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
