"""`throttle: {every, by}`: at most one alert per `by` key per `every`; the next one says how
many were held back since. Its state is each key's last alert and the count held back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from pydantic import Field

from monitor.model import StateKey
from monitor.rules.match import Rule, by_key
from monitor.rules.spec import Fragment, Model
from monitor.rules.stages.base import Passage, Reason, Stop
from monitor.rules.templates import localtime
from monitor.text.units import Duration

name = "throttle"


class Throttle(Model):
    """At most one alert per `by` key per `every`; the next one says how many were held back."""

    every: Duration
    by: list[str] = Field(default_factory=list)


class Fields(Fragment):
    throttle: Throttle | None = None


class Held(msgspec.Struct):
    """When a `throttle` last let an alert through, and how many it held back since."""

    last: float
    suppressed: int = 0


KINDS = {"throttle": Held}


def applies(rule: Rule) -> bool:
    return rule.throttle is not None


def passes(run: Any, passage: Passage) -> Stop | None:
    rule = passage.rule
    spec = rule.throttle
    assert spec is not None
    key = StateKey(rule.name, "throttle", by_key(spec.by, passage.event))
    state = run.step.get(key, Held)
    now = run.now.timestamp()
    if state is not None and now - state.last < spec.seconds:
        run.step.put(key, Held(state.last, state.suppressed + 1))
        return (THROTTLED, spec.text, None)
    run.step.put(key, Held(now))
    if state is not None and state.suppressed:
        since = localtime(datetime.fromtimestamp(state.last, UTC), run.zone)
        note = f"({state.suppressed} more like this held back since {since})"
        passage.notes = [*(passage.notes or ()), note]
    return None


THROTTLED = Reason.THROTTLED
