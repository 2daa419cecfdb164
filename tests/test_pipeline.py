"""The pipeline: one transaction per poll, memory only after the commit, metrics per event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor.model import Call, CallState, Intercom, PollResult
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules
from monitor.store import Changes, SqliteStore, StoreError
from monitor.telemetry import Telemetry
from monitor.tracking.pipeline import Pipeline
from monitor.tracking.tracker import Tracker

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class BrokenStore(SqliteStore):
    """A real SQLite store whose commits fail, as a full disk would make them."""

    async def commit(self, changes: Changes) -> int:
        raise StoreError("store: disk full")


def rules(tmp_path: Path) -> Any:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - {name: missed, when: {to: missed}, notify: [chat]}\n")
    return load_rules([path], Context(notifiers=["chat"], providers=[]))


def value(telemetry: Telemetry, name: str, **labels: str) -> float | None:
    return telemetry.registry.get_sample_value(name, labels)


async def test_a_missed_call_is_queued_counted_and_remembered(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    telemetry = Telemetry(CollectorRegistry())
    woken: list[str] = []
    pipeline = Pipeline(store, telemetry, Engine(rules(tmp_path)), {"chat": 2}, wake=woken.append)
    tracker = Tracker("door", "vms-intercom", baselined=True)
    ring = Call(id="1", state=CallState.RINGING, raw_status="ring", created_at=T0, marker="r")
    await pipeline.process(tracker, PollResult(calls=[ring]), T0)
    missed = Call(id="1", state=CallState.MISSED, raw_status="missed", created_at=T0, marker="m")
    await pipeline.process(tracker, PollResult(calls=[missed]), T0.replace(second=30))
    assert woken == ["chat"]
    assert await store.pending_count("chat") == 2  # one per apprise URL
    transitions = "callmon_call_transitions_total"
    assert (
        value(telemetry, transitions, provider="door", from_state="ringing", to_state="missed") == 1
    )
    assert (
        value(telemetry, "callmon_call_ring_seconds_sum", provider="door", outcome="missed") == 30.0
    )
    assert value(telemetry, "callmon_rule_fired_total", rule="missed") == 1
    assert value(telemetry, "callmon_calls_active", provider="door", state="ringing") == 0
    reopened = await store.load_provider("door")
    assert reopened.calls["1"].state is CallState.MISSED
    await store.close()


async def test_a_failed_commit_changes_nothing_so_the_next_poll_repeats_it(
    tmp_path: Path,
) -> None:
    store = BrokenStore(str(tmp_path / "s.db"))
    pipeline = Pipeline(store, Telemetry(CollectorRegistry()), Engine(rules(tmp_path)), {"chat": 1})
    tracker = Tracker("door", "vms-intercom", baselined=True)
    missed = Call(id="1", state=CallState.MISSED, raw_status="missed", created_at=T0, marker="m")
    with pytest.raises(StoreError):
        await pipeline.process(tracker, PollResult(calls=[missed]), T0)
    assert not tracker.knows("1")
    assert len(tracker.diff(PollResult(calls=[missed]), T0).events) == 1
    await store.close()


async def test_door_status_feeds_the_online_gauge(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    telemetry = Telemetry(CollectorRegistry())
    pipeline = Pipeline(store, telemetry, Engine([]), {})
    tracker = Tracker("door", "vms-intercom", baselined=True)
    doors = [Intercom(158, "Front", is_online=True), Intercom(180, "Gate", is_online=False)]
    diff = await pipeline.process(tracker, PollResult(intercoms=doors), T0)
    assert [(e.intercom.id, e.to_state) for e in diff.events if e.intercom] == [(180, "offline")]
    assert value(telemetry, "callmon_intercom_online", provider="door", intercom="158") == 1
    assert value(telemetry, "callmon_intercom_online", provider="door", intercom="180") == 0
    state = await store.load_provider("door")
    assert state.cursor["intercoms"] == {"158": True, "180": False}
    await store.close()


async def test_a_call_first_seen_over_still_counts_its_ring_time(tmp_path: Path) -> None:
    """Finding 8: every answered CINNOX call arrives final; its ring time was never observed."""
    store = SqliteStore(str(tmp_path / "s.db"))
    telemetry = Telemetry(CollectorRegistry())
    pipeline = Pipeline(store, telemetry, Engine([]), {})
    tracker = Tracker("centre", "cinnox", baselined=True)
    ended = Call(
        id="1",
        state=CallState.ENDED,
        raw_status="Call Ended",
        created_at=T0,
        answered_at=T0.replace(second=12),
        ended_at=T0.replace(minute=5),
        marker="Call Ended",
    )
    await pipeline.process(tracker, PollResult(calls=[ended]), T0.replace(minute=6))
    ring = "callmon_call_ring_seconds"
    assert value(telemetry, f"{ring}_count", provider="centre", outcome="answered") == 1
    assert value(telemetry, f"{ring}_sum", provider="centre", outcome="answered") == 12.0
    talk = value(telemetry, "callmon_call_talk_seconds_sum", provider="centre")
    assert talk == 288.0
    await store.close()


class SlowStore(SqliteStore):
    """A real store whose commits take a while, as a remote database's do: each yields to the
    event loop before it lands."""

    async def commit(self, changes: Changes) -> int:
        import asyncio

        await asyncio.sleep(0.05)
        return await super().commit(changes)


async def test_steps_that_overlap_decide_one_after_the_other(tmp_path: Path) -> None:
    """Two providers' polls arrive together; a rule counts missed calls across both. Each step
    decides on the state the other committed (read, decide, commit, apply as one): the second
    call meets the threshold."""
    import asyncio

    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n  - {name: storm, when: {to: missed}, notify: [chat],"
        " threshold: {count: 2, within: 1m}}\n"
    )
    engine = Engine(load_rules([path], Context(notifiers=["chat"], providers=[])))
    store = SlowStore(str(tmp_path / "s.db"))
    pipeline = Pipeline(store, Telemetry(CollectorRegistry()), engine, {"chat": 1})
    doors = [Tracker(name, "vms-intercom", baselined=True) for name in ("a", "b")]
    missed = Call(id="1", state=CallState.MISSED, raw_status="missed", created_at=T0, marker="m")
    await asyncio.gather(
        *(pipeline.process(door, PollResult(calls=[missed]), T0) for door in doors)
    )
    assert await store.pending_count("chat") == 1
    await store.close()


class CountingStore(SqliteStore):
    """A real SQLite store that counts its commits."""

    commits = 0

    async def commit(self, changes: Changes) -> int:
        self.commits += 1
        return await super().commit(changes)


async def test_a_poll_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    """The steady poll of a quiet provider needs no transaction; any change (a call, the
    cursor, a door) still does, and the store holds what memory holds."""
    store = CountingStore(str(tmp_path / "s.db"))
    pipeline = Pipeline(store, Telemetry(CollectorRegistry()), Engine(rules(tmp_path)), {"chat": 1})
    tracker = Tracker("door", "vms-intercom", baselined=True)
    ended = Call(id="1", state=CallState.ENDED, raw_status="ended", created_at=T0, marker="e")
    await pipeline.process(tracker, PollResult(calls=[ended], cursor={"high_id": 1}), T0)
    assert store.commits == 1
    for _ in range(3):
        await pipeline.process(tracker, PollResult(calls=[ended], cursor={"high_id": 1}), T0)
    assert store.commits == 1
    await pipeline.process(tracker, PollResult(calls=[ended], cursor={"high_id": 2}), T0)
    door = PollResult(calls=[ended], intercoms=[Intercom(158, is_online=False)])
    await pipeline.process(tracker, door, T0)
    assert store.commits == 3
    stored = await store.load_provider("door")
    assert stored.cursor["provider"] == {"high_id": 2}
    assert stored.cursor["intercoms"] == {"158": False}
    await store.close()


async def test_providers_past_provider_series_are_summed_under_other(tmp_path: Path) -> None:
    """Detail series stay bounded however many providers a fleet has; every provider keeps
    its own up gauge."""
    store = SqliteStore(str(tmp_path / "s.db"))
    telemetry = Telemetry(CollectorRegistry())
    names = ["a", "b", "c"]
    telemetry.declare(names, ["chat"], [], provider_series=1)
    pipeline = Pipeline(store, telemetry, Engine(rules(tmp_path)), {"chat": 1})
    for name in names:
        tracker = Tracker(name, "vms-intercom", baselined=True)
        ring = Call(id="1", state=CallState.RINGING, raw_status="ring", created_at=T0, marker="r")
        await pipeline.process(tracker, PollResult(calls=[ring]), T0)
        if name == "c":
            missed = Call(id="1", state=CallState.MISSED, raw_status="missed", created_at=T0)
            await pipeline.process(tracker, PollResult(calls=[missed]), T0)
    assert value(telemetry, "callmon_calls_active", provider="a", state="ringing") == 1
    assert value(telemetry, "callmon_calls_active", provider="other", state="ringing") == 1
    assert value(telemetry, "callmon_calls_active", provider="b", state="ringing") is None
    ring_to = {"from_state": "none", "to_state": "ringing"}
    assert value(telemetry, "callmon_call_transitions_total", provider="other", **ring_to) == 2
    assert value(telemetry, "callmon_provider_up", provider="c") == 0  # declared, per provider
    await store.close()


async def test_door_timetables_are_kept_only_for_rules_that_read_them(tmp_path: Path) -> None:
    """A door's timetable from its status gates `during: intercom-timetable`; with no such
    rule in force nothing is kept (ten thousand doors' timetables are tens of MiB)."""
    store = SqliteStore(str(tmp_path / "s.db"))
    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n  - {name: open, when: {to: missed}, during: intercom-timetable, notify: [chat]}\n"
    )
    gated = load_rules([path], Context(notifiers=["chat"], providers=[]))
    pipeline = Pipeline(store, Telemetry(CollectorRegistry()), Engine(rules(tmp_path)), {"chat": 1})
    monday = {"days": [{"type": "monday", "from": "09:00:00+00:00", "to": "10:00:00+00:00"}]}
    door = Intercom(158, "Gate", is_online=True, timetable=monday)
    tracker = Tracker("door", "vms-intercom", baselined=True)
    await pipeline.process(tracker, PollResult(intercoms=[door]), T0)
    assert pipeline._timetables == {}
    pipeline.set_rules(gated)
    await pipeline.process(tracker, PollResult(intercoms=[door]), T0)
    assert set(pipeline._timetables) == {("door", 158)}
    missed = Call("1", CallState.MISSED, "missed", created_at=T0, intercom=door, marker="m")
    await pipeline.process(tracker, PollResult(calls=[missed]), T0)  # Monday 12:00: closed
    assert await store.pending_count("chat") == 0
    await store.close()


