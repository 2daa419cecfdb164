"""The store's contract, on both backends (a real SQLite file, a real PostgreSQL server): one
transaction per poll, an idempotent outbox, ordered delivery, silences, copying, upgrades."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from monitor.model import Alert, CallState, Severity, Tracked
from monitor.store import (
    CallChanges,
    Changes,
    Decision,
    Delivery,
    SqliteStore,
    open_store,
    schema,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def alert(key: str, title: str = "t") -> Alert:
    return Alert(
        key=key,
        rule="r",
        notifier="chat",
        severity=Severity.WARNING,
        title=title,
        body="b",
        created_at=T0,
    )


async def test_a_commit_survives_reopening(store_url: str) -> None:
    store = await open_store(store_url)
    upserts = {
        "1": Tracked(CallState.RINGING, "ring|", 1.0),
        "2": Tracked(CallState.MISSED, "missed|", 2.0),
    }
    calls = CallChanges("door", upserts, cursor={"baselined": True, "horizon": 1.5})
    queued = await store.commit(Changes(calls, deliveries=[Delivery(alert("a"), 0)]))
    assert queued == 1
    await store.commit(Changes(CallChanges("door", deletes=["2"], cursor={"baselined": True})))
    await store.close()

    store = await open_store(store_url, create=False)
    state = await store.load_provider("door")
    assert state.calls == {"1": Tracked(CallState.RINGING, "ring|", 1.0)}
    assert state.cursor == {"baselined": True}
    assert [i.title for i in await store.due("chat", 0, T0.timestamp(), 10)] == ["t"]
    assert (await store.load_provider("other")).calls == {}
    await store.close()


async def test_the_same_alert_is_queued_once(store_url: str) -> None:
    store = await open_store(store_url)
    deliveries = [Delivery(alert("a"), 0), Delivery(alert("a"), 1)]
    assert await store.commit(Changes(CallChanges("door"), deliveries=deliveries)) == 2
    assert await store.commit(Changes(CallChanges("door"), deliveries=deliveries)) == 0
    assert await store.enqueue(deliveries) == 0
    assert await store.pending_count("chat") == 2
    await store.close()


async def test_a_failed_head_holds_back_its_queue_to_keep_order(store_url: str) -> None:
    store = await open_store(store_url)
    await store.enqueue([Delivery(alert("a", "first"), 0), Delivery(alert("b", "second"), 0)])
    now = T0.timestamp()
    first, second = await store.due("chat", 0, now, 10)
    await store.mark_failed(first.id, now + 30, "failed: refused")
    assert await store.due("chat", 0, now + 1, 10) == []
    assert await store.next_due("chat", 0) == now + 30
    retry = await store.due("chat", 0, now + 31, 10)
    assert [i.title for i in retry] == ["first", "second"]
    assert retry[0].attempts == 1
    assert retry[0].last_error == "failed: refused"
    await store.mark_sent(first.id, now + 31)
    await store.mark_sent(second.id, now + 31)
    assert await store.pending_count("chat") == 0
    assert [i.status for i in await store.outbox()] == ["sent", "sent"]
    await store.close()


FIXTURES = Path(__file__).parent / "fixtures" / "store"


async def test_a_store_written_by_callmon_0_1_0_is_upgraded_and_reads_as_it_was(
    tmp_path: Path,
) -> None:
    """tests/fixtures/store/callmon-0.1.0.db was written by the 0.1.0 release's own code."""
    import shutil
    import sqlite3

    from monitor.rules.state import RuleState, Timer

    path = tmp_path / "old.db"
    shutil.copy(FIXTURES / "callmon-0.1.0.db", path)
    store = SqliteStore(str(path))
    state = await store.load_provider("front-door")
    assert state.calls["1001"].state is CallState.RINGING
    assert state.cursor["provider"] == {"doors": [158, 180]}
    rules, unreadable = RuleState.load(await store.load_rule_state())
    assert unreadable == []
    timers = [v for v in rules.entries.values() if isinstance(v, Timer)]
    assert timers[0].event.call is not None
    assert timers[0].event.call.intercom is not None  # 0.1.0 nested the event as JSON text
    assert [(i.status, i.attempts) for i in await store.outbox()] == [
        ("sent", 1),
        ("dead", 0),
        ("pending", 1),
    ]
    (silence,) = await store.silences()
    assert silence.matchers == (("call.intercom.id", "180"),)
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(schema.VERSION,)]
    db.close()


