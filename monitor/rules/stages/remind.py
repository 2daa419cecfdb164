"""`remind: 1h` (with `for:`, on a state held: a door offline, a provider down): the alert is
sent again every interval for as long as the state still holds, each reminder saying how long
it has, until it clears (then the resolve, with `resolve: true`). A reminder is a timer in the
store, as `for:` is: a restart neither skips nor repeats one; and like `for:`, a reminder about
a call or a door goes out only once a poll after its time still saw the state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from pydantic import Field, model_validator

from monitor.model import Event, EventKind, StateKey
from monitor.rules.match import Rule
from monitor.rules.run import subject
from monitor.rules.spec import Fragment
from monitor.rules.stages.base import Passage, Rules, Stop
from monitor.text.units import Duration

name = "remind"


class Fields(Fragment):
    remind: Duration | None = Field(
        None, description="With `for:`: send the alert again this often while the state holds"
    )

    @model_validator(mode="after")
    def _on_a_state_held(self) -> Any:
        if self.remind is not None and getattr(self, "for_", None) is None:
            raise ValueError("remind: needs for: (it reminds of a state held that long)")
        return self


class Reminder(msgspec.Struct):
    """The next reminder of a state held: when, about which event, since when it holds."""

    due: float
    event: Event
    since: float


KINDS = {"remind": Reminder}


def compile(spec: Any) -> float | None:
    """The rule's reminder interval, in seconds."""
    every: float | None = spec.remind
    return every


def applies(rule: Rule) -> bool:
    return rule.options.get(name) is not None


def passes(run: Any, passage: Passage) -> Stop | None:
    """An alert of a state held (a `for:` timer, or a reminder) arms the next reminder."""
    event = passage.event
    if event.kind is not EventKind.TIMER:
        return None
    rule = passage.rule
    at = event.at.timestamp()
    since = passage.since if passage.since is not None else at - (rule.hold_for or 0.0)
    key = StateKey(rule.name, "remind", subject(event))
    run.step.put(key, Reminder(at + rule.options[name], event, since))
    return None


def tick(run: Any, rules: Rules) -> None:
    """Send the reminders that are due, if their state still holds (see `timers.fire_due`)."""
    from monitor.rules.stages import fire

    stamp = run.now.timestamp()
    for key, reminder in list(run.step.of_kind("remind")):
        rule = rules.get(key.rule)
        if rule is None or not isinstance(reminder, Reminder) or reminder.due > stamp:
            continue
        event = reminder.event
        if event.kind is not EventKind.PROVIDER and not _seen_since(run, event, reminder.due):
            continue
        again = msgspec.structs.replace(event, at=datetime.fromtimestamp(reminder.due, UTC))
        fire(run, rule, again, since=reminder.since)


def _seen_since(run: Any, event: Event, due: float) -> bool:
    """Whether a poll made after `due` still saw the subject (its provider is up)."""
    if event.provider in run.down:
        return False
    return run.polled is None or run.polled.get(event.provider, 0.0) >= due


def leave(run: Any, rule: Rule, who: str) -> None:
    """The state cleared: no more reminders."""
    run.step.delete(StateKey(rule.name, "remind", who))
