"""Delivery through real apprise to a local receiver: once, in order, retried while it fails.

Retries are timed on an injected clock: a thirty-second outage takes milliseconds here, and the
attempt times can be checked against the backoff exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.delivery.sender import Sender
from monitor.delivery.worker import RetryPolicy, Worker
from monitor.model import Alert, Severity
from monitor.store import Delivery, SqliteStore
from monitor.telemetry import Telemetry
from tests.conftest import Receiver, wait_for

T0 = 1_800_000_000.0


class FakeTime:
    """A clock that moves only when the worker waits: each wait passes at once."""

    def __init__(self) -> None:
        self.now = T0

    def time(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        if not event.is_set():
            self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def delivery(key: str, title: str, at: float = T0) -> Delivery:
    """A delivery decided at `at` (on the fake clock; pass `time.time()` for real time)."""
    alert = Alert(
        key=key,
        rule="r",
        notifier="chat",
        severity=Severity.WARNING,
        title=title,
        body="body",
        created_at=datetime.fromtimestamp(at, UTC),
    )
    return Delivery(alert, 0)


async def test_a_receiver_failing_for_30s_gets_each_message_once_in_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    fake = FakeTime()
    store = SqliteStore(str(tmp_path / "state.db"))
    telemetry = Telemetry(CollectorRegistry())
    worker = Worker(
        "chat",
        0,
        Sender(receiver.url, timeout=5),
        store,
        telemetry,
        policy=RetryPolicy(first=1.0, cap=30.0),
        clock=fake.time,
        wait=fake.wait,
    )
    attempt_times: list[float] = []

    def post(body: object) -> None:
        attempt_times.append(fake.now - T0)
        receiver.status = 500 if fake.now < T0 + 30 else 200  # down for thirty seconds

    receiver.on_post = post
    await store.enqueue([delivery("a", "one"), delivery("b", "two"), delivery("c", "three")])
    task = asyncio.create_task(worker.run())
    await wait_for(lambda: len(receiver.received) == 3, timeout=20)
    worker.stop()
    await task
    # While it failed, only the head of the queue was tried: order is kept.
    assert set(receiver.refused()) == {"one"}
    assert receiver.titles() == ["one", "two", "three"]
    # Backoff from 1 s, doubling, with ±20 % jitter; the first try after the return delivers.
    gaps = [b - a for a, b in itertools.pairwise(attempt_times[:4])]
    for gap, base in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert 0.8 * base <= gap <= 1.2 * base
    first_ok = next(t for t in attempt_times if t >= 30)
    assert first_ok - 30 <= 30 * 1.2  # delivery resumes within a backoff cap of the return
    assert telemetry.notifications.labels("chat", "sent")._value.get() == 3
    assert telemetry.notifications.labels("chat", "failed")._value.get() == len(receiver.refused())
    (first, *_) = await store.outbox(status="sent")
    assert first.attempts == len(receiver.refused()) + 1
    await store.close()


async def test_a_hanging_target_times_out_and_is_retried(
    tmp_path: Path, receiver: Receiver
) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    worker = Worker(
        "chat",
        0,
        Sender(receiver.url, timeout=0.3),
        store,
        Telemetry(CollectorRegistry()),
        policy=RetryPolicy(first=0.1, cap=0.2),
    )
    task = asyncio.create_task(worker.run())
    receiver.hang = 2.0
    await store.enqueue([delivery("a", "one", time.time())])
    worker.wake()

    async def attempts() -> int:
        (item,) = await store.outbox()
        return item.attempts

    deadline = asyncio.get_running_loop().time() + 10
    while await attempts() < 1:
        assert asyncio.get_running_loop().time() < deadline, "no attempt was recorded"
        await asyncio.sleep(0.05)
    (item,) = await store.outbox()
    assert item.status == "pending"
    assert item.last_error is not None
    assert item.last_error.startswith("timeout")
    receiver.hang = 0.0
    await wait_for(lambda: len(receiver.received) >= 1, timeout=10)
    assert receiver.titles() == ["one"]
    assert receiver.refused()[0] == "one"  # the hung attempt reached the receiver
    worker.stop()
    await task
    await store.close()


async def test_a_store_locked_by_another_process_loses_no_message(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The retry of a refused message falls due while another process holds the store's write
    lock longer than SQLite waits: the worker survives its failed write and delivers once both
    the store and the target are back."""
    fake = FakeTime()
    path = tmp_path / "state.db"
    store = SqliteStore(str(path), busy_timeout=0.3)
    telemetry = Telemetry(CollectorRegistry())
    worker = Worker(
        "chat",
        0,
        Sender(receiver.url, timeout=5),
        store,
        telemetry,
        policy=RetryPolicy(first=1.0, cap=2.0),
        clock=fake.time,
        wait=fake.wait,
    )
    other = sqlite3.connect(path, isolation_level=None)
    receiver.status = 500

    def post(body: object) -> None:
        if receiver.status == 500 and not other.in_transaction:
            other.execute("BEGIN IMMEDIATE")  # a backup or a CLI tool takes the store

    receiver.on_post = post
    await store.enqueue([delivery("a", "one")])
    task = asyncio.create_task(worker.run())
    await wait_for(lambda: store.health.failing_since is not None, timeout=20)
    assert worker.running  # the worker did not die on the failed write
    other.execute("COMMIT")
    receiver.status = 200
    await wait_for(lambda: receiver.titles() == ["one"], timeout=30)
    worker.stop()
    await task
    assert receiver.titles() == ["one"]
    assert [i.status for i in await store.outbox()] == ["sent"]
    other.close()
    await store.close()


def test_the_sender_masks_secrets_in_its_display_name() -> None:
    sender = Sender("json://user:hunter2-secret@127.0.0.1:9/hook")
    assert "hunter2-secret" not in sender.display


def test_retry_delays_grow_to_the_cap() -> None:
    policy = RetryPolicy(first=1.0, cap=30.0)
    assert [round(policy.delay(n, rng=lambda: 0.5), 3) for n in (1, 2, 3, 6, 10)] == [
        1.0,
        2.0,
        4.0,
        30.0,
        30.0,
    ]


async def test_a_worker_that_may_no_longer_send_sends_nothing(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A replica paused past its lease wakes with messages in hand: none goes out; they stay
    queued for the leader."""
    store = SqliteStore(str(tmp_path / "state.db"))
    allowed = [True]
    worker = Worker(
        "chat",
        0,
        Sender(receiver.url, timeout=5),
        store,
        Telemetry(CollectorRegistry()),
        may_send=lambda: allowed[0],
    )
    now = time.time()
    await store.enqueue([delivery("a", "one", now)])
    task = asyncio.create_task(worker.run())
    await wait_for(lambda: len(receiver.received) == 1)
    allowed[0] = False
    await store.enqueue([delivery("b", "two", now), delivery("c", "three", now)])
    worker.wake()
    await wait_for(lambda: not worker._wake.is_set(), timeout=5)  # it looked at the queue
    await asyncio.sleep(0.3)
    assert receiver.attempts
    assert [a.title for a in receiver.attempts] == ["one"]
    assert [i.title for i in await store.outbox(status="pending")] == ["two", "three"]
    allowed[0] = True
    await wait_for(lambda: len(receiver.received) == 3, timeout=10)
    worker.stop()
    await task
    await store.close()
