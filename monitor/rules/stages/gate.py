"""`during:` / `outside:`, the schedule gate: an event outside the rule's hours (or inside the
hours it stays out of) goes no further. `intercom-timetable` is the door's own timetable; a
door whose timetable is unknown is let through (rather alert than stay silent)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from monitor.rules.match import Rule
from monitor.rules.spec import Fragment
from monitor.rules.stages.base import Passage, Reason, Stop

name = "gate"


class Fields(Fragment):
    during: str | None = Field(None, description="A schedule: alert only inside it")
    outside: str | None = Field(None, description="A schedule: alert only outside it")

    @model_validator(mode="after")
    def _one_schedule_gate(self) -> Any:
        if self.during is not None and self.outside is not None:
            raise ValueError("give either during or outside, not both")
        return self


def applies(rule: Rule) -> bool:
    return rule.during is not None or rule.outside is not None


def passes(run: Any, passage: Passage) -> Stop | None:
    rule, event = passage.rule, passage.event
    schedule = run.schedule(rule.during or rule.outside, event)
    if schedule is None:
        return None
    inside = schedule.active(event.at)
    if inside if rule.during else not inside:
        return None
    where = f"outside its {rule.during}" if rule.during else f"inside its {rule.outside}"
    return (OUTSIDE, f"{where} schedule", None)


OUTSIDE = Reason.OUTSIDE
