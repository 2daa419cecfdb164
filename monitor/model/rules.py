"""The rule facts other layers keep: where a piece of rule state belongs, and silences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import NamedTuple

LATEST = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
"""The latest moment shown as a date; a later one (a silence stored by an older callmon that
let any duration through) is shown as this rather than breaking the page or list it is on."""


def moment(ts: float, zone: tzinfo = UTC) -> datetime:
    """A stored time as a date in `zone`, whatever the number (clamped to years 1970–9000)."""
    return datetime.fromtimestamp(min(max(ts, 0.0), LATEST), zone)


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
        until = moment(self.ends).strftime("%Y-%m-%d %H:%M:%SZ")
        where = " ".join(f"{k}={v}" for k, v in self.matchers) or "(all its alerts)"
        return f"{self.id}\t{self.rule}\t{where}\tuntil {until}\t{self.comment}"
