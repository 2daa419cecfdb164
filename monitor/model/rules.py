"""The rule facts other layers keep: where a piece of rule state belongs, and silences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple


class StateKey(NamedTuple):
    """What a piece of rule state is: its rule, its kind (timer, window, …) and its key."""

    rule: str
    kind: str
    key: str


@dataclass(frozen=True)
class Silence:
    """One silence as stored: a rule's alerts whose event fields match are not sent until it
    ends."""

    id: int
    rule: str
    matchers: tuple[tuple[str, str], ...]
    starts: float
    ends: float
    comment: str

    def describe(self) -> str:
        """One line for `callmon silence list`."""
        until = datetime.fromtimestamp(self.ends, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        where = " ".join(f"{k}={v}" for k, v in self.matchers) or "(all its alerts)"
        return f"{self.id}\t{self.rule}\t{where}\tuntil {until}\t{self.comment}"
