"""Matching an event against many rules at once: the candidates of its kind and state, narrowed
by the field most of them test for equality (`Shortlist`), then one generated function per
candidate set (`rules.codegen`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.model import Event
from monitor.rules import codegen
from monitor.rules.fields import Getter
from monitor.rules.match import Rule


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

    def generated(self) -> list[tuple[str, str]]:
        """(which set, source) of the generated matchers: one per indexed value, and the rest."""
        found = [(f" where {k}", codegen.source(m.match) or "") for k, m in self._by_key.items()]
        label = " (the others)" if found else ""
        return [*found, (label, codegen.source(self._rest.match) or "")]

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
    lines.append("    return found")
    match: Callable[[Event], list[Rule]] = codegen.function("match", lines, names)
    return match
