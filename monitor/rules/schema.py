"""The shape of a rule file (SPEC "Rule files"), as pydantic models that reject unknown keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from monitor.model import Severity
from monitor.rules.spec import Model as _Model
from monitor.rules.stages import STAGES
from monitor.text.units import Duration


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


class Group(_Model):
    """Collect alerts per `by` key for `wait`, then send one message (at most `max` in one)."""

    by: list[str] = Field(default_factory=list)
    wait: Duration = 30.0
    max: int = Field(default=20, ge=1)


class Summary(_Model):
    """Templates for a message that stands for several alerts (a group, digest or backlog)."""

    title: str | None = None
    body: str | None = None


class _Core(_Model):
    """The keys of a rule that are not a stage's."""

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
    group: Group | None = None
    quiet: str | None = Field(
        None, description="A schedule: hold alerts inside it, send one digest when it ends"
    )
    summary: Summary = Field(default_factory=Summary)


if TYPE_CHECKING:
    from monitor.rules.stages.gate import Fields as _Gate
    from monitor.rules.stages.remind import Fields as _Remind
    from monitor.rules.stages.threshold import Fields as _Threshold
    from monitor.rules.stages.throttle import Fields as _Throttle

    class RuleSpec(_Core, _Gate, _Threshold, _Throttle, _Remind):
        """One rule as written."""

else:
    RuleSpec = type(
        "RuleSpec",
        (_Core, *(s.Fields for s in STAGES if s.Fields is not None)),
        {
            "__doc__": "One rule as written: the core keys and every stage's.",
            "__module__": __name__,
        },
    )


class RuleFile(_Model):
    """A rule file: a list of rules under `rules:`."""

    version: Literal[1] = 1
    rules: list[RuleSpec] = Field(default_factory=list)
