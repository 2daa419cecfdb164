"""`threshold: {count, within, by}`: the rule fires once when `count` matching events fall
within `within` (per `by` key), then not again for the same burst; its state is each key's
recent event times."""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any

import msgspec
from pydantic import Field

from monitor.model import StateKey
from monitor.rules.match import Rule, by_key
from monitor.rules.spec import Fragment, Model
from monitor.rules.stages.base import Passage, Reason, Rules, Stop
from monitor.text.units import Duration

name = "threshold"


class Threshold(Model):
    """Fire once when `count` matching events fall within `within` (per `by` key)."""

    count: int = Field(ge=1)
    within: Duration
    by: list[str] = Field(default_factory=list)


class Fields(Fragment):
    threshold: Threshold | None = None


class Window(msgspec.Struct):
    """A `threshold`'s recent event times, and whether it fired for this burst."""

    times: list[float]
    fired: bool = False


KINDS = {"threshold": Window}
_key: Any = tuple.__new__
"""`StateKey(...)` without the named tuple's Python-level constructor (on every event a
threshold rule matches)."""


def applies(rule: Rule) -> bool:
    return rule.threshold is not None


def passes(run: Any, passage: Passage) -> Stop | None:
    rule, event = passage.rule, passage.event
    spec = rule.threshold
    assert spec is not None
    key = _key(StateKey, (rule.name, "threshold", by_key(spec.by, event)))
    state = run.step.get(key, Window)
    at = event.at.timestamp()
    if state is None:
        times, fired = [at], False
    else:
        # The times are kept in order (an event may come late): the window starts past the
        # last time that is too old.
        times = state.times[bisect_right(state.times, at - spec.seconds) :]
        insort(times, at)
        if len(times) > spec.count * 4:
            del times[: -spec.count * 4]
        fired = state.fired
    count = len(times)
    reached = count >= spec.count
    run.step.put(key, Window(times, reached))
    if not reached or fired:
        return (BELOW, f"{count}{spec.text}", None)
    passage.context = {"count": count}
    return None


def tick(run: Any, rules: Rules) -> None:
    """Forget windows that have emptied."""
    stamp = run.now.timestamp()
    for key, state in list(run.step.of_kind("threshold")):
        rule = rules.get(key.rule)
        if rule is None or rule.threshold is None or not isinstance(state, Window):
            continue
        if not state.times or state.times[-1] <= stamp - rule.threshold.seconds:
            run.step.delete(key)


BELOW = Reason.BELOW
