"""Rule state (timers, windows, throttles, batches), typed, and changed in steps.

Each piece of state is keyed by a `StateKey` (rule, kind, key) and is one of the structs below,
chosen by its kind. The engine reads through a `Step`, which records every change; the pipeline
stores the changes (encoded as JSON) in the same transaction as the alerts they caused, and only
then applies them to memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import msgspec

from monitor.model import Event, StateKey


class Item(msgspec.Struct):
    """One alert as decided, before it is sent: held in groups, digests and backlogs."""

    key: str
    title: str
    body: str
    at: float
    """When what it is about happened (the provider's time)."""
    provider: str | None
    severity: str
    story: str | None = None
    """The call's story under the page (`calls/PROVIDER/ID`), for an alert about one call."""


class Timer(msgspec.Struct):
    """A `for:` timer: the event that started it, and when it is due."""

    due: float
    event: Event


class Batch(msgspec.Struct):
    """Alerts held for a `group` (until `due` or full) or for `quiet` hours (until they end)."""

    due: float
    items: list[Item]


class Firing(msgspec.Struct):
    """A `resolve:` rule's alert that is firing, to be resolved when its subject recovers."""

    title: str


State = msgspec.Struct
"""A piece of rule state: a `Timer`, a `Batch`, a `Firing`, or a stage's own (see `KINDS`)."""
KINDS: dict[str, type[Any]] = {
    "timer": Timer,
    "group": Batch,
    "quiet": Batch,
    "firing": Firing,
}
"""The struct of each kind of state; the rule stages add theirs (`register`)."""
S = TypeVar("S", bound=msgspec.Struct)


def register(kinds: Mapping[str, type[Any]]) -> None:
    """Make a stage's kinds of state known to the store's codec."""
    KINDS.update(kinds)


def encode(value: State | None) -> str | None:
    """A piece of state as the store keeps it: JSON text (None deletes)."""
    if value is None:
        return None
    if isinstance(value, Timer) and value.event.call is not None and value.event.call.raw:
        # A call's untouched payload can be large and is not needed to fire a timer.
        call = msgspec.structs.replace(value.event.call, raw={})
        value = Timer(value.due, msgspec.structs.replace(value.event, call=call))
    return msgspec.json.encode(value).decode()


def decode(key: StateKey, text: str) -> State:
    """A stored piece of state as its struct; raises `msgspec.DecodeError` when unreadable."""
    data = msgspec.json.decode(text)
    if key.kind == "timer" and isinstance(data, dict) and isinstance(data.get("event"), str):
        data["event"] = msgspec.json.decode(data["event"])  # callmon 0.1.0 nested the JSON
    converted: State = msgspec.convert(data, KINDS[key.kind])
    return converted


def encode_changes(changes: Mapping[StateKey, State | None]) -> dict[StateKey, str | None]:
    """A step's changes as the store writes them."""
    return {key: encode(value) for key, value in changes.items()}


class RuleState:
    """All rule state, in memory, as the store last committed it."""

    def __init__(self, entries: Mapping[StateKey, State] | None = None) -> None:
        self.entries: dict[StateKey, State] = dict(entries or {})

    @classmethod
    def load(cls, stored: Mapping[StateKey, str]) -> tuple[RuleState, list[StateKey]]:
        """The state from what the store holds, and the keys whose value could not be read
        (of a kind this version does not know, or garbled): those are dropped."""
        entries, unreadable = {}, []
        for key, text in stored.items():
            try:
                entries[key] = decode(key, text)
            except (KeyError, msgspec.DecodeError, msgspec.ValidationError):
                unreadable.append(key)
        return cls(entries), unreadable

    def step(self) -> Step:
        """A change set on top of the current state."""
        return Step(self)

    def apply(self, changes: Mapping[StateKey, State | None]) -> None:
        """Make committed changes the state (None deletes)."""
        for key, value in changes.items():
            if value is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = value

    def of_kind(self, kind: str) -> Iterator[tuple[StateKey, State]]:
        """Every entry of one kind."""
        return ((k, v) for k, v in list(self.entries.items()) if k.kind == kind)

    def forget_rules(self, keep: set[str]) -> dict[StateKey, State | None]:
        """Changes that drop the state of every rule not in `keep` (after a reload)."""
        return {k: None for k in self.entries if k.rule not in keep}


class Step:
    """Reads see earlier writes of the same step; `changes` is what to store."""

    def __init__(self, base: RuleState) -> None:
        self._base = base
        self.changes: dict[StateKey, State | None] = {}

    def get(self, key: StateKey, kind: type[S]) -> S | None:
        """The state at `key` (of the struct `kind` its key's kind implies), or None."""
        value = self.changes[key] if key in self.changes else self._base.entries.get(key)
        return value if isinstance(value, kind) else None

    def put(self, key: StateKey, value: State) -> None:
        self.changes[key] = value

    def delete(self, key: StateKey) -> None:
        current = self.changes[key] if key in self.changes else self._base.entries.get(key)
        if current is not None:
            self.changes[key] = None

    def of_kind(self, kind: str) -> Iterator[tuple[StateKey, State]]:
        """Entries of one kind as this step sees them."""
        seen = set()
        for key, value in list(self.changes.items()):
            if key.kind == kind and value is not None:
                seen.add(key)
                yield key, value
        for key, value in self._base.of_kind(kind):
            if key not in seen and key not in self.changes:
                yield key, value
