"""`where` and `by` read event fields and test their values: a dotted path (`call.intercom.id`)
becomes a getter, a value or operator map a predicate; both compiled once per rule."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from monitor.model import Event
from monitor.rules import codegen
from monitor.rules.errors import RuleError
from monitor.rules.regex import RegexError, compile_linear

Getter = Callable[[Event], Any]
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
        "via",
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


def compile_field(path: str, loc: Sequence[str | int]) -> Getter:
    """A getter for a dotted event field; unknown top-level or call fields are an error."""
    parts = path.split(".")
    if parts[0] not in EVENT_FIELDS:
        raise RuleError(f"unknown event field {path!r}", loc)
    if parts[0] == "call" and len(parts) > 1 and parts[1] not in CALL_FIELDS:
        raise RuleError(f"unknown call field {path!r}", loc)
    if len(parts) > 2 and ".".join(parts[:2]) not in OPEN_FIELDS and parts[0] != "intercom":
        raise RuleError(f"field {path!r} has no sub-fields", loc)

    steps: list[Callable[[Any], Any]] = [_EVENT[parts[0]]]
    if len(parts) > 1:
        if parts[0] == "call":
            steps.append(_CALL[parts[1]])
            rest = parts[2:]
            if parts[1] == "intercom" and rest:
                steps.append(_DOOR.get(rest[0]) or _key(rest[0]))
                rest = rest[1:]
        else:
            steps.append(_DOOR.get(parts[1]) or _key(parts[1]))
            rest = parts[2:]
        steps.extend(_key(part) for part in rest)

    return _chain(steps)


def _chain(steps: list[Callable[[Any], Any]]) -> Getter:
    """One getter applying `steps` in turn, None as soon as a step finds None (generated:
    a field is read for every candidate rule on every event)."""
    names: dict[str, Any] = {f"step{i}": step for i, step in enumerate(steps)}
    lines = ["def get(value):"]
    for i in range(len(steps)):
        if i:
            lines.append("    if value is None:\n        return None")
        lines.append(f"    value = step{i}(value)")
    lines.append("    return value")
    get: Getter = codegen.function("get", lines, names)
    get.__callmon_steps__ = steps  # type: ignore[attr-defined]
    return get


OBJECTS = frozenset({"call", "intercom", "call.intercom"})
"""Fields that are objects: a template prints them as their dict, which a reader does not."""


def template_reader(path: str) -> Getter | None:
    """The reader of an event's leaf field for templates (`templates.Reader`)."""
    if path in OBJECTS:
        return None
    try:
        return compile_field(path, ())
    except RuleError:
        return None


def _key(part: str) -> Callable[[Any], Any]:
    """A step into provider-specific detail (`call.raw`, a timetable): a mapping lookup."""
    return lambda value: value.get(part) if isinstance(value, Mapping) else None


def _text(name: str) -> Callable[[Any], Any]:
    def get(value: Any) -> Any:
        found = getattr(value, name)
        return None if found is None else str(found)

    return get


_EVENT: dict[str, Callable[[Any], Any]] = {
    "kind": _text("kind"),
    "provider": attrgetter("provider"),
    "provider_type": attrgetter("provider_type"),
    "from": attrgetter("from_state"),
    "to": attrgetter("to_state"),
    "inferred": attrgetter("inferred"),
    "at": attrgetter("at"),
    "call": attrgetter("call"),
    "intercom": attrgetter("intercom"),
    "reason": attrgetter("reason"),
    "via": attrgetter("via"),
}
_CALL: dict[str, Callable[[Any], Any]] = {
    "id": attrgetter("id"),
    "state": _text("state"),
    "raw_status": attrgetter("raw_status"),
    "direction": attrgetter("direction"),
    "from": attrgetter("from_number"),
    "to": attrgetter("to_number"),
    "created_at": attrgetter("created_at"),
    "answered_at": attrgetter("answered_at"),
    "ended_at": attrgetter("ended_at"),
    "ring_seconds": attrgetter("ring_seconds"),
    "talk_seconds": attrgetter("talk_seconds"),
    "intercom": attrgetter("intercom"),
    "raw": attrgetter("raw"),
}
_DOOR: dict[str, Callable[[Any], Any]] = {
    name: attrgetter(name) for name in ("id", "title", "address", "is_online", "timetable")
}


def compile_test(spec: Any, loc: Sequence[str | int]) -> Predicate:
    """A predicate from a `where` value: a plain value, a list (any of), or an operator map."""
    if isinstance(spec, list):
        options = [compile_test(v, (*loc, i)) for i, v in enumerate(spec)]
        return lambda v: any(t(v) for t in options)
    if isinstance(spec, dict):
        if not spec:
            raise RuleError("empty operator map", loc)
        tests = [_operator(op, arg, (*loc, op)) for op, arg in spec.items()]
        if len(tests) == 1:
            return tests[0]
        return lambda v: all(t(v) for t in tests)
    return _equals(spec)


def _equals(expected: Any) -> Predicate:
    """Equality, and `158` matches `"158"`: YAML and JSON types need not agree."""
    for plain in (bool, int, float, str):  # the YAML loader's own subclasses (`158.0`)
        if isinstance(expected, plain):
            expected = plain(expected)
            break
    kind = type(expected)
    text = None if expected is None or isinstance(expected, bool) else str(expected)
    number = kind in (int, float)

    def test(value: Any) -> bool:
        if type(value) is kind:
            return bool(value == expected)
        if text is None or value is None or isinstance(value, bool):
            return False
        if number and isinstance(value, int | float):
            return bool(value == expected)
        return str(value) == text

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
            found = compile_linear(str(arg))
        except RegexError as exc:
            raise RuleError(f"invalid regex {str(arg)[:80]!r}: {exc}", loc) from None
        return lambda v: v is not None and found(str(v))
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
