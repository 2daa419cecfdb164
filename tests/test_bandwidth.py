"""The Bandwidth Catapult client: recorded payloads, Link paging, hangup causes, 1 request/s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.model import CallState, Tracked
from monitor.simulator.common import RateLimit
from monitor.simulator.server import Simulator
from monitor.sources.bandwidth import Bandwidth, BandwidthProvider
from monitor.sources.base import RateLimited
from monitor.tracking.tracker import Tracker
from tests.conftest import Serve

FIXTURES = Path(__file__).parent / "fixtures" / "bandwidth"
PATH = "/v1/users/u-1/calls/"


def settings(base_url: str, **kw: Any) -> BandwidthProvider:
    return BandwidthProvider.model_validate(
        {
            "name": "sales",
            "type": "bandwidth",
            "base_url": base_url,
            "user_id": "u-1",
            "api_token": "t",
            "api_secret": "s",
            **kw,
        }
    )


def sim_settings(sim: Simulator, **kw: Any) -> BandwidthProvider:
    b = sim.bandwidth
    return settings(
        sim.base_url, user_id=b.user_id, api_token=b.api_token, api_secret=b.api_secret, **kw
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_the_vendors_example_page_parses(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    seen: dict[str, str] = {}

    async def page(request: web.Request) -> web.Response:
        seen.update(request.query, auth=request.headers["Authorization"])
        return web.json_response(json.loads((FIXTURES / "calls-page.json").read_text()))

    base = await serve({PATH: page})
    client = Bandwidth(settings(base, max_requests_per_second=1000), session)
    # The example is of 2013: a tracker whose mark was set then (a lookback of years would be a
    # typo, refused in a config).
    tracker = Tracker.from_store(
        "sales", "bandwidth", {}, {"provider": {"high_water": "2013-02-08T13:15:00.000Z"}}, 86400.0
    )
    completed, active = (await client.poll(tracker)).calls
    assert (completed.id, completed.state, completed.raw_status) == (
        "{callId1}",
        CallState.ENDED,
        "completed",
    )
    assert completed.talk_seconds == pytest.approx(3.54)
    assert completed.raw["sipHeaders"]["X-Header-1"] == "value-1"
    assert (active.state, active.direction, active.ended_at) == (CallState.ANSWERED, "out", None)
    assert seen["sortOrder"] == "desc"
    assert seen["auth"] == "Basic dDpz"  # t:s


async def test_a_next_link_to_another_host_never_gets_the_credentials(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    stolen: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        stolen.append(request.headers.get("Authorization", ""))
        return web.json_response([])

    evil = await serve({PATH: elsewhere})
    served: list[str] = []

    async def page(request: web.Request) -> web.Response:
        number = request.query["page"]
        served.append(number)
        now = datetime.now(UTC)
        record = {"id": f"c-{number}", "state": "started", "startTime": now.isoformat()}
        link = f'<{evil}{PATH}?page=1&size=1>; rel="next"' if number == "0" else ""
        return web.json_response([record], headers={"Link": link} if link else {})

    base = await serve({PATH: page})
    client = Bandwidth(settings(base, size=1, max_requests_per_second=1000), session)
    tracker = Tracker("sales", "bandwidth", baselined=True)
    result = await client.poll(tracker)
    assert stolen == []  # the foreign host was never asked, let alone sent the credentials
    assert served[:2] == ["0", "1"]  # the next page came from the configured API
    assert {c.id for c in result.calls} >= {"c-0", "c-1"}


async def test_completed_without_answer_is_missed_with_its_hangup_cause(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.bandwidth.list_limit = RateLimit(1000)
    client = Bandwidth(sim_settings(sim, max_requests_per_second=1000), session)
    tracker = Tracker("sales", "bandwidth")
    tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
    call = sim.bandwidth.start_call()
    sim.bandwidth.no_answer(call)
    (found,) = (await client.poll(tracker)).calls
    assert found.state is CallState.MISSED
    assert found.raw["hangupCause"] in ("NO_ANSWER", "ORIGINATOR_CANCEL")


async def test_paging_follows_link_and_stops_at_the_high_water_mark(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.bandwidth.list_limit = RateLimit(1000)
    now = sim.bandwidth.clock()
    for i in range(30):  # older calls, long before the mark
        sim.bandwidth.hang_up(sim.bandwidth.start_call(at=now - 3000 + i))
    for _ in range(12):
        sim.bandwidth.start_call()
    client = Bandwidth(sim_settings(sim, size=5, max_requests_per_second=1000), session)
    mark = datetime.fromtimestamp(now - 60, UTC).isoformat()
    tracker = Tracker("sales", "bandwidth", baselined=True, cursor={"high_water": mark})
    before = sim.bandwidth.list_requests
    result = await client.poll(tracker)
    assert sim.bandwidth.list_requests - before == 3  # 5 + 5 new, then 2 new + 3 old: stop
    assert len(result.calls) == 12


async def test_the_default_budget_draws_no_429_from_the_one_per_second_limit(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    client = Bandwidth(sim_settings(sim), session)  # default: 1 request per second
    tracker = Tracker("sales", "bandwidth")
    calls = [sim.bandwidth.start_call() for _ in range(2)]
    for step in range(4):
        if step == 2:
            for call in calls:
                sim.bandwidth.no_answer(call)  # each needs its events fetched too
        tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
    assert sim.bandwidth.list_limit.rejected == 0


async def test_a_429_waits_until_x_ratelimit_reset(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.bandwidth.list_limit = RateLimit(1, 30.0)
    client = Bandwidth(sim_settings(sim, max_requests_per_second=1000), session)
    await client.poll(Tracker("sales", "bandwidth"))
    with pytest.raises(RateLimited) as info:
        await client.poll(Tracker("sales", "bandwidth"))
    assert info.value.retry_after is not None
    assert 25 <= info.value.retry_after <= 30


@pytest.mark.parametrize("status", [404, 500, 429])
async def test_a_failing_hangup_cause_request_keeps_the_call_without_its_cause(
    serve: Serve, session: aiohttp.ClientSession, status: int
) -> None:
    """Finding 3: one `/events` request that failed made every poll fail."""
    now = datetime.now(UTC).isoformat()
    missed = {"id": "c-1", "state": "completed", "startTime": now, "endTime": now}

    async def listing(request: web.Request) -> web.Response:
        return web.json_response([missed])

    async def events(request: web.Request) -> web.Response:
        return web.json_response({"category": "error"}, status=status)

    base = await serve({PATH: listing, PATH + "{call}/events": events})
    client = Bandwidth(settings(base, max_requests_per_second=1000), session)
    tracker = Tracker("sales", "bandwidth", baselined=True)
    result = await client.poll(tracker)
    (call,) = result.calls
    assert call.state is CallState.MISSED
    assert "hangupCause" not in call.raw
    assert result.skipped == 1


async def test_an_unreadable_open_call_fetched_by_id_is_skipped(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    async def listing(request: web.Request) -> web.Response:
        return web.json_response([])

    async def one(request: web.Request) -> web.Response:
        return web.json_response({"id": "c-9", "state": "vanished"})

    base = await serve({PATH: listing, PATH + "{call}": one})
    tracker = Tracker(
        "sales", "bandwidth", {"c-9": Tracked(CallState.RINGING, "started||", 1.0)}, baselined=True
    )
    result = await Bandwidth(settings(base, max_requests_per_second=1000), session).poll(tracker)
    assert result.calls == []
    assert result.skipped == 1
