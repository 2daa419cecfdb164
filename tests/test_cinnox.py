"""The CINNOX call-log client: recorded payloads, the sliding window, late records, API errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.model import CallState
from monitor.simulator.server import Simulator
from monitor.sources.base import RequestRejected
from monitor.sources.cinnox import STATES, Cinnox, CinnoxProvider
from monitor.tracking.tracker import Tracker
from tests.conftest import Serve

FIXTURES = Path(__file__).parent / "fixtures" / "cinnox"
PATH = "/v1/api/apps/app-1/data/call-log"


def settings(base_url: str, **kw: Any) -> CinnoxProvider:
    return CinnoxProvider.model_validate(
        {
            "name": "contact-centre",
            "type": "cinnox",
            "base_url": base_url,
            "token": "t",
            "app_id": "app-1",
            "max_requests_per_second": 1000,
            **kw,
        }
    )


def sim_settings(sim: Simulator, **kw: Any) -> CinnoxProvider:
    return settings(sim.base_url, token=sim.cinnox.token, app_id=sim.cinnox.app_id, **kw)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def answer_with(path: str, status: int = 200) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(json.loads((FIXTURES / path).read_text()), status=status)

    return handler


async def test_the_example_records_parse(serve: Serve, session: aiohttp.ClientSession) -> None:
    base = await serve({PATH: answer_with("call-log-page.json")})
    ended, missed = (await Cinnox(settings(base), session).poll(Tracker("c", "cinnox"))).calls
    assert (ended.id, ended.state, ended.raw_status) == (
        "6389c2f4b0e1a2d3c4f5a6b7",
        CallState.ENDED,
        "Call Ended",
    )
    assert ended.created_at == datetime(2022, 11, 7, 8, 15, 2, tzinfo=UTC)
    assert ended.talk_seconds == 95.0
    assert ended.from_number == "85298765432"  # a number in the record, a string in the call
    assert ended.to_number == "85230001234"
    assert (missed.state, missed.raw_status, missed.from_number) == (
        CallState.MISSED,
        "Not Answered",
        "+85291234567",
    )
    assert missed.raw["byeReason"] == "Request Timeout"


async def test_an_api_error_quotes_its_code_and_message(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    base = await serve({PATH: answer_with("error-bad-query.json", status=400)})
    with pytest.raises(RequestRejected) as info:
        await Cinnox(settings(base), session).poll(Tracker("c", "cinnox"))
    assert str(info.value) == (
        "provider contact-centre: API error (HTTP 400): endAt is prior to startAt; code 6451000"
    )


async def test_an_error_code_in_a_200_answer_fails_the_poll(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    base = await serve({PATH: answer_with("error-bad-query.json", status=200)})
    with pytest.raises(RequestRejected, match="API error 6451000: endAt is prior to startAt"):
        await Cinnox(settings(base), session).poll(Tracker("c", "cinnox"))


async def test_offset_paging_until_a_short_page(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.cinnox.late = (0.0, 0.0)
    for _ in range(12):
        sim.cinnox.no_answer(sim.cinnox.start_call())
    before = sim.cinnox.list_requests
    result = await Cinnox(sim_settings(sim, limit=5), session).poll(Tracker("c", "cinnox"))
    assert sim.cinnox.list_requests - before == 3
    assert len({c.id for c in result.calls}) == 12


async def test_a_late_record_inside_the_lookback_is_still_caught(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.cinnox.late = (3600.0, 3600.0)  # published only when the test says so
    client = Cinnox(sim_settings(sim, lookback="30m"), session)
    tracker = Tracker("c", "cinnox", baselined=True)
    late = sim.cinnox.start_call(at=sim.cinnox.clock() - 600)
    sim.cinnox.no_answer(late, at=sim.cinnox.clock() - 570)
    sim.cinnox.late = (0.0, 0.0)
    sim.cinnox.hang_up(sim.cinnox.start_call())  # a newer call moves the high-water mark
    first = await client.poll(tracker)
    tracker.apply(tracker.diff(first, datetime.now(UTC)))
    assert late not in {c.id for c in first.calls}
    sim.cinnox.publish_now()
    second = await client.poll(tracker)
    diff = tracker.diff(second, datetime.now(UTC))
    assert [(e.call.id, e.from_state, e.to_state) for e in diff.events if e.call] == [
        (late, None, "missed")
    ]


async def test_the_window_is_both_ends_and_slides_with_the_newest_call_date(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    seen: list[dict[str, str]] = []

    async def page(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.json_response({"code": 0, "result": []})

    client = Cinnox(settings(await serve({PATH: page}), lookback="15m"), session)
    tracker = Tracker("c", "cinnox", cursor={"last_call_date": "2026-11-23T10:00:00.000Z"})
    await client.poll(tracker)
    assert seen[0]["startAt"] == "2026-11-23T09:45:00.000Z"
    assert {"endAt", "offset", "limit"} <= set(seen[0])


@pytest.mark.parametrize(("status", "state"), sorted(STATES.items()))
async def test_every_status_maps_to_its_final_state(
    sim: Simulator, session: aiohttp.ClientSession, status: str, state: CallState
) -> None:
    sim.cinnox.late = (0.0, 0.0)
    hid = sim.cinnox.start_call()
    sim.cinnox.hang_up(hid)
    sim.cinnox.calls[hid].status = status
    (call,) = (await Cinnox(sim_settings(sim), session).poll(Tracker("c", "cinnox"))).calls
    assert call.state is state


async def test_a_duration_no_clock_can_hold_skips_that_record_alone(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    """Finding 9: a `callDuration` of 1e12 raised OverflowError and ended the provider's polls."""
    ok = {"hid": "a", "status": "Call Ended", "callDate": "2026-11-23T11:00:00Z"}
    huge = {**ok, "hid": "b", "callEndTime": "2026-11-23T11:05:00Z", "callDuration": 1e12}

    async def log(request: web.Request) -> web.Response:
        return web.json_response({"code": 0, "result": [ok, huge]})

    base = await serve({PATH: log})
    result = await Cinnox(settings(base), session).poll(Tracker("contact-centre", "cinnox"))
    assert [c.id for c in result.calls] == ["a"]
    assert result.skipped == 1
