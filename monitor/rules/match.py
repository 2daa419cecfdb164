"""A rule compiled once (`Rule`): coarse filters as sets, `where` as getters and predicates;
whether an event matches it, and why not, is pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.model import Event, Severity
from monitor.rules.errors import RuleError
from monitor.rules.fields import Getter, Predicate
from monitor.rules.templates import EventFill, Template

__all__ = ["KeyedWindow", "Rule", "RuleError", "by_key", "why_not"]


@dataclass(frozen=True, slots=True)
class KeyedWindow:
    """A per-key time window: `threshold` (count within) or `throttle` (every) or `group`."""

    seconds: float
    by: tuple[Getter, ...]
    count: int = 1
    text: str = ""
    """How a verdict it holds back reads (`… of 5 within 120 s`), written once per rule."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule: coarse filters as sets, `where` as closures, templates compiled."""

    name: str
    source: str
    """The file it was read from, for messages."""
    kinds: frozenset[str]
    """Event kinds it looks at; the other filters are None where `when` left them open."""
    providers: frozenset[str] | None
    provider_types: frozenset[str] | None
    from_states: frozenset[str | None] | None
    to_states: frozenset[str] | None
    where: tuple[tuple[Getter, Predicate], ...]
    """Each `where` field as a getter and the test its value must pass."""
    notify: tuple[str, ...]
    severity: Severity
    title: Template
    body: Template
    hold_for: float | None = None
    """`for:` in seconds: the state must be held this long before the rule fires."""
    resolve: bool = False
    threshold: KeyedWindow | None = None
    throttle: KeyedWindow | None = None
    group: KeyedWindow | None = None
    during: str | None = None
    """Schedule names: the gate (`during` or `outside`) and the quiet hours."""
    outside: str | None = None
    quiet: str | None = None
    summary_title: Template | None = None
    summary_body: Template | None = None
    line: int = 1
    """Where the rule starts in its file."""
    col: int = 1
    fingerprint: str = ""
    """A digest of the rule as written, so a reload can tell a changed rule from the same one."""
    where_text: tuple[str, ...] = ()
    """Each `where` condition as written, for `why_not`."""
    where_paths: tuple[str, ...] = ()
    """Each `where` condition's field (`call.intercom.id`), in the order of `where`."""
    fills: tuple[EventFill | None, EventFill | None] = (None, None)
    """`title` and `body` as `EventFill`s, when they only print fields (see `Template`)."""
    equals: tuple[tuple[str, Getter, frozenset[str]], ...] = ()
    """The `where` fields tested for plain equality (`call.intercom.id: 158`, or a list of
    values), with the `index_keys` of the values: the engine's index (see `Shortlist`)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """What the stages that compile their own option made of it (`remind`), by stage name."""
    stages: tuple[Any, ...] = ()
    """The stages an event that matched passes, in order (`monitor.rules.stages`)."""

    @property
    def states(self) -> frozenset[str] | None:
        """The states a `for:` timer or a `resolve:` watches: the ones the rule enters."""
        return self.to_states

    fields: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)
    """What templates read of the rule itself (`rule`, `severity`, `for`)."""

    def __post_init__(self) -> None:
        fields = {"rule": self.name, "severity": str(self.severity), "for": self.hold_for}
        object.__setattr__(self, "fields", fields)

    def matches(self, event: Event) -> bool:
        """Whether the event satisfies `when` (the engine matches many rules at once with a
        `Shortlist`, which agrees with this)."""
        if event.kind not in self.kinds:
            return False
        if self.providers is not None and event.provider not in self.providers:
            return False
        if self.provider_types is not None and event.provider_type not in self.provider_types:
            return False
        if self.from_states is not None and event.from_state not in self.from_states:
            return False
        if self.to_states is not None and event.to_state not in self.to_states:
            return False
        return all(test(get(event)) for get, test in self.where)


def why_not(rule: Rule, event: Event) -> str:
    """Which part of `when` the event fails (values that may be personal are not quoted)."""
    if event.kind not in rule.kinds:
        return f"kind is {event.kind}"
    if rule.providers is not None and event.provider not in rule.providers:
        return f"provider is {event.provider}"
    if rule.provider_types is not None and event.provider_type not in rule.provider_types:
        return f"provider_type is {event.provider_type}"
    if rule.from_states is not None and event.from_state not in rule.from_states:
        return f"from is {event.from_state}"
    if rule.to_states is not None and event.to_state not in rule.to_states:
        return f"to is {event.to_state}"
    for (get, test), text in zip(rule.where, rule.where_text, strict=False):
        if not test(get(event)):
            return f"where {text} does not hold"
    return "matches"


def by_key(getters: tuple[Getter, ...], event: Event) -> str:
    """The `by` key of an event: its values of the named fields, joined."""
    if len(getters) == 1:
        return "" if (v := getters[0](event)) is None else str(v)
    return "|".join("" if (v := get(event)) is None else str(v) for get in getters)
