"""Rule state (timers, windows, throttles, buffers) as keyed JSON-able values, changed in steps.

The engine reads through a `Step`, which records every change; the pipeline stores the changes
in the same transaction as the alerts they caused, and only then applies them to memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple


class StateKey(NamedTuple):
    """What a piece of rule state is: its rule, its kind (timer, window, …) and its key."""

    rule: str
    kind: str
    key: str


class RuleState:
    """All rule state, in memory, as the store last committed it."""

    def __init__(self, entries: Mapping[StateKey, Any] | None = None) -> None:
        self.entries: dict[StateKey, Any] = dict(entries or {})

    def step(self) -> Step:
        """A change set on top of the current state."""
        return Step(self)

    def apply(self, changes: Mapping[StateKey, Any]) -> None:
        """Make committed changes the state (None deletes)."""
        for key, value in changes.items():
            if value is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = value

    def of_kind(self, kind: str) -> Iterator[tuple[StateKey, Any]]:
        """Every entry of one kind."""
        return ((k, v) for k, v in list(self.entries.items()) if k.kind == kind)

    def forget_rules(self, keep: set[str]) -> dict[StateKey, Any]:
        """Changes that drop the state of every rule not in `keep` (after a reload)."""
        return {k: None for k in self.entries if k.rule not in keep}


class Step:
    """Reads see earlier writes of the same step; `changes` is what to store."""

    def __init__(self, base: RuleState) -> None:
        self._base = base
        self.changes: dict[StateKey, Any] = {}

    def get(self, key: StateKey) -> Any:
        if key in self.changes:
            return self.changes[key]
        return self._base.entries.get(key)

    def put(self, key: StateKey, value: Any) -> None:
        self.changes[key] = value

    def delete(self, key: StateKey) -> None:
        if self.get(key) is not None:
            self.changes[key] = None

    def of_kind(self, kind: str) -> Iterator[tuple[StateKey, Any]]:
        """Entries of one kind as this step sees them."""
        seen = set()
        for key, value in self.changes.items():
            if key.kind == kind and value is not None:
                seen.add(key)
                yield key, value
        for key, value in self._base.of_kind(kind):
            if key not in seen and key not in self.changes:
                yield key, value
