"""Delivery through real apprise to a local receiver: once, in order, retried while it fails."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.model import Alert, Severity
from monitor.notify.delivery import RetryPolicy, Worker
from monitor.notify.sender import Sender
from monitor.store import Delivery, SqliteStore
from monitor.telemetry import Telemetry
from tests.conftest import Receiver, wait_for


def delivery(key: str, title: str) -> Delivery:
    alert = Alert(
        key=key,
        rule="r",
        notifier="chat",
        severity=Severity.WARNING,
        title=title,
        body="body",
        created_at=datetime.now(UTC),
    )
    return Delivery(alert, 0)


async def test_queued_alerts_arrive_once_in_order_after_the_target_recovers(
    tmp_path: Path, receiver: Receiver
) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    telemetry = Telemetry(CollectorRegistry())
    worker = Worker(
        "chat",
        0,
        Sender(receiver.url, timeout=5),
        store,
        telemetry,
        policy=RetryPolicy(first=0.1, cap=0.3),
    )
    task = asyncio.create_task(worker.run())
    receiver.status = 500
    await store.enqueue([delivery("a", "one"), delivery("b", "two"), delivery("c", "three")])
    worker.wake()
    await asyncio.sleep(1.0)
    assert receiver.received == []
    receiver.status = 200
    await wait_for(lambda: len(receiver.received) == 3, timeout=10)
    await asyncio.sleep(0.5)
    assert receiver.titles() == ["one", "two", "three"]
    assert receiver.received[0]["message"] == "body"
    assert receiver.received[0]["type"] == "warning"
    assert telemetry.notifications.labels("chat", "sent")._value.get() == 3
    assert telemetry.notifications.labels("chat", "retried")._value.get() >= 1
    task.cancel()
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
    await store.enqueue([delivery("a", "one")])
    worker.wake()
    await asyncio.sleep(0.8)
    (item,) = await store.outbox()
    assert item.status == "pending"
    assert item.attempts >= 1
    assert item.last_error is not None
    assert item.last_error.startswith("timeout")
    receiver.hang = 0.0
    await wait_for(lambda: len(receiver.received) >= 1, timeout=10)
    task.cancel()
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
