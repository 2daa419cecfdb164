"""Keyed time windows: `threshold` (fire once when N events fall within a time) and `throttle`
(at most one alert per key per period, the next one saying how many were held back)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.model import Event, StateKey
from monitor.rules.match import Rule, by_key
from monitor.rules.run import Run
from monitor.rules.state import Throttle, Window


def threshold(run: Run, rule: Rule, event: Event) -> tuple[int, bool]:
    """The count in the window with this event, and whether it reaches the threshold now."""
    spec = rule.threshold
    assert spec is not None
    key = _key(StateKey, (rule.name, "threshold", by_key(spec.by, event)))
    state = run.step.get(key, Window)
    at = event.at.timestamp()
    if state is None:
        times, fired = [at], False
    else:
        since = at - spec.seconds
        times = [t for t in state.times if t > since]
        times.append(at)
        if len(times) > spec.count * 4:
            del times[: -spec.count * 4]
        fired = state.fired
    count = len(times)
    reached = count >= spec.count
    run.step.put(key, Window(times, reached))
    return count, reached and not fired


_key: Any = tuple.__new__
"""`StateKey(...)` without the named tuple's Python-level constructor (on every event a
threshold rule matches)."""


def throttle(run: Run, rule: Rule, event: Event) -> tuple[int, datetime] | None:
    """None when the alert is held back (and counted); else how many were held back before
    it, and since when."""
    spec = rule.throttle
    assert spec is not None
    key = StateKey(rule.name, "throttle", by_key(spec.by, event))
    state = run.step.get(key, Throttle)
    now = run.now.timestamp()
    if state is not None and now - state.last < spec.seconds:
        run.step.put(key, Throttle(state.last, state.suppressed + 1))
        return None
    run.step.put(key, Throttle(now))
    if state is None:
        return 0, run.now
    return state.suppressed, datetime.fromtimestamp(state.last, UTC)


def expire(run: Run, rules: dict[str, Rule], stamp: float) -> None:
    """Forget threshold windows that have emptied."""
    for key, state in list(run.step.of_kind("threshold")):
        rule = rules.get(key.rule)
        if rule is None or rule.threshold is None or not isinstance(state, Window):
            continue
        if not state.times or state.times[-1] <= stamp - rule.threshold.seconds:
            run.step.delete(key)
