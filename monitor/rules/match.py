"""Rules compiled once: coarse filters as sets, `where` as closures; matching an event is pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from monitor.model import Event, Severity
from monitor.rules.regex import RegexError, compile_linear
from monitor.rules.templates import EventFill, Template

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


def index_key(value: Any) -> str | None:
    """The key under which an event's field value is looked up in a `Shortlist`: None for a
    value no equality test on a plain value can accept (None, a boolean)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(float(value))
    return str(value)


def index_keys(expected: Any) -> frozenset[str] | None:
    """Every `index_key` of a value `where` may compare equal to `expected` (a plain value or a
    list of them; `_equals` lets `158` match `"158"` and `158.0`), or None when `expected` is
    not a plain value (an operator map, null, a boolean): that rule is not indexed."""
    values = expected if isinstance(expected, list) else [expected]
    keys: set[str] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        keys.add(str(value))
        number: float | None = value if not isinstance(value, str) else _as_number(value)
        if number is not None and (key := index_key(number)) is not None:
            keys.add(key)
    return frozenset(keys)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class Shortlist:
    """The candidate rules of one (kind, to-state) narrowed by one field's value: when several
    rules test the same field for equality (`call.intercom.id: 158`, one rule per door), an
    event is matched only against the rules for its value and the rules that do not test the
    field. Every rule kept out could not have matched (`index_keys`), so the verdicts are those
    of matching all candidates, in the same order."""

    __slots__ = ("_by_key", "_get", "_rest", "candidates")

    def __init__(self, candidates: list[Rule]) -> None:
        self.candidates = candidates
        counts: dict[str, int] = {}
        for rule in candidates:
            for name, _, _ in rule.equals:
                counts[name] = counts.get(name, 0) + 1
        path = max(counts, key=counts.__getitem__, default=None)
        self._get: Getter | None = None
        self._rest = _Matcher(candidates)
        self._by_key: dict[str, _Matcher] = {}
        if path is None or counts[path] < 2:
            return
        keys: dict[int, frozenset[str]] = {}
        for rule in candidates:
            for name, get, found in rule.equals:
                if name == path:
                    keys[id(rule)], self._get = found, get
        self._rest = _Matcher([r for r in candidates if id(r) not in keys])
        for key in frozenset().union(*keys.values()):
            chosen = [r for r in candidates if key in keys.get(id(r), (key,))]
            self._by_key[key] = _Matcher(chosen)

    def rules(self, event: Event) -> list[Rule]:
        """The candidates that may match `event`, in rule order."""
        return self._for(event).rules

    def match(self, event: Event) -> list[Rule]:
        """The candidates `event` matches, in rule order."""
        return self._for(event).match(event)

    def _for(self, event: Event) -> _Matcher:
        if self._get is None:
            return self._rest
        key = index_key(self._get(event))
        return self._rest if key is None else self._by_key.get(key, self._rest)


class _Matcher:
    """The rules of one (kind, to-state) that an event may match, matched by one generated
    function: each field the rules' `where` reads is read once per event (ten rules on
    `call.talk_seconds` compute it once), and a rule's tests run in a row, with no call per
    rule. The event's kind and state are the candidates' by construction: not tested again."""

    __slots__ = ("match", "rules")

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.match: Callable[[Event], list[Rule]] = _generate_match(rules)


_UNREAD = object()


def _generate_match(rules: list[Rule]) -> Callable[[Event], list[Rule]]:
    names: dict[str, Any] = {"_UNREAD": _UNREAD}
    fields: dict[str, str] = {}
    lines = ["def match(event):", "    found = []"]
    for i, rule in enumerate(rules):
        names[f"rule{i}"] = rule
        tests = []
        for name, attr in (
            ("providers", "provider"),
            ("provider_types", "provider_type"),
            ("from_states", "from_state"),
        ):
            if getattr(rule, name) is not None:
                names[f"{name}{i}"] = getattr(rule, name)
                tests.append(f"event.{attr} in {name}{i}")
        depth = 1
        if tests:
            lines.append(f"    if {' and '.join(tests)}:")
            depth += 1
        for j, ((get, test), path) in enumerate(zip(rule.where, rule.where_paths, strict=True)):
            if path not in fields:
                fields[path] = f"v{len(fields)}"
                names[f"get_{fields[path]}"] = get
                lines.insert(2, f"    {fields[path]} = _UNREAD")
            value = fields[path]
            names[f"test{i}_{j}"] = test
            pad = "    " * depth
            lines.append(f"{pad}if {value} is _UNREAD:")
            lines.append(f"{pad}    {value} = get_{value}(event)")
            lines.append(f"{pad}if test{i}_{j}({value}):")
            depth += 1
        lines.append(f"{'    ' * depth}found.append(rule{i})")
    lines.append("    return found\n")
    exec(compile("\n".join(lines), "<rules>", "exec"), names)
    match: Callable[[Event], list[Rule]] = names["match"]
    return match


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
    lines.append("    return value\n")
    exec(compile("\n".join(lines), "<field>", "exec"), names)
    get: Getter = names["get"]
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
