"""The diff at the heart of callmon: what was known + what a poll found + now → events.

`Tracker.diff` is pure: it reads the tracker and returns a `Diff` (events, rows to store, rows to
forget) without changing anything. The pipeline commits the diff to the store first and only then
`apply`s it, so memory never runs ahead of what survives a crash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from monitor.model import (
    Call,
    CallState,
    Event,
    EventKind,
    Intercom,
    PollResult,
    Tracked,
    shared,
)

_RANK = {CallState.RINGING: 0, CallState.ANSWERED: 1}
PRUNE_EVERY = 600.0
"""Seconds between sweeps that forget final calls older than the retention period."""


@dataclass(slots=True)
class Diff:
    """The outcome of one poll: events to emit and the changes to store, then to apply."""

    events: list[Event] = field(default_factory=list)
    upserts: dict[str, Tracked] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    horizon: float | None = None
    """Unknown calls created before this are history, recorded without events."""
    cursor: dict[str, Any] = field(default_factory=dict)
    intercoms: dict[str, bool] = field(default_factory=dict)
    baseline: bool = False
    pruned_at: float | None = None
    delays: list[float] = field(default_factory=list)
    """For each event with the provider's own time of the change: seconds from it to now."""

    def stored(self) -> dict[str, Any]:
        """What the store keeps of this diff besides the calls (`Tracker.from_store` reads it)."""
        return {
            "baselined": True,
            "horizon": self.horizon,
            "provider": self.cursor,
            "intercoms": self.intercoms,
        }


