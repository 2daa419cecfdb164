"""What a poll found, and the few facts kept about each call between polls."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import msgspec

from monitor.model.calls import Call, CallState, Intercom


@dataclass(slots=True)
class PollResult:
    """What one poll found."""

    calls: list[Call] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    intercoms: list[Intercom] = field(default_factory=list)
    skipped: int = 0
    cursor: dict[str, Any] | None = None
    """The provider's new position, stored with the poll; None leaves it as it was."""
    via: str = "poll"
    """`push` for what a provider's webhook said (one call, no cursor)."""
    rechecks_waiting: int = 0
    """Open calls the list no longer shows that this poll had no budget to re-check (the next
    polls do): more than zero poll after poll means the provider cannot keep up."""


def shared(marker: str) -> str:
    """One string object for every call with the same short marker (a VMS status): a hundred
    thousand tracked calls would otherwise hold a hundred thousand copies of `ended`."""
    return sys.intern(marker) if len(marker) <= 24 else marker


class Tracked(msgspec.Struct, frozen=True, gc=False):
    """The few facts kept per call: its state, its change marker and when it was created.

    `gc=False`: a hundred thousand of these hold no references the cycle collector must walk.
    """

    state: CallState
    marker: str
    created: float
