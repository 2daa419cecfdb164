"""One engine step's working set, and what it decided (`Outcome`).

Every stage (timers, windows, batches, alerts) reads and writes through a `Run`: the state step,
the time, the schedules and silences in force, and the outcome it adds to. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import msgspec

from monitor.model import Alert, Event, StateKey
from monitor.rules.match import Rule, why_not
from monitor.rules.schedule import Schedule, from_timetable
from monitor.rules.silence import Silencer
from monitor.rules.state import Item, State, Step

TIMETABLE = "intercom-timetable"
"""The schedule name that means a door's own timetable."""

Timetables = Mapping[tuple[str, int], Schedule]
"""Each door's own timetable: (provider, door id) → schedule."""


class Verdict(msgspec.Struct, frozen=True):
    """One rule's decision on one event: `fired`, or why not (`callmon explain` tells them)."""

    event: Event
    rule: str
    verdict: str
    """A `Reason` (`monitor.rules.stages.base`): `fired`, `not matched`, `outside schedule`,
    `waiting`, `below threshold`, `silenced`, `throttled`."""
    detail: str = ""
    alert: str | None = None
    """The alert's key, when it fired."""


Considered = tuple[Event, list[Rule], list[Rule]]


@dataclass(slots=True)
class Outcome:
    """What one step decided: alerts to queue, state to store, rules that fired."""

    alerts: list[Alert] = field(default_factory=list)
    changes: dict[StateKey, State | None] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(rule, problem) of each template that failed to render (a fallback text went out)."""
    verdicts: list[Verdict] = field(default_factory=list)
    """Each matching rule's decision on each event, for the decision record."""
    considered: list[Considered] = field(default_factory=list)
    """(event, candidate rules, the ones that matched) where some candidate did not match."""

    def misses(self) -> list[Verdict]:
        """The `not matched` verdicts, each saying which part of `when` failed (computed now,
        not while deciding)."""
        return [
            Verdict(event, rule.name, "not matched", why_not(rule, event))
            for event, candidates, matched in self.considered
            for rule in candidates
            if rule not in matched
        ]

    def __bool__(self) -> bool:
        return bool(self.alerts or self.changes)


@dataclass(slots=True)
class Run:
    """One step: its state changes, its time, what is in force, and its outcome."""

    step: Step
    now: datetime
    zone: tzinfo
    schedules: Mapping[str, Schedule]
    timetables: Timetables
    silencer: Silencer
    backlog: bool = False
    external_url: str | None = None
    out: Outcome = field(default_factory=Outcome)
    held: dict[str, list[Item]] = field(default_factory=dict)
    """Call alerts held back for a backlog summary, per rule."""
    down: Container[str] = frozenset()
    """On the clock: the providers that are down (their timers and reminders wait)."""
    polled: Mapping[str, float] | None = None
    """On the clock: when each provider last answered a poll (see `timers.fire_due`)."""
    _views: dict[int, dict[str, Any]] = field(default_factory=dict)

    def view(self, event: Event) -> dict[str, Any]:
        """The event's fields as templates read them (built once per event)."""
        key = id(event)
        if key not in self._views:
            self._views[key] = event.as_dict()
        return self._views[key]

    def schedule(self, name: str, event: Event) -> Schedule | None:
        """The named schedule, or for `intercom-timetable` the door's own (None: unknown)."""
        if name != TIMETABLE:
            return self.schedules.get(name)
        door = event.intercom or (event.call.intercom if event.call else None)
        if door is None:
            return None
        if door.timetable:
            return from_timetable(door.timetable, self.zone)
        return self.timetables.get((event.provider, door.id))


def subject(event: Event) -> str:
    """What an event is about: a call, a door, or the provider itself."""
    if event.call is not None:
        return f"{event.provider}/call/{event.call.id}"
    if event.intercom is not None:
        return f"{event.provider}/door/{event.intercom.id}"
    return event.provider
