"""The SQLite store: a real file, one transaction per poll, idempotent outbox, ordered delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitor.model import Alert, CallState, Severity, Tracked
from monitor.store import CallChanges, Changes, Delivery, SqliteStore, schema

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


async def test_a_commit_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    store = SqliteStore(path)
    upserts = {
        "1": Tracked(CallState.RINGING, "ring|", 1.0),
        "2": Tracked(CallState.MISSED, "missed|", 2.0),
    }
    calls = CallChanges("door", upserts, cursor={"baselined": True, "horizon": 1.5})
    queued = await store.commit(Changes(calls, deliveries=[Delivery(alert("a"), 0)]))
    assert queued == 1
    await store.commit(Changes(CallChanges("door", deletes=["2"], cursor={"baselined": True})))
    await store.close()

    store = SqliteStore(path)
    state = await store.load_provider("door")
    assert state.calls == {"1": Tracked(CallState.RINGING, "ring|", 1.0)}
    assert state.cursor == {"baselined": True}
    assert [i.title for i in await store.due("chat", 0, T0.timestamp(), 10)] == ["t"]
    assert (await store.load_provider("other")).calls == {}
    await store.close()


async def test_the_same_alert_is_queued_once(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    deliveries = [Delivery(alert("a"), 0), Delivery(alert("a"), 1)]
    assert await store.commit(Changes(CallChanges("door"), deliveries=deliveries)) == 2
    assert await store.commit(Changes(CallChanges("door"), deliveries=deliveries)) == 0
    assert await store.enqueue(deliveries) == 0
    assert await store.pending_count("chat") == 2
    await store.close()


async def test_a_failed_head_holds_back_its_queue_to_keep_order(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
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
