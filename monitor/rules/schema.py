"""The shape of a rule file (SPEC "Rule files"), as pydantic models that reject unknown keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.model import Severity
from monitor.text.units import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class When(_Model):
    """Which events a rule looks at."""

    kind: Literal["transition", "timer", "intercom", "provider"] | None = Field(
        None, description="The kind of event (default: any)"
    )
    provider: str | list[str] | None = Field(None, description="Provider names from the config")
    provider_type: str | list[str] | None = Field(
        None, description="Provider types (vms-intercom, bird, cinnox, bandwidth)"
    )
    from_: str | list[str | None] | None = Field(
        None, alias="from", description="The state left (null: a call first seen)"
    )
    to: str | list[str] | None = Field(None, description="The state entered")
    state: str | list[str] | None = Field(
        None, description="A state held (with `for:`), not a transition"
    )
    where: dict[str, Any] = Field(
        default_factory=dict, description="Event fields and what each must be (see Events)"
    )


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

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=100,
        description="Unique among all rule files: letters, digits, `_`, `.`, `-`",
    )
    when: When
    notify: list[str] = Field(min_length=1, description="Notifier names from the config")
    severity: Severity = Severity.WARNING
    title: str = Field(
        "{{ rule }}: {{ provider }} {{ call.id or intercom.id or '' }} {{ to }}",
        description="Jinja2 template of the alert's title",
    )
    body: str = Field("", description="Jinja2 template of the alert's body")
    for_: Duration | None = Field(
        None, alias="for", description="Fire only once the state was held this long (`90s`)"
    )
    resolve: bool = Field(False, description="Send a follow-up when the state is left")
    threshold: Threshold | None = None
    throttle: Throttle | None = None
    group: Group | None = None
    during: str | None = Field(None, description="A schedule: alert only inside it")
    outside: str | None = Field(None, description="A schedule: alert only outside it")
    quiet: str | None = Field(
        None, description="A schedule: hold alerts inside it, send one digest when it ends"
    )
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
