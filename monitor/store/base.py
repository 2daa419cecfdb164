"""The store's small interface: tracked calls, cursors, rule state, silences, pushes and the outbox.

The store knows only the domain types (`monitor.model`): rule state reaches it as JSON text, a
step's writes as one `Changes`, committed in one transaction.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.model import Alert, StateKey, Tracked


def display(url: str) -> str:
    """A store's URL as it may be shown: without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1@", url)


class StoreError(Exception):
    """The store could not be opened, read or written. Every store method raises only this."""


class StoreNotFound(StoreError):
    """A tool expected an existing store and found none (it never creates an empty one)."""


class LeaseLost(StoreError):
    """A write of a replica that no longer leads: refused, nothing changed (another replica took
    the lease over, or this one let it lapse)."""


RECOVERED_AFTER = 15.0
"""The store works again once this many seconds passed without a failed operation: a disk
that is full fails the large writes while small ones still succeed, and such a store is
failing all along, not recovering at every small success."""


class StoreHealth:
    """Whether the store works, from the outcome of every operation: since when it fails."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self._last_failure = 0.0

    def ok(self) -> None:
        """An operation succeeded: the store works again, unless another failed lately."""
        if self.failing_since is None:
            return
        if self._clock() - self._last_failure >= RECOVERED_AFTER:
            self.failing_since = None
            self.last_error = None

    def failed(self, error: str) -> None:
        """An operation failed; the failure started with the first of a run of them."""
        now = self._last_failure = self._clock()
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = error

    def failing_for(self) -> float:
        """Seconds the store has been failing without a success in between (0 when healthy)."""
        return 0.0 if self.failing_since is None else self._clock() - self.failing_since


@dataclass(frozen=True, slots=True)
class ProviderState:
    """What the store holds for one provider."""

    calls: dict[str, Tracked] = field(default_factory=dict)
    cursor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert for one target of a notifier (an apprise URL), as queued in the outbox."""

    alert: Alert
    target: int

    @property
    def key(self) -> str:
        """The outbox's idempotency key."""
        return f"{self.alert.key}#{self.target}"


@dataclass(frozen=True, slots=True)
class CallChanges:
    """What a poll changes of one provider's tracked calls, and its new cursor."""

    provider: str
    upserts: Mapping[str, Tracked] = field(default_factory=dict)
    deletes: Sequence[str] = ()
    cursor: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """One row of the decision record: an event (`rule` None) or a rule's verdict on it."""

    decided_at: float
    provider: str
    call_id: str | None
    subject: str
    kind: str
    from_state: str | None
    to_state: str
    via: str
    at: float
    rule: str | None = None
    verdict: str | None = None
    detail: str = ""
    alert: str | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything one step writes, in one transaction: a provider's calls and cursor (after a
    poll), rule state (JSON text; None deletes) and new deliveries."""

    calls: CallChanges | None = None
    rules: Mapping[StateKey, str | None] = field(default_factory=dict)
    deliveries: Sequence[Delivery] = ()
    pushes_done: Sequence[int] = ()
    """Stored pushes this step applied: deleted with it."""
    decisions: Sequence[Decision] = ()
    """What the step saw and each rule decided, for `callmon explain`."""
    tally: Sequence[Tally] = ()
    """Calls that ended in this step, counted into the page's hourly history."""

    def __bool__(self) -> bool:
        return bool(
            self.calls
            or self.rules
            or self.deliveries
            or self.pushes_done
            or self.decisions
            or self.tally
        )


@dataclass(frozen=True, slots=True)
class Tally:
    """Calls of one door (`""`: a provider without doors) that ended in one hour: answered and
    missed, added to what the store counted before."""

    provider: str
    door: str
    hour: float
    """The start of the hour the calls began in (seconds since the epoch, UTC)."""
    answered: int = 0
    missed: int = 0


@dataclass(frozen=True, slots=True)
class Push:
    """A provider's push, authenticated and kept until the leader applies it."""

    id: int
    provider: str
    body: str
    received_at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at delivering an outbox entry."""

    at: float
    outcome: str
    """`sent`, `failed` or `dead` (given up)."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A queued delivery with its bookkeeping."""

    id: int
    notifier: str
    target: int
    rule: str
    severity: str
    title: str
    body: str
    created_at: float
    attempts: int
    status: str
    last_error: str | None
    event_at: float | None = None
    story: str | None = None
    """The call's story under the page, for a message about one call."""
    tries: tuple[Attempt, ...] = ()
    """Each attempt, oldest first (filled where a call's story is read)."""
