"""A call's transition in the metrics (counts, ring and talk times, per-door outcomes) and in
the page's hourly history."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.model import TERMINAL_STATES, CallState, Event
from monitor.store.base import Tally
from monitor.telemetry import OTHER, Telemetry

TERMINAL = frozenset(s.value for s in TERMINAL_STATES)


def observe_call(telemetry: Telemetry, event: Event) -> None:
    """A call's transition in the metrics: counts, ring and talk times, per-door outcomes."""
    t, call, to = telemetry, event.call, event.to_state
    assert call is not None
    provider = t.provider(event.provider)
    t.transitions.labels(provider, event.from_state or "none", to).inc()
    ring = call.ring_seconds
    # The ring ends once per call: when answered, or at an unanswered end; a call first
    # seen already over (every CINNOX record) rang too, by the provider's own times.
    if ring is not None:
        if to == CallState.ANSWERED or (to == CallState.ENDED and event.from_state is None):
            t.ring_seconds.labels(provider, "answered").observe(ring)
        elif to in ("missed", "rejected", "failed"):
            t.ring_seconds.labels(provider, to).observe(ring)
    if to == CallState.ENDED and call.talk_seconds is not None:
        t.talk_seconds.labels(provider).observe(call.talk_seconds)
    if call.intercom is not None and to in TERMINAL and provider != OTHER:
        result = "answered" if to == CallState.ENDED else to
        door = t.door(event.provider, str(call.intercom.id))
        t.intercom_calls.labels(provider, door, result).inc()


HOUR = 3600.0


def tally(events: Iterable[Event]) -> list[Tally]:
    """The calls that ended among `events`, counted per provider, door and the hour each call
    began (answered: ended after an answer; missed: never answered; rejected and failed calls
    are in neither count)."""
    counts: dict[tuple[str, str, float], list[int]] = {}
    for event in events:
        call, to = event.call, event.to_state
        if call is None or to not in (CallState.ENDED, CallState.MISSED):
            continue
        began = (call.created_at or event.at).timestamp()
        door = str(call.intercom.id) if call.intercom is not None else ""
        count = counts.setdefault((event.provider, door, began - began % HOUR), [0, 0])
        count[to == CallState.MISSED] += 1
    return [Tally(p, d, h, a, m) for (p, d, h), (a, m) in counts.items()]