async def test_a_drain_of_pushes_that_keep_coming_beats_as_it_goes(tmp_path: Path) -> None:
    """The soak's finding: with pushes arriving as fast as the leader applied them, one drain
    lasted minutes without a beat, its loop was reported hung, and the watchdog exited a leader
    that was working. A drain beats at every batch."""
    import time

    from monitor.telemetry.heartbeat import STORE_SLACK, Heartbeat
    from monitor.tracking.pushes import LOOK_AGAIN, PushIntake

    now = [0.0]
    beat = Heartbeat("pushes", LOOK_AGAIN + STORE_SLACK, lambda: now[0], running=True)
    seen: list[str | None] = []

    class Arriving(SqliteStore):
        """A store to which a push arrives, ten seconds on, each time the drain looks."""

        arrivals = 10

        async def pushes(self, limit: int) -> Any:
            seen.append(beat.problem())
            if self.arrivals:
                self.arrivals -= 1
                now[0] += 10.0
                await self.add_push("gone", "{}", time.time())  # its provider is not configured
            return await super().pushes(limit)

    store = Arriving(str(tmp_path / "s.db"))
    intake = PushIntake(store, Pipeline(store, Telemetry(CollectorRegistry()), Engine([]), {}), {})
    assert await intake.drain(beat) == 10  # each dropped: its provider is not configured
    assert seen == [None] * 11  # 100 s of draining, never hung
    await store.close()
