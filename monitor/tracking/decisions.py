"""The decision record of a step (what `callmon explain` tells): each event, then each rule's
verdict on it, written in the same transaction as the state it explains."""

from __future__ import annotations

import time
from collections.abc import Sequence

from monitor.model import Event
from monitor.rules.run import Outcome, Verdict, subject
from monitor.store import Decision


def decisions(events: Sequence[Event], outcome: Outcome) -> list[Decision]:
    """The decision record of a step: each event it saw, followed by each rule's verdict on it
    (a timer's event comes from its verdict)."""
    decided = time.time()
    by_event: dict[int, list[Verdict]] = {id(event): [] for event in events}
    seen: list[Event] = list(events)
    for verdict in (*outcome.verdicts, *outcome.misses()):
        if id(verdict.event) not in by_event:
            by_event[id(verdict.event)] = []
            seen.append(verdict.event)
        by_event[id(verdict.event)].append(verdict)
    rows: list[Decision] = []
    for event in seen:
        rows.append(_decision(decided, event))
        rows.extend(_decision(decided, event, v) for v in by_event[id(event)])
    return rows


def _decision(decided: float, event: Event, verdict: Verdict | None = None) -> Decision:
    return Decision(
        decided,
        event.provider,
        event.call.id if event.call is not None else None,
        subject(event),
        str(event.kind),
        event.from_state,
        event.to_state,
        event.via,
        event.at.timestamp(),
        *((verdict.rule, verdict.verdict, verdict.detail, verdict.alert) if verdict else ()),
    )
