"""What `callmon check` adds to loading: fields templates name that events never have, and rules
that can never match the providers configured."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from jinja2 import Environment, nodes

from monitor.rules.fields import CALL_FIELDS, EVENT_FIELDS, OPEN_FIELDS
from monitor.rules.match import Rule

CONTEXT_FIELDS = frozenset({"rule", "severity", "for", "count", "story_url"})
GLOBALS = frozenset({"range", "dict", "namespace"})
"""The sandbox's own globals, usable in any template."""
SUMMARY_FIELDS = frozenset({"count", "alerts", "rule", "reason", "schedule", "provider"})
INTERCOM_FIELDS = frozenset({"id", "title", "address", "is_online", "timetable"})

_ENV = Environment()


@dataclass(frozen=True)
class ProviderTraits:
    """What a provider type can report: its canonical states, and whether door status."""

    states: frozenset[str]
    doors: bool = False
    final_only: bool = False
    """Its records exist only once a call is over: each call's event comes from nothing."""


def unknown_fields(source: str, *, summary: bool = False) -> list[tuple[int, str]]:
    """(line within the template, dotted name) of each field the template reads that events
    never have."""
    tree = _ENV.parse(source)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    assigned.update(m.name for m in tree.find_all(nodes.Macro))
    if any(True for _ in tree.find_all(nodes.For)):
        assigned.add("loop")  # a for loop's own `loop.index`, `loop.first`, …
    assigned.update(GLOBALS)
    # `x.upper()`: the last name is a method of the value, not a field of the event.
    methods = {id(c.node) for c in tree.find_all(nodes.Call) if isinstance(c.node, nodes.Getattr)}
    found: list[tuple[int, str]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Name)):
        if id(node) in methods:
            node = node.node  # type: ignore[attr-defined]
        path = _path(node)
        if path is None or path[0] in assigned:
            continue
        problem = _check_path(path, summary)
        if problem and (node.lineno, problem) not in found:
            found.append((node.lineno, problem))
    return found


def _path(node: nodes.Node) -> list[str] | None:
    """`call.intercom.title` as ["call", "intercom", "title"], for the outermost Getattr only."""
    parts: list[str] = []
    while isinstance(node, nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    parts.append(node.name)
    return parts[::-1]


def _check_path(path: list[str], summary: bool) -> str | None:
    head = path[0]
    known = SUMMARY_FIELDS if summary else EVENT_FIELDS | CONTEXT_FIELDS
    if head not in known:
        return head
    if summary or len(path) < 2:
        return None
    if head == "call":
        if path[1] not in CALL_FIELDS:
            return ".".join(path[:2])
        if len(path) > 2 and f"call.{path[1]}" not in OPEN_FIELDS:
            return ".".join(path[:3])
        if path[1] == "intercom" and len(path) > 2 and path[2] not in INTERCOM_FIELDS:
            return ".".join(path[:3])
    if head == "intercom" and path[1] not in INTERCOM_FIELDS:
        return ".".join(path[:2])
    return None


@dataclass(frozen=True)
class Never:
    """A rule that can never match, and why."""

    rule: Rule
    reason: str


def never_matching(
    rules: Iterable[Rule], providers: Mapping[str, str], traits: Mapping[str, ProviderTraits]
) -> Iterator[Never]:
    """Rules that no configured provider can ever satisfy (`providers`: name → type; `traits`:
    type → what it can report)."""
    door_types = {kind for kind, t in traits.items() if t.doors}
    for rule in rules:
        types = set(providers.values())
        if rule.providers is not None:
            types &= {providers[p] for p in rule.providers if p in providers}
        if rule.provider_types is not None:
            types &= set(rule.provider_types)
        if not types:
            continue  # nothing configured it could apply to: loading already said so, or later
        if "intercom" in rule.kinds and not types & door_types:
            yield Never(rule, f"{_names(types)} {_verb(types, 'report')} no door status")
            continue
        if "transition" not in rule.kinds and "timer" not in rule.kinds:
            continue
        if rule.to_states is None:
            continue
        possible = set().union(*(traits[t].states for t in types if t in traits))
        if not rule.to_states & possible:
            states = ", ".join(sorted(rule.to_states))
            yield Never(rule, f"{_names(types)} never {_verb(types, 'report')} {states}")
        elif (
            all(traits[t].final_only for t in types if t in traits)
            and rule.from_states is not None
            and None not in rule.from_states
        ):
            yield Never(
                rule, f"{_names(types)} records are final: each call's event comes from nothing"
            )


def _names(types: set[str]) -> str:
    return ", ".join(sorted(types))


def _verb(types: set[str], verb: str) -> str:
    return verb + "s" if len(types) == 1 else verb
