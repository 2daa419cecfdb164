"""A made-up missed call, for `callmon notify test --rule`: what a rule's alert reads like
before a real call rings."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.model import Call, CallState, Event, EventKind, Intercom


def missed_call(provider: str, provider_type: str, now: datetime) -> Event:
    """A call that rang for 30 seconds and was not answered (at a door, for a provider of
    doors), ending `now`."""
    doors = provider_type == "vms-intercom"
    door = Intercom(158, "Front door", "1 Main Street", True) if doors else None
    call = Call(
        id="test-call",
        state=CallState.MISSED,
        raw_status="missed",
        created_at=now - timedelta(seconds=30),
        ended_at=now,
        direction="inbound",
        from_number="+4915112345678",
        to_number="+4930123456",
        intercom=door,
    )
    return Event(
        EventKind.TRANSITION,
        provider,
        provider_type,
        CallState.MISSED.value,
        now,
        from_state=CallState.RINGING.value,
        call=call,
    )
