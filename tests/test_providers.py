"""Every provider client against the simulator over HTTP: the same contract for all four APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import structlog
from pydantic import TypeAdapter

from monitor import sources as providers
from monitor.config import ProviderConfig
from monitor.model import Event
from monitor.simulator.common import Line, RateLimit
from monitor.simulator.faults import Fault
from monitor.simulator.server import Simulator
from monitor.sources.base import AuthError, BadResponse, Provider
from monitor.tracking.tracker import Tracker

TYPES = ["vms-intercom", "bird", "cinnox", "bandwidth"]
SETTINGS: TypeAdapter[Any] = TypeAdapter(ProviderConfig)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def fast(sim: Simulator) -> Simulator:
    """Lift the simulator's rate limits and CINNOX's publishing delay, for quick tests."""
    sim.bandwidth.list_limit = RateLimit(1000)
    sim.cinnox.late = (0.0, 0.0)
    return sim


def client_for(
    sim: Simulator, kind: str, session: aiohttp.ClientSession, **overrides: Any
) -> Provider:
    entry = next(p for p in sim.provider_configs() if p["type"] == kind)
    entry.update({"max_requests_per_second": 1000, **overrides})
    return providers.build(SETTINGS.validate_python(entry), session)


def line_of(sim: Simulator, kind: str) -> Line:
    return {
        "vms-intercom": sim.vms,
        "bird": sim.bird,
        "cinnox": sim.cinnox,
        "bandwidth": sim.bandwidth,
    }[kind]


class Watch:
    """A client and its tracker: each `poll` diffs, applies and returns the transitions."""

    def __init__(self, client: Provider) -> None:
        self.client = client
        self.tracker = Tracker(client.name, client.type)

    async def poll(self) -> list[tuple[str | None, str, bool]]:
        result = await self.client.poll(self.tracker)
        diff = self.tracker.diff(result, datetime.now(UTC))
        self.tracker.apply(diff)
        self.events: list[Event] = diff.events
        return [(e.from_state, e.to_state, e.inferred) for e in diff.events if e.call]


@pytest.mark.parametrize("kind", TYPES)
async def test_an_unanswered_call_is_one_missed_transition(
    sim: Simulator, session: aiohttp.ClientSession, kind: str
) -> None:
    fast(sim).traffic.seed_history(10)
    line = line_of(sim, kind)
    watch = Watch(client_for(sim, kind, session))
    assert await watch.poll() == []  # the baseline: history is recorded, not reported
    call = line.start_call()
    first = await watch.poll()
    line.no_answer(call)
    second = await watch.poll()
    assert await watch.poll() == []
    if kind == "cinnox":  # records exist only once the call is over
        assert (first, second) == ([], [(None, "missed", False)])
    else:
        assert (first, second) == ([(None, "ringing", False)], [("ringing", "missed", False)])


@pytest.mark.parametrize("kind", TYPES)
async def test_an_answered_call_walks_the_canonical_machine(
    sim: Simulator, session: aiohttp.ClientSession, kind: str
) -> None:
    fast(sim)
    line = line_of(sim, kind)
    watch = Watch(client_for(sim, kind, session))
    await watch.poll()
    call = line.start_call()
    seen = await watch.poll()
    line.answer(call)
    seen += await watch.poll()
    line.hang_up(call)
    seen += await watch.poll()
    if kind == "cinnox":
        assert seen == [(None, "ended", False)]
    else:
        assert seen == [
            (None, "ringing", False),
            ("ringing", "answered", False),
            ("answered", "ended", False),
        ]
    (event,) = watch.events
    assert event.call is not None
    assert event.call.talk_seconds is not None


@pytest.mark.parametrize("kind", TYPES)
async def test_wrong_credentials_are_an_auth_error_naming_the_provider(
    sim: Simulator, session: aiohttp.ClientSession, kind: str
) -> None:
    secret = {
        "vms-intercom": "token",
        "bird": "token",
        "cinnox": "token",
        "bandwidth": "api_secret",
    }[kind]
    client = client_for(fast(sim), kind, session, **{secret: "wrong-secret-42"})
    with pytest.raises(AuthError) as info:
        await client.poll(Tracker(client.name, client.type))
    assert str(info.value).startswith(f"provider {client.name}: credentials rejected (HTTP 401)")
    assert "wrong-secret-42" not in str(info.value)


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("fault", ["badjson", "html"])
async def test_a_malformed_page_fails_only_that_poll(
    sim: Simulator, session: aiohttp.ClientSession, kind: str, fault: str
) -> None:
    fast(sim)
    watch = Watch(client_for(sim, kind, session))
    api = "vms" if kind == "vms-intercom" else kind
    faults = {
        "vms-intercom": sim.vms,
        "bird": sim.bird,
        "cinnox": sim.cinnox,
        "bandwidth": sim.bandwidth,
    }[kind].faults
    faults.add(Fault(fault, status=200, api=api))
    with pytest.raises(BadResponse, match=rf"^provider {watch.client.name}: malformed"):
        await watch.poll()
    assert await watch.poll() == []  # the next poll works


@pytest.mark.parametrize("kind", TYPES)
async def test_a_call_missed_while_nobody_polled_is_reported_once(
    sim: Simulator, session: aiohttp.ClientSession, kind: str
) -> None:
    fast(sim)
    line = line_of(sim, kind)
    watch = Watch(client_for(sim, kind, session))
    await watch.poll()
    call = line.start_call()
    line.no_answer(call)
    assert await watch.poll() == [(None, "missed", False)]
    assert await watch.poll() == []


PAGE_SIZE = {"vms-intercom": "per_page", "bird": "limit", "cinnox": "limit", "bandwidth": "size"}


@pytest.mark.parametrize("kind", TYPES)
async def test_a_backlog_larger_than_one_poll_is_read_by_the_next_polls(
    sim: Simulator, session: aiohttp.ClientSession, kind: str
) -> None:
    """More new calls wait than a poll reads (2 pages of 5 here): none is dropped, none doubled,
    and the log says that the rest was deferred."""
    fast(sim)
    line = line_of(sim, kind)
    watch = Watch(client_for(sim, kind, session, max_pages=2, **{PAGE_SIZE[kind]: 5}))
    await watch.poll()
    calls = [line.start_call() for _ in range(23)]
    for call in calls:
        line.no_answer(call)
    missed: list[str] = []
    with structlog.testing.capture_logs() as logs:
        for _ in range(6):
            await watch.poll()
            missed += [e.call.id for e in watch.events if e.call and e.to_state == "missed"]
    assert sorted(missed) == sorted(calls)
    assert any(e["event"].startswith("more new calls than one poll reads") for e in logs)
