"""The shape of a rule file (SPEC "Rule files"), as pydantic models that reject unknown keys."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.model import Severity

Scalar = str | int | float | bool | None
OneOrMany = Scalar | list[Scalar]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Model):
    """Which events a rule looks at."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Literal["transition", "timer", "intercom", "provider"] | None = None
    provider: str | list[str] | None = None
    provider_type: str | list[str] | None = None
    from_: str | list[str | None] | None = Field(default=None, alias="from")
    to: str | list[str] | None = None
    where: dict[str, Any] = Field(default_factory=dict)


class RuleSpec(_Model):
    """One rule as written."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    when: When
    notify: list[str] = Field(min_length=1)
    severity: Severity = Severity.WARNING
    title: str = "{{ rule }}: {{ provider }} call {{ call.id }} {{ from or 'new' }} → {{ to }}"
    body: str = ""


class RuleFile(_Model):
    """A rule file: a list of rules under `rules:`."""

    version: Literal[1] = 1
    rules: list[RuleSpec] = Field(default_factory=list)
