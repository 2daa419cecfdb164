"""A rule's options as stages, in the order an event that matched passes them (as
Alertmanager's notify stages share one signature in a list): the schedule gate, `threshold`,
silences (and the count of firings), `throttle`, `remind`, and the alert itself. Each stage is one
module holding its part of the rule schema, its state, its logic and its reason to stop an
event (`base`); a new rule option is one module here plus its line in `STAGES`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.model import Event
from monitor.rules import state
from monitor.rules.match import Rule
from monitor.rules.run import Verdict
from monitor.rules.stages import alert, gate, remind, silence, threshold, throttle
from monitor.rules.stages.base import Passage, Reason, Rules, Stage, Stop

STAGES: list[Any] = [gate, threshold, silence, throttle, remind, alert]
"""Every stage, in order (modules, each a `Stage`)."""

for _stage in STAGES:
    state.register(getattr(_stage, "KINDS", {}))

__all__ = ["STAGES", "Passage", "Reason", "Stage", "Stop", "fire", "leave", "tick"]


def of(rule: Rule) -> tuple[Callable[[Any, Passage], Stop | None], ...]:
    """The `passes` of each stage `rule` uses, in order (compiled once, with the rule)."""
    return tuple(stage.passes for stage in STAGES if stage.applies(rule))


def fire(run: Any, rule: Rule, event: Event, *, since: float | None = None) -> None:
    """Take the event through the rule's stages until one stops it (the last, the alert, always
    does); the reason is the rule's verdict on it."""
    passage = Passage(rule, event, None, None, since)
    for passes in rule.stages:
        stop = passes(run, passage)
        if stop is not None:
            run.out.verdicts.append(Verdict(event, rule.name, stop[0], stop[1], stop[2]))
            return


def tick(run: Any, rules: Rules) -> None:
    """What each stage does on the clock (forget emptied windows, send due reminders)."""
    for stage in STAGES:
        if (on_tick := getattr(stage, "tick", None)) is not None:
            on_tick(run, rules)


def leave(run: Any, rule: Rule, who: str) -> None:
    """A subject left the state a rule watches: each stage forgets what it kept about it."""
    for stage in STAGES:
        if (on_leave := getattr(stage, "leave", None)) is not None:
            on_leave(run, rule, who)