class Tracker:
    """The known calls of one provider, in memory, mirrored in the store."""

    def __init__(
        self,
        provider: str,
        provider_type: str,
        calls: Mapping[str, Tracked] | None = None,
        *,
        horizon: float | None = None,
        baselined: bool = False,
        retention: float = 7 * 86400.0,
        cursor: Mapping[str, Any] | None = None,
        intercoms: Mapping[str, bool] | None = None,
    ) -> None:
        self.provider = provider
        self.provider_type = provider_type
        self.calls: dict[str, Tracked] = dict(calls or {})
        self.horizon = horizon
        self.baselined = baselined
        self.retention = retention
        self.cursor: dict[str, Any] = dict(cursor or {})
        self.intercoms: dict[str, bool] = dict(intercoms or {})
        self._open = {cid for cid, t in self.calls.items() if not t.state.terminal}
        self._next_prune = 0.0

    # TrackedView, for providers
    @classmethod
    def from_store(
        cls,
        provider: str,
        provider_type: str,
        calls: Mapping[str, Tracked],
        stored: Mapping[str, Any],
        retention: float,
    ) -> Tracker:
        """A tracker as the store left it (see `Diff.stored`)."""
        return cls(
            provider,
            provider_type,
            calls,
            horizon=stored.get("horizon"),
            baselined=bool(stored.get("baselined")),
            retention=retention,
            cursor=stored.get("provider"),
            intercoms=stored.get("intercoms"),
        )

    def knows(self, call_id: str) -> bool:
        """Whether `call_id` is tracked."""
        return call_id in self.calls

    def open_calls(self) -> Iterable[str]:
        """Ids of calls not final yet, the oldest call first."""
        calls = self.calls
        return sorted(self._open, key=lambda cid: calls[cid].created)

    def changed(self, call: Call) -> bool:
        """Whether `call` is news: unknown and not older than the horizon, or changed."""
        tracked = self.calls.get(call.id)
        if tracked is None:
            created = call.created_at.timestamp() if call.created_at else None
            return self.horizon is None or created is None or created >= self.horizon
        return tracked.marker != call.marker or tracked.state is not call.state

    def active_counts(self) -> Counter[CallState]:
        """How many tracked calls are in each non-final state."""
        return Counter(self.calls[cid].state for cid in self._open)

    def diff(self, result: PollResult, now: datetime) -> Diff:
        """The events and stored changes one poll's result implies; changes nothing."""
        out = Diff(
            horizon=self.horizon,
            baseline=not self.baselined,
            cursor=self.cursor if result.cursor is None else result.cursor,
            intercoms=self.intercoms,
        )
        now_ts = now.timestamp()
        if out.baseline:
            created = [c.created_at.timestamp() for c in result.calls if c.created_at]
            out.horizon = min(created) if created else None
        for call in result.calls:
            prev = out.upserts.get(call.id) or self.calls.get(call.id)
            created_ts = call.created_at.timestamp() if call.created_at else now_ts
            if prev is None:
                out.upserts[call.id] = Tracked(call.state, shared(call.marker), created_ts)
                quiet = out.baseline and call.state.terminal
                too_old = not out.baseline and out.horizon is not None and created_ts < out.horizon
                if not (quiet or too_old):
                    out.events.append(self._event(call, None, call.state, now, via=result.via))
                    _delay(out, call, call.state, now_ts)
                continue
            if prev.state == call.state and prev.marker == call.marker:
                continue
            marker = shared(call.marker)
            out.upserts[call.id] = Tracked(
                prev.state if prev.state.terminal else call.state, marker, prev.created
            )
            if prev.state.terminal or prev.state == call.state:
                continue
            if _RANK.get(call.state, 2) < _RANK[prev.state]:
                out.upserts[call.id] = Tracked(prev.state, marker, prev.created)
                continue  # a record going backwards: keep the state we had
            if call.created_at is None:
                # A push tells of the change only (a Bandwidth hangup): the call began when
                # it was first seen, so its ring time still counts.
                start = datetime.fromtimestamp(prev.created, UTC)
                call = msgspec.structs.replace(call, created_at=start)
            _delay(out, call, call.state, now_ts)
            if call.state.terminal and call.ended_at is None:
                call = msgspec.structs.replace(call, ended_at=now.astimezone(UTC))  # observed
            if prev.state is CallState.RINGING and call.state is CallState.ENDED:
                out.events.append(
                    self._event(
                        call, prev.state, CallState.ANSWERED, now, inferred=True, via=result.via
                    )
                )
                out.events.append(
                    self._event(call, CallState.ANSWERED, call.state, now, via=result.via)
                )
            else:
                out.events.append(self._event(call, prev.state, call.state, now, via=result.via))
        out.deletes.extend(cid for cid in result.gone if cid in self.calls)
        if result.intercoms:
            self._intercom_events(out, result.intercoms, now)
        if now_ts >= self._next_prune:
            self._prune(out, now_ts)
        return out

    def _intercom_events(self, out: Diff, intercoms: Iterable[Intercom], now: datetime) -> None:
        """Online/offline changes; a door first seen offline (after the baseline) is news too."""
        out.intercoms = dict(self.intercoms)
        for door in intercoms:
            if door.is_online is None:
                continue
            key = str(door.id)
            before = self.intercoms.get(key)
            out.intercoms[key] = door.is_online
            if before == door.is_online or (before is None and (door.is_online or out.baseline)):
                continue
            out.events.append(
                Event(
                    kind=EventKind.INTERCOM,
                    provider=self.provider,
                    provider_type=self.provider_type,
                    from_state=None if before is None else ("online" if before else "offline"),
                    to_state="online" if door.is_online else "offline",
                    at=now.astimezone(UTC),
                    intercom=door,
                )
            )

    def _prune(self, out: Diff, now_ts: float) -> None:
        cutoff = now_ts - self.retention
        forgotten = [
            (cid, t.created)
            for cid, t in self.calls.items()
            if t.state.terminal and t.created < cutoff and cid not in out.upserts
        ]
        out.deletes.extend(cid for cid, _ in forgotten)
        if forgotten:
            # Calls created before this were seen (or were history at the baseline); a second
            # of margin covers providers whose timestamps have whole seconds.
            newest = max(created for _, created in forgotten) + 1.0
            out.horizon = max(out.horizon or newest, newest)
        out.pruned_at = now_ts

    def stores_nothing(self, diff: Diff) -> bool:
        """Whether `diff` leaves the stored state as it is (no call, cursor or door changed):
        the steady poll of a quiet provider, which needs no write at all."""
        return (
            not (diff.upserts or diff.deletes or diff.events or diff.baseline)
            and diff.horizon == self.horizon
            and diff.cursor == self.cursor
            and diff.intercoms == self.intercoms
        )

    def apply(self, diff: Diff) -> None:
        """Make a committed diff the tracker's state."""
        for cid, tracked in diff.upserts.items():
            self.calls[cid] = tracked
            if tracked.state.terminal:
                self._open.discard(cid)
            else:
                self._open.add(cid)
        for cid in diff.deletes:
            self.calls.pop(cid, None)
            self._open.discard(cid)
        self.horizon = diff.horizon
        self.cursor = diff.cursor
        self.intercoms = diff.intercoms
        self.baselined = True
        if diff.pruned_at is not None:
            self._next_prune = diff.pruned_at + PRUNE_EVERY

    def _event(
        self,
        call: Call,
        from_state: CallState | None,
        to_state: CallState,
        now: datetime,
        *,
        inferred: bool = False,
        via: str = "poll",
    ) -> Event:
        return Event(
            kind=EventKind.TRANSITION,
            provider=self.provider,
            provider_type=self.provider_type,
            from_state=None if from_state is None else str(from_state),
            to_state=str(to_state),
            at=_when(call, to_state) or now.astimezone(UTC),
            inferred=inferred,
            call=call,
            via=via,
        )


def _delay(out: Diff, call: Call, state: CallState, now_ts: float) -> None:
    """Count how long after the provider's own time of a change callmon learned of it (when the
    provider gave that time)."""
    told = _when(call, state)
    if told is not None:
        out.delays.append(max(0.0, now_ts - told.timestamp()))


def _when(call: Call, state: CallState) -> datetime | None:
    """The provider's own time for entering `state`, when it gave one."""
    if state is CallState.RINGING:
        return call.created_at
    if state is CallState.ANSWERED:
        return call.answered_at
    return call.ended_at
