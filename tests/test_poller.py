"""The generic poll loop: health changes as events and logs once, backoff, Retry-After."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest
import structlog
from prometheus_client import CollectorRegistry

from monitor.model import Event, PollResult
from monitor.simulator.faults import Fault
from monitor.simulator.server import Simulator
from monitor.sources.poller import Down, Polled, Poller, backoff
from monitor.sources.vms_intercom import VmsIntercom, VmsIntercomProvider
from monitor.telemetry import Telemetry
from monitor.tracking.tracker import Tracker
from tests.conftest import wait_for


@pytest.fixture
async def poller(sim: Simulator) -> AsyncIterator[tuple[Poller, list[Event]]]:
    """A poller of the simulated VMS whose callbacks keep the tracker and the health events."""
    settings = VmsIntercomProvider.model_validate(
        {
            "name": "door",
            "type": "vms-intercom",
            "base_url": sim.base_url,
            "token": sim.vms.token,
            "poll_interval": "1s",
            "max_backoff": "8s",
        }
    )
    tracker = Tracker("door", "vms-intercom")
    events: list[Event] = []

    async def on_result(result: PollResult, now: datetime, backlog: bool) -> bool:
        tracker.apply(tracker.diff(result, now))
        return True

    async def on_health(event: Event, now: datetime) -> bool:
        events.append(event)
        return True

    telemetry = Telemetry(CollectorRegistry())
    async with aiohttp.ClientSession() as session:
        client = VmsIntercom(settings, session)
        yield Poller(client, settings, tracker, on_result, on_health, telemetry), events


def test_backoff_doubles_from_the_interval_up_to_the_cap() -> None:
    assert [backoff(5, n, 60) for n in range(6)] == [5, 5, 10, 20, 40, 60]
    assert backoff(5, 1, 60, retry_after=90) == 90


async def test_health_changes_are_events_and_logs_only_on_change(
    sim: Simulator, poller: tuple[Poller, list[Event]]
) -> None:
    p, events = poller
    gauge = p.telemetry.provider_up.labels("door")
    assert await p.poll_once() == 1.0
    assert gauge._value.get() == 1
    sim.vms.faults.add(Fault("status", status=500))
    with structlog.testing.capture_logs() as logs:
        assert await p.poll_once() == 1.0  # first failure: the interval
        assert gauge._value.get() == 0
        sim.vms.faults.add(Fault("status", status=500))
        assert await p.poll_once() == 2.0  # then doubling
        assert await p.poll_once() == 1.0  # recovered
    health = [(e.from_state, e.to_state) for e in events if e.kind == "provider"]
    assert health == [("up", "down"), ("down", "up")]
    assert [entry["event"] for entry in logs if entry["log_level"] != "debug"] == [
        "provider down",
        "provider recovered",
    ]
    down = next(e for e in events if e.to_state == "down")
    assert down.reason == "provider door: server error (HTTP 500)"


async def test_a_429_waits_as_long_as_retry_after_says(
    sim: Simulator, poller: tuple[Poller, list[Event]]
) -> None:
    p, _ = poller
    sim.vms.faults.add(Fault("status", status=429, headers=(("Retry-After", "7"),)))
    assert await p.poll_once() == 7.0


async def test_bad_credentials_are_down_with_a_clear_reason(
    sim: Simulator, poller: tuple[Poller, list[Event]]
) -> None:
    p, events = poller
    sim.vms.token = "rotated"
    await p.poll_once()
    (event,) = events
    assert event.to_state == "down"
    assert event.reason == "provider door: credentials rejected (HTTP 401): Unauthenticated."


async def test_the_rule_clock_sees_each_poller_as_it_is_now(
    sim: Simulator, poller: tuple[Poller, list[Event]]
) -> None:
    """`Down` and `Polled` are views, asked one provider at a time: no copy of 10,000 pollers
    each second, and never stale."""
    p, _ = poller
    down, polled = Down({"door": p}), Polled({"door": p})
    assert "door" not in down
    assert "door" not in polled
    await p.poll_once()
    assert p.last_success is not None
    assert "door" not in down
    assert polled["door"] == p.last_success.timestamp()
    assert dict(polled) == {"door": p.last_success.timestamp()}
    assert len(polled) == 1
    sim.vms.token = "rotated"
    await p.poll_once()
    assert "door" in down
    assert "door" not in polled
    assert polled.get("door") is None
    assert "elsewhere" not in down
    assert polled.get("elsewhere", 0.0) == 0.0


class Exploding:
    """A provider whose poll raises what no client foresaw (a bug, an exotic record)."""

    name, type = "door", "vms-intercom"

    def __init__(self) -> None:
        self.fail = True

    async def poll(self, view: Any) -> PollResult:
        if self.fail:
            raise OverflowError("date value out of range")
        return PollResult()


async def test_an_unexpected_error_fails_the_poll_and_the_next_poll_goes_on(
    poller: tuple[Poller, list[Event]],
) -> None:
    """Finding 9: `poll_once` caught only ProviderError and TimeoutError."""
    p, events = poller
    p.provider = provider = Exploding()
    with structlog.testing.capture_logs() as logs:
        assert await p.poll_once() == 1.0
    assert p.up is False
    assert p.telemetry.provider_up.labels("door")._value.get() == 0
    (failure,) = [e for e in logs if e["event"] == "poll failed unexpectedly"]
    assert failure["exc_info"] is True
    (down,) = [e for e in events if e.kind == "provider"]
    assert down.reason == "provider door: unexpected OverflowError while polling"
    provider.fail = False
    await p.poll_once()
    assert p.up is True


class Stalling:
    """A provider whose third poll holds the event loop (a busy process), 0.3 s."""

    name, type = "door", "vms-intercom"

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self, view: Any) -> PollResult:
        self.polls += 1
        if self.polls == 3:
            time.sleep(0.3)  # noqa: ASYNC251 (the point: nothing else runs meanwhile)
        return PollResult()


async def test_a_poll_that_starts_late_is_measured_as_lag(
    poller: tuple[Poller, list[Event]],
) -> None:
    """`callmon_poll_lag_seconds`: how late each poll started after it was due."""
    p, _ = poller
    p.provider = Stalling()
    p.settings = p.settings.model_copy(update={"poll_interval": 0.1})
    p.jitter = 0.0
    lag = p.telemetry.registry.get_sample_value
    task = asyncio.create_task(p.run())
    try:
        await wait_for(lambda: (lag("callmon_poll_lag_seconds_count", {}) or 0) >= 4)
    finally:
        task.cancel()
    assert (lag("callmon_poll_lag_seconds_sum", {}) or 0) >= 0.15  # the poll after the stall
    assert lag("callmon_poll_lag_seconds_bucket", {"le": "0.1"}) >= 2  # the others on time