async def test_a_store_written_by_a_newer_callmon_is_refused(tmp_path: Path) -> None:
    import sqlite3

    from monitor.store import StoreError

    path = tmp_path / "new.db"
    await SqliteStore(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    try:
        SqliteStore(str(path))
    except StoreError as exc:
        message = str(exc)
    else:
        message = "opened"
    assert message == (
        f"cannot open store {path}: the store is at schema version 99, newer than this "
        f"callmon's {schema.VERSION}: upgrade callmon, or use a store it wrote"
    )


async def test_silences_are_added_listed_and_removed(store_url: str) -> None:
    store = await open_store(store_url)
    first = await store.add_silence("missed", [("call.intercom.id", "158")], 10.0, 20.0, "works")
    second = await store.add_silence("*", [], 10.0, 40.0, "")
    assert second > first
    assert [s.id for s in await store.silences(15.0)] == [first, second]
    assert [s.id for s in await store.silences(30.0)] == [second]
    (found, _) = await store.silences()
    assert (found.rule, found.matchers, found.comment) == (
        "missed",
        (("call.intercom.id", "158"),),
        "works",
    )
    assert await store.remove_silence(first) is True
    assert await store.remove_silence(first) is False
    assert [s.id for s in await store.silences()] == [second]
    await store.close()


async def test_dead_letters_are_revived_and_purged(store_url: str) -> None:
    store = await open_store(store_url)
    await store.enqueue([Delivery(alert("a", "first"), 0), Delivery(alert("b", "second"), 0)])
    first, _second = await store.outbox()
    await store.mark_dead(first.id, "undelivered after 60 s")
    assert [i.title for i in await store.outbox_select(dead=True)] == ["first"]
    assert await store.outbox_retry(dead=True, notifier="other") == 0
    assert await store.outbox_retry(dead=True) == 1
    assert [(i.status, i.attempts) for i in await store.outbox()] == [
        ("pending", 0),
        ("pending", 0),
    ]
    assert await store.outbox_purge(dead=False, notifier="chat") == 2
    assert await store.outbox() == []
    await store.close()


async def test_a_whole_store_is_copied_to_the_other_backend_and_back(
    store_url: str, tmp_path: Path
) -> None:
    """0.1.0's file → the backend under test → a new SQLite file: every row as it was, ids kept,
    and new ids follow the copied ones."""
    import shutil

    old = tmp_path / "old.db"
    shutil.copy(FIXTURES / "callmon-0.1.0.db", old)
    source = SqliteStore(str(old))
    seen = Decision(
        1.0,
        "front-door",
        "1001",
        "front-door/call/1001",
        "transition",
        None,
        "ringing",
        "poll",
        1.0,
    )
    await source.commit(Changes(decisions=[seen, replace(seen, rule="r", verdict="fired")]))
    middle = await open_store(store_url)
    if isinstance(middle, SqliteStore):  # SQLite → SQLite is a copy too; use another file
        await middle.close()
        middle = SqliteStore(str(tmp_path / "middle.db"))
    assert await middle.copy_from(source) > 0
    back = SqliteStore(str(tmp_path / "back.db"))
    await back.copy_from(middle)
    for store in (middle, back):
        assert await store.outbox() == await source.outbox()
        assert await store.silences() == await source.silences()
        assert await store.load_rule_state() == await source.load_rule_state()
        assert await store.load_provider("front-door") == await source.load_provider("front-door")
        assert await store.story("front-door", "1001") == await source.story("front-door", "1001")
        newest = max(i.id for i in await store.outbox())
        await store.enqueue([Delivery(alert("after-copy"), 0)])
        assert (await store.outbox())[-1].id > newest
        silence = await store.add_silence("r", [], 0, 1, "")
        assert silence > max(s.id for s in await source.silences())
    for store in (source, middle, back):
        await store.close()


async def test_a_copy_refuses_a_destination_in_use(store_url: str, tmp_path: Path) -> None:
    from monitor.store import StoreError

    source = SqliteStore(str(tmp_path / "source.db"))
    await source.enqueue([Delivery(alert("a"), 0)])
    destination = await open_store(store_url)
    if isinstance(destination, SqliteStore):
        await destination.close()
        destination = SqliteStore(str(tmp_path / "destination.db"))
    await destination.add_silence("r", [], 0, 1, "")
    try:
        await destination.copy_from(source)
    except StoreError as exc:
        message = str(exc)
    else:
        message = "copied"
    assert message == (
        "the destination already holds silences: a copy only goes into a new, empty store"
    )
    assert await destination.outbox() == []
    await source.close()
    await destination.close()


async def test_the_decision_record_is_pruned_by_age_and_by_count(store_url: str) -> None:
    store = await open_store(store_url)
    seen = Decision(0.0, "door", "1", "door/call/1", "transition", None, "ringing", "poll", 0.0)
    await store.commit(Changes(decisions=[replace(seen, decided_at=float(t)) for t in range(6)]))
    assert await store.prune_decisions(before=2.0, keep=3) == 3  # two too old, one too many
    decisions, _ = await store.story("door", "1")
    assert [d.decided_at for d in decisions] == [3.0, 4.0, 5.0]
    await store.close()
