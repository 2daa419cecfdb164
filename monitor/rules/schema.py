"""The shape of a rule file (SPEC "Rule files"), as pydantic models that reject unknown keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.model import Severity
from monitor.units import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class When(_Model):
    """Which events a rule looks at."""

    kind: Literal["transition", "timer", "intercom", "provider"] | None = None
    provider: str | list[str] | None = None
    provider_type: str | list[str] | None = None
    from_: str | list[str | None] | None = Field(default=None, alias="from")
    to: str | list[str] | None = None
    state: str | list[str] | None = None
    where: dict[str, Any] = Field(default_factory=dict)


class Threshold(_Model):
    """Fire once when `count` matching events fall within `within` (per `by` key)."""

    count: int = Field(ge=1)
    within: Duration
    by: list[str] = Field(default_factory=list)


class Throttle(_Model):
    """At most one alert per `by` key per `every`; the next one says how many were held back."""

    every: Duration
    by: list[str] = Field(default_factory=list)


class Group(_Model):
    """Collect alerts per `by` key for `wait`, then send one message (at most `max` in one)."""

    by: list[str] = Field(default_factory=list)
    wait: Duration = 30.0
    max: int = Field(default=20, ge=1)


class Summary(_Model):
    """Templates for a message that stands for several alerts (a group, digest or backlog)."""

    title: str | None = None
    body: str | None = None


class RuleSpec(_Model):
    """One rule as written."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    when: When
    notify: list[str] = Field(min_length=1)
    severity: Severity = Severity.WARNING
    title: str = "{{ rule }}: {{ provider }} {{ call.id or intercom.id or '' }} {{ to }}"
    body: str = ""
    for_: Duration | None = Field(default=None, alias="for")
    resolve: bool = False
    threshold: Threshold | None = None
    throttle: Throttle | None = None
    group: Group | None = None
    during: str | None = None
    outside: str | None = None
    quiet: str | None = None
    summary: Summary = Field(default_factory=Summary)

    @model_validator(mode="after")
    def _one_schedule_gate(self) -> RuleSpec:
        if self.during is not None and self.outside is not None:
            raise ValueError("give either during or outside, not both")
        return self


class RuleFile(_Model):
    """A rule file: a list of rules under `rules:`."""

    version: Literal[1] = 1
    rules: list[RuleSpec] = Field(default_factory=list)
