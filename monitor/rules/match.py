"""Rules compiled once: coarse filters as sets, `where` as closures; matching an event is pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.model import Event, Severity
from monitor.rules.templates import Template

Getter = Callable[[Mapping[str, Any]], Any]
Predicate = Callable[[Any], bool]

OPERATORS = frozenset({"regex", "not", "gt", "gte", "lt", "lte", "exists"})
EVENT_FIELDS = frozenset(
    {
        "kind",
        "provider",
        "provider_type",
        "from",
        "to",
        "inferred",
        "at",
        "call",
        "intercom",
        "reason",
    }
)
CALL_FIELDS = frozenset(
    {
        "id",
        "state",
        "raw_status",
        "direction",
        "from",
        "to",
        "created_at",
        "answered_at",
        "ended_at",
        "ring_seconds",
        "talk_seconds",
        "intercom",
        "raw",
    }
)
OPEN_FIELDS = frozenset({"call.intercom", "call.raw", "intercom"})
"""Fields whose insides are provider-specific: any sub-field is allowed."""


class RuleError(ValueError):
    """A rule that cannot be compiled; `loc` is the path of the offending value in the rule."""

    def __init__(self, message: str, loc: Sequence[str | int], *, at_key: bool = False) -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.at_key = at_key


@dataclass(frozen=True, slots=True)
class KeyedWindow:
    """A per-key time window: `threshold` (count within) or `throttle` (every) or `group`."""

    seconds: float
    by: tuple[Getter, ...]
    count: int = 1


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule: coarse filters as sets, `where` as closures, templates compiled."""

    name: str
    source: str
    kinds: frozenset[str]
    providers: frozenset[str] | None
    provider_types: frozenset[str] | None
    from_states: frozenset[str | None] | None
    to_states: frozenset[str] | None
    where: tuple[tuple[Getter, Predicate], ...]
    notify: tuple[str, ...]
    severity: Severity
    title: Template
    body: Template
    hold_for: float | None = None
    resolve: bool = False
    threshold: KeyedWindow | None = None
    throttle: KeyedWindow | None = None
    group: KeyedWindow | None = None
    during: str | None = None
    outside: str | None = None
    quiet: str | None = None
    summary_title: Template | None = None
    summary_body: Template | None = None
    fingerprint: str = ""
    """A digest of the rule as written, so a reload can tell a changed rule from the same one."""

    @property
    def states(self) -> frozenset[str] | None:
        """The states a `for:` timer or a `resolve:` watches: the ones the rule enters."""
        return self.to_states

    def matches(self, event: Event, view: Callable[[], Mapping[str, Any]]) -> bool:
        """Whether the event satisfies `when`; `view` builds the event's fields on demand."""
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
        if self.where:
            fields = view()
            return all(test(get(fields)) for get, test in self.where)
        return True


def by_key(getters: tuple[Getter, ...], fields: Mapping[str, Any]) -> str:
    """The `by` key of an event: its values of the named fields, joined."""
    return "|".join("" if (v := get(fields)) is None else str(v) for get in getters)


def compile_field(path: str, loc: Sequence[str | int]) -> Getter:
    """A getter for a dotted event field; unknown top-level or call fields are an error."""
    parts = path.split(".")
    if parts[0] not in EVENT_FIELDS:
        raise RuleError(f"unknown event field {path!r}", loc)
    if parts[0] == "call" and len(parts) > 1 and parts[1] not in CALL_FIELDS:
        raise RuleError(f"unknown call field {path!r}", loc)
    if len(parts) > 2 and ".".join(parts[:2]) not in OPEN_FIELDS and parts[0] != "intercom":
        raise RuleError(f"field {path!r} has no sub-fields", loc)

    def get(fields: Mapping[str, Any]) -> Any:
        value: Any = fields
        for part in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


def compile_test(spec: Any, loc: Sequence[str | int]) -> Predicate:
    """A predicate from a `where` value: a plain value, a list (any of), or an operator map."""
    if isinstance(spec, list):
        options = [compile_test(v, (*loc, i)) for i, v in enumerate(spec)]
        return lambda v: any(t(v) for t in options)
    if isinstance(spec, dict):
        if not spec:
            raise RuleError("empty operator map", loc)
        tests = [_operator(op, arg, (*loc, op)) for op, arg in spec.items()]
        return lambda v: all(t(v) for t in tests)
    return _equals(spec)


def _equals(expected: Any) -> Predicate:
    def test(value: Any) -> bool:
        if value == expected:
            return True
        if isinstance(value, bool) or isinstance(expected, bool):
            return False
        return value is not None and expected is not None and str(value) == str(expected)

    return test


def _number(arg: Any, op: str, loc: Sequence[str | int]) -> float:
    if isinstance(arg, bool) or not isinstance(arg, int | float):
        raise RuleError(f"operator {op} needs a number, got {arg!r}", loc)
    return float(arg)


def _operator(op: Any, arg: Any, loc: Sequence[str | int]) -> Predicate:
    if op not in OPERATORS:
        raise RuleError(
            f"unknown operator {op!r} (expected one of {', '.join(sorted(OPERATORS))})",
            loc,
            at_key=True,
        )
    if op == "regex":
        try:
            pattern = re.compile(str(arg))
        except re.error as exc:
            raise RuleError(f"invalid regex {arg!r}: {exc}", loc) from None
        return lambda v: v is not None and pattern.search(str(v)) is not None
    if op == "not":
        inner = compile_test(arg, loc)
        return lambda v: not inner(v)
    if op == "exists":
        if not isinstance(arg, bool):
            raise RuleError("operator exists needs true or false", loc)
        return lambda v: (v is not None) is arg
    limit = _number(arg, op, loc)
    compare: Callable[[float], bool] = {
        "gt": lambda x: x > limit,
        "gte": lambda x: x >= limit,
        "lt": lambda x: x < limit,
        "lte": lambda x: x <= limit,
    }[op]

    def numeric(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return compare(float(value))

    return numeric
