"""Calls and what happens to them: canonical states, calls, doors, events and alerts.

The types are `msgspec.Struct`s: frozen like dataclasses, but several times cheaper to create,
which matters for a page of 500 records. Providers build `Call`s at their boundary; the tracker
turns them into `Event`s; rules and templates read an event's fields through `Event.as_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec


class CallState(StrEnum):
    """The canonical call state machine (PROVIDERS.md)."""

    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"
    MISSED = "missed"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """Whether the call can no longer change state."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {CallState.ENDED, CallState.MISSED, CallState.REJECTED, CallState.FAILED}
)


class EventKind(StrEnum):
    """What an event is about."""

    TRANSITION = "transition"
    TIMER = "timer"
    INTERCOM = "intercom"
    PROVIDER = "provider"


class Severity(StrEnum):
    """How urgent an alert is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Intercom(msgspec.Struct, frozen=True):
    """A door station as the VMS intercom API describes it."""

    id: int
    title: str | None = None
    address: str | None = None
    is_online: bool | None = None
    timetable: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The intercom as template and rule fields."""
        return {
            "id": self.id,
            "title": self.title,
            "address": self.address,
            "is_online": self.is_online,
            "timetable": self.timetable,
        }


class Call(msgspec.Struct, frozen=True):
    """One call as a provider reported it, mapped onto the canonical states.

    `marker` changes whenever the provider's record changes in a way worth re-examining (an
    `updatedAt`, an end time); the tracker compares it with what it stored.
    """

    id: str
    state: CallState
    raw_status: str
    created_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    direction: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    intercom: Intercom | None = None
    marker: str = ""
    raw: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def ring_seconds(self) -> float | None:
        """Seconds from creation until answered, or until the end for an unanswered call."""
        if self.created_at is None:
            return None
        stop = self.answered_at or self.ended_at
        return None if stop is None else max(0.0, (stop - self.created_at).total_seconds())

    @property
    def talk_seconds(self) -> float | None:
        """Seconds from answer to end, for a call that was answered and has ended."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.answered_at).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        """The call as template and rule fields (SPEC "Events")."""
        return {
            "id": self.id,
            "state": str(self.state),
            "raw_status": self.raw_status,
            "direction": self.direction,
            "from": self.from_number,
            "to": self.to_number,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "ring_seconds": self.ring_seconds,
            "talk_seconds": self.talk_seconds,
            "intercom": self.intercom.as_dict() if self.intercom else None,
            "raw": self.raw,
        }


class Event(msgspec.Struct, frozen=True):
    """One change the tracker saw: a call transition, a timer, an intercom or provider change."""

    kind: EventKind
    provider: str
    """The provider's name in the config; `provider_type` is its API."""
    provider_type: str
    to_state: str
    """The state entered (`up`/`down`, `online`/`offline` for providers and doors)."""
    at: datetime
    from_state: str | None = None
    """The state left; None for a call first seen."""
    inferred: bool = False
    """The step was implied, not observed (ringing → ended between polls implies answered)."""
    call: Call | None = None
    intercom: Intercom | None = None
    reason: str | None = None
    """Why a provider went down, secrets removed."""
    via: str = "poll"
    """How callmon learned of it: `poll`, or `push` (a provider's webhook)."""

    def as_dict(self) -> dict[str, Any]:
        """The event as the nested fields rules and templates read (SPEC "Events")."""
        return {
            "kind": str(self.kind),
            "provider": self.provider,
            "provider_type": self.provider_type,
            "from": self.from_state,
            "to": self.to_state,
            "inferred": self.inferred,
            "at": self.at,
            "call": self.call.as_dict() if self.call else None,
            "intercom": self.intercom.as_dict() if self.intercom else None,
            "reason": self.reason,
            "via": self.via,
        }


class Alert(msgspec.Struct, frozen=True):
    """A rule's decision to notify, rendered and ready for the outbox.

    `key` identifies the decision so that the same event never yields the same alert twice.
    """

    key: str
    rule: str
    notifier: str
    severity: Severity
    title: str
    body: str
    created_at: datetime
    event_at: datetime | None = None
    """When what the alert is about happened (the provider's time), for delivery latency."""
    story: str | None = None
    """The call's story under the page (`calls/PROVIDER/ID`): a message links to it, or to the
    page itself when it is about no one call."""
