"""`for:` timers and `resolve:` follow-ups: a state held long enough, and a state left."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from datetime import UTC, datetime

from monitor.model import Event, EventKind, Severity, StateKey
from monitor.rules import batches, stages
from monitor.rules.match import Rule
from monitor.rules.run import Run, subject
from monitor.rules.state import Firing, Item, Timer
from monitor.rules.templates import localtime


def start(run: Run, rule: Rule, event: Event) -> None:
    """Start the rule's timer for the event's subject (once: a running timer keeps going)."""
    assert rule.hold_for is not None
    key = StateKey(rule.name, "timer", subject(event))
    if run.step.get(key, Timer) is None:
        run.step.put(key, Timer(event.at.timestamp() + rule.hold_for, event))


def leave(run: Run, watchers: Sequence[Rule], event: Event) -> None:
    """Cancel the timers, and resolve the alerts, of a subject that left a watched state."""
    if not watchers or event.kind is EventKind.TIMER:
        return
    who = subject(event)
    for rule in watchers:
        if rule.states is None or event.to_state in rule.states:
            continue
        run.step.delete(StateKey(rule.name, "timer", who))
        stages.leave(run, rule, who)
        key = StateKey(rule.name, "firing", who)
        held = run.step.get(key, Firing)
        if held is not None and rule.resolve:
            run.step.delete(key)
            item = Item(
                key=f"{rule.name}|resolve|{who}|{event.at.timestamp():.3f}",
                title=f"Resolved: {held.title}",
                body=f"{event.to_state} at {localtime(event.at, run.zone)}",
                at=event.at.timestamp(),
                provider=event.provider,
                severity=Severity.INFO.value,
            )
            batches.deliver(run, rule, item)


def fire_due(
    run: Run,
    rules: Mapping[str, Rule],
    down: Container[str],
    polled: Mapping[str, float] | None,
) -> None:
    """Fire the timers that are due.

    A timer about a call or a door fires only once its provider has answered a poll made after
    the timer was due (`polled`: provider → time of its last successful poll, when known), and
    never while the provider is `down`: only then is it known that the call is still ringing, or
    the door still offline. Timers about provider health need no poll.
    """
    stamp = run.now.timestamp()
    for key, timer in list(run.step.of_kind("timer")):
        rule = rules.get(key.rule)
        if rule is None or not isinstance(timer, Timer) or timer.due > stamp:
            continue
        event = timer.event
        if event.kind is not EventKind.PROVIDER:
            if event.provider in down:
                continue  # source health first: decide once the provider answers again
            if polled is not None and polled.get(event.provider, 0.0) < timer.due:
                continue  # not yet seen after the deadline: it may have changed meanwhile
        run.step.delete(key)
        fired = Event(
            kind=EventKind.TIMER,
            provider=event.provider,
            provider_type=event.provider_type,
            from_state=event.to_state,
            to_state=event.to_state,
            at=datetime.fromtimestamp(timer.due, UTC),
            call=event.call,
            intercom=event.intercom,
            reason=event.reason,
        )
        stages.fire(run, rule, fired)
