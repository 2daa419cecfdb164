"""The tracker's diff: transitions, inferred steps, baseline, horizon and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.model import Call, CallState, PollResult
from monitor.tracking.tracker import Tracker

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def call(cid: str, state: CallState, created: datetime = T0, **kw: object) -> Call:
    return Call(
        id=cid,
        state=state,
        raw_status=state.value,
        created_at=created,
        marker=f"{state.value}|{kw.pop('marker', '')}",
        **kw,
    )  # type: ignore[arg-type]


def steps(tracker: Tracker, calls: list[Call], now: datetime = T0) -> list[tuple[object, ...]]:
    diff = tracker.diff(PollResult(calls=calls), now)
    tracker.apply(diff)
    return [
        (e.call.id if e.call else None, e.from_state, e.to_state, e.inferred) for e in diff.events
    ]


def started() -> Tracker:
    tracker = Tracker("door", "vms-intercom")
    steps(tracker, [])  # the baseline poll: nothing yet
    return tracker


def test_a_call_first_seen_missed_is_one_event_from_none() -> None:
    tracker = started()
    assert steps(tracker, [call("1", CallState.MISSED)]) == [("1", None, "missed", False)]


def test_ringing_then_ended_infers_the_answer() -> None:
    tracker = started()
    steps(tracker, [call("1", CallState.RINGING)])
    assert steps(tracker, [call("1", CallState.ENDED)]) == [
        ("1", "ringing", "answered", True),
        ("1", "answered", "ended", False),
    ]


def test_the_full_observed_lifecycle() -> None:
    tracker = started()
    assert steps(tracker, [call("1", CallState.RINGING)]) == [("1", None, "ringing", False)]
    assert steps(tracker, [call("1", CallState.RINGING)]) == []
    assert steps(tracker, [call("1", CallState.ANSWERED)]) == [("1", "ringing", "answered", False)]
    assert steps(tracker, [call("1", CallState.ENDED)]) == [("1", "answered", "ended", False)]
    assert steps(tracker, [call("1", CallState.ENDED)]) == []
    assert tracker.active_counts() == {}


def test_the_baseline_records_final_calls_without_events() -> None:
    tracker = Tracker("door", "vms-intercom")
    events = steps(tracker, [call("1", CallState.MISSED), call("2", CallState.RINGING)])
    assert events == [("2", None, "ringing", False)]
    assert tracker.knows("1")
    assert steps(tracker, [call("1", CallState.MISSED)]) == []


def test_a_call_older_than_the_horizon_is_recorded_silently() -> None:
    tracker = Tracker("door", "vms-intercom")
    steps(tracker, [call("5", CallState.ENDED, created=T0)])
    old = call("3", CallState.MISSED, created=T0 - timedelta(hours=1))
    assert steps(tracker, [old]) == []
    assert steps(tracker, [call("6", CallState.MISSED, created=T0 + timedelta(seconds=5))]) == [
        ("6", None, "missed", False)
    ]


def test_diff_changes_nothing_until_applied() -> None:
    tracker = started()
    diff = tracker.diff(PollResult(calls=[call("1", CallState.RINGING)]), T0)
    assert not tracker.knows("1")
    assert len(diff.events) == 1
    again = tracker.diff(PollResult(calls=[call("1", CallState.RINGING)]), T0)
    assert len(again.events) == 1


def test_a_final_state_is_final() -> None:
    tracker = started()
    steps(tracker, [call("1", CallState.MISSED)])
    assert steps(tracker, [call("1", CallState.RINGING)]) == []
    assert steps(tracker, [call("1", CallState.ENDED)]) == []


def test_a_record_going_backwards_keeps_the_later_state() -> None:
    tracker = started()
    steps(tracker, [call("1", CallState.ANSWERED)])
    assert steps(tracker, [call("1", CallState.RINGING)]) == []
    assert tracker.calls["1"].state is CallState.ANSWERED


def test_an_observed_end_fills_ended_at_when_the_provider_gives_none() -> None:
    tracker = started()
    steps(tracker, [call("1", CallState.RINGING)])
    later = T0 + timedelta(seconds=30)
    diff = tracker.diff(PollResult(calls=[call("1", CallState.MISSED)]), later)
    (event,) = diff.events
    assert event.call is not None
    assert event.call.ring_seconds == 30.0
    assert event.at == later


def test_final_calls_are_forgotten_after_retention_and_not_alerted_again() -> None:
    tracker = Tracker("door", "vms-intercom", retention=3600)
    steps(tracker, [])
    steps(tracker, [call("1", CallState.MISSED), call("2", CallState.RINGING)])
    later = T0 + timedelta(hours=2)
    steps(tracker, [], now=later)
    assert not tracker.knows("1")
    assert tracker.knows("2")  # not final: kept
    assert steps(tracker, [call("1", CallState.MISSED)], now=later + timedelta(hours=1)) == []


def test_gone_calls_are_dropped() -> None:
    tracker = started()
    steps(tracker, [call("1", CallState.RINGING)])
    diff = tracker.diff(PollResult(gone=["1"]), T0)
    tracker.apply(diff)
    assert not tracker.knows("1")
    assert list(tracker.open_calls()) == []


def test_a_pushed_change_without_a_start_time_keeps_the_call_s_ring_time() -> None:
    """A Bandwidth hangup says when the call ended, not when it began: the tracked start
    stands in, so `call.ring_seconds` still reads in templates."""
    tracker = started()
    tracker.apply(tracker.diff(PollResult(calls=[call("1", CallState.RINGING)]), T0))
    hangup = Call(
        id="1",
        state=CallState.MISSED,
        raw_status="completed",
        created_at=None,
        ended_at=T0 + timedelta(seconds=20),
        marker="push|hangup",
    )
    (event,) = tracker.diff(PollResult(calls=[hangup], via="push"), T0).events
    assert event.via == "push"
    assert event.call is not None
    assert event.call.created_at == T0
    assert event.call.ring_seconds == 20
