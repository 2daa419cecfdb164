"""What every rule stage shares: the reason it stops an event (an enum, as Alertmanager's
notify stages return theirs), the event's passage through a rule, and the shape of a stage.

A stage is a module: `name` (the rule option it implements), `Fields` (its part of a rule's
schema, or None), `applies(rule)` (whether a rule uses it), `passes(run, passage)` (None to let
the event on, or the `Stop` that ends its way), and optionally `tick(run, rules, stamp)` (what it
does on the clock), `leave(run, rule, event)` (a subject that left a watched state) and `KINDS`
(the state it keeps, by kind). `monitor.rules.stages.STAGES` lists them in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from monitor.model import Event
from monitor.rules.match import Rule


class Reason(StrEnum):
    """A rule's decision on an event, as `callmon explain` and the API tell it."""

    FIRED = "fired"
    NOT_MATCHED = "not matched"
    OUTSIDE = "outside schedule"
    WAITING = "waiting"
    BELOW = "below threshold"
    SILENCED = "silenced"
    THROTTLED = "throttled"


Stop = tuple[Reason, str, str | None]
"""Where an event's way through a rule ends: the reason, its detail, the alert's key (a plain
tuple: a stop is made for every event a rule holds back)."""


@dataclass(slots=True)
class Passage:
    """One event on its way through one rule's stages, and what the stages added to it."""

    rule: Rule
    event: Event
    context: dict[str, Any] | None = None
    """What templates read besides the event (a threshold's `count`)."""
    notes: list[str] | None = None
    """Lines the alert's body ends with (how many a throttle held back)."""
    since: float | None = None
    """For a reminder (`remind`): when the state it reminds of began (seconds since the
    epoch); None for every other alert."""


class Stage(Protocol):
    """A rule option as a stage of the engine (see the module's text)."""

    name: str

    def applies(self, rule: Rule) -> bool: ...

    def passes(self, run: Any, passage: Passage) -> Stop | None: ...


Rules = Mapping[str, Rule]
