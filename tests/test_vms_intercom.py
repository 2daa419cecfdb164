"""The VMS intercom client over real HTTP: recorded payloads, the simulator, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web

from monitor.model import CallState
from monitor.simulator.faults import Fault
from monitor.simulator.server import Simulator
from monitor.sources.base import AuthError, BadResponse, RequestRejected, ServerError
from monitor.sources.vms_intercom import VmsIntercom, VmsIntercomProvider
from monitor.tracking.tracker import Tracker
from tests.conftest import Handler

FIXTURES = Path(__file__).parent / "fixtures" / "vms-intercom"


def settings(base_url: str, token: str = "sim-vms-token", **kw: Any) -> VmsIntercomProvider:
    return VmsIntercomProvider.model_validate(
        {"name": "front-door", "type": "vms-intercom", "base_url": base_url, "token": token, **kw}
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def pages(*bodies: Any) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        body = bodies[page - 1] if page <= len(bodies) else {"data": [], "meta": None}
        if isinstance(body, str):
            return web.Response(text=body, content_type="application/json")
        return web.json_response(body)

    return handler


def record(cid: int, status: str = "missed") -> dict[str, Any]:
    return {
        "id": cid,
        "status": status,
        "created_at": "2026-11-23 10:00:00",
        "intercom": {"id": 158, "title": "Front"},
        "started_at": None,
        "ended_at": None,
    }


def fresh_tracker() -> Tracker:
    return Tracker("front-door", "vms-intercom")


async def test_the_vendors_example_page_parses(serve: Any, session: aiohttp.ClientSession) -> None:
    page = json.loads((FIXTURES / "calls-page.json").read_text())
    base = await serve({"/api/v1/intercom/calls": pages(page)})
    result = await VmsIntercom(settings(base), session).poll(fresh_tracker())
    ended, missed = result.calls
    assert (ended.id, ended.state, ended.raw_status) == ("5546", CallState.ENDED, "ended")
    assert ended.created_at == datetime(2022, 2, 4, 15, 53, 4, tzinfo=UTC)
    assert ended.answered_at == datetime(2022, 2, 4, 15, 53, 7, tzinfo=UTC)
    assert ended.ended_at == datetime(2022, 2, 4, 15, 54, 2, tzinfo=UTC)
    assert ended.ring_seconds == 3.0
    assert ended.talk_seconds == 55.0
    assert ended.intercom is not None
    assert ended.intercom.title == "test"
    assert ended.raw["intercom"]["camera"]["id"] == 832
    assert (missed.id, missed.state, missed.answered_at) == ("2220", CallState.MISSED, None)


async def test_naive_times_follow_the_configured_zone(
    serve: Any, session: aiohttp.ClientSession
) -> None:
    base = await serve({"/api/v1/intercom/calls": pages({"data": [record(1)]})})
    client = VmsIntercom(settings(base, naive_timezone="Europe/Berlin"), session)
    (call,) = (await client.poll(fresh_tracker())).calls
    assert call.created_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_sends_the_documented_headers(sim: Simulator, session: aiohttp.ClientSession) -> None:
    seen: dict[str, str] = {}

    async def spy(request: web.Request) -> web.Response:
        seen.update(request.headers)
        return web.json_response({"data": []})

    base_url = sim.base_url
    del base_url
    client = VmsIntercom(
        settings("http://placeholder", device_id="dev-1", client="ios-cctv"), session
    )
    app = web.Application()
    app.router.add_get("/api/v1/intercom/calls", spy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    client._base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await client.poll(fresh_tracker())
    await runner.cleanup()
    assert seen["Authorization"] == "Bearer sim-vms-token"
    assert seen["Accept"] == "application/json"
    assert seen["X-Client"] == "ios-cctv"
    assert seen["X-UUID"] == "dev-1"


async def test_a_wrong_token_is_a_clear_auth_error_without_the_token(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    client = VmsIntercom(settings(sim.base_url, token="wrong-token-123"), session)
    with pytest.raises(AuthError) as info:
        await client.poll(fresh_tracker())
    assert str(info.value) == (
        "provider front-door: credentials rejected (HTTP 401): Unauthenticated."
    )
    assert "wrong-token-123" not in str(info.value)


async def test_a_422_quotes_the_apis_message(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    bad = settings(sim.base_url).model_copy(update={"per_page": 500})
    with pytest.raises(RequestRejected) as info:
        await VmsIntercom(bad, session).poll(fresh_tracker())
    assert "HTTP 422" in str(info.value)
    assert "The per page must be between 1 and 100." in str(info.value)


async def test_steady_state_costs_one_list_request(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.traffic.seed_history(60)
    client = VmsIntercom(settings(sim.base_url), session)
    tracker = fresh_tracker()
    result = await client.poll(tracker)
    assert len(result.calls) == 25  # the baseline reads one page: older calls are history
    tracker.apply(tracker.diff(result, datetime.now(UTC)))
    before = sim.vms.list_requests
    await client.poll(tracker)
    assert sim.vms.list_requests - before == 1


async def test_pages_until_a_page_holds_a_call_seen_before(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.traffic.seed_history(30)
    client = VmsIntercom(settings(sim.base_url, per_page=10), session)
    tracker = fresh_tracker()
    tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
    for _ in range(15):
        sim.vms.miss(sim.vms.ring(158).id)
    before = sim.vms.list_requests
    result = await client.poll(tracker)
    assert sim.vms.list_requests - before == 2  # 10 new, then 5 new + 5 known: stop
    events = tracker.diff(result, datetime.now(UTC)).events
    assert len(events) == 15  # older history on page 3 is recorded without events


async def test_an_open_call_off_the_first_page_is_followed_by_id(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    client = VmsIntercom(settings(sim.base_url, per_page=5), session)
    tracker = fresh_tracker()
    ringing = sim.vms.ring(158)
    tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
    for _ in range(5):
        sim.vms.miss(sim.vms.ring(180).id)
    tracker.apply(tracker.diff(await client.poll(tracker), datetime.now(UTC)))
    sim.vms.miss(ringing.id)
    result = await client.poll(tracker)
    assert [(c.id, c.state) for c in result.calls if c.id == str(ringing.id)] == [
        (str(ringing.id), CallState.MISSED)
    ]


async def test_a_single_call_may_come_bare_or_wrapped(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    client = VmsIntercom(settings(sim.base_url), session)
    call = sim.vms.ring(158)
    for wrap in (True, False):
        sim.vms.wrap_single = wrap
        raw = await client._one(str(call.id))
        assert raw is not None
        assert client.decode(raw).state is CallState.RINGING
    assert await client._one("999999") is None


async def test_a_malformed_record_is_skipped_and_the_rest_kept(
    serve: Any, session: aiohttp.ClientSession
) -> None:
    broken = {**record(2), "id": "not-a-number"}
    unknown = {**record(3), "status": "teleported"}
    base = await serve({"/api/v1/intercom/calls": pages({"data": [record(1), broken, unknown]})})
    with structlog.testing.capture_logs() as logs:
        result = await VmsIntercom(settings(base), session).poll(fresh_tracker())
    assert [c.id for c in result.calls] == ["1"]
    assert result.skipped == 3  # the two records, and the door status this server lacks (404)
    problems = [(e["provider"], e["problem"]) for e in logs if e["event"] == "record skipped"]
    assert problems == [
        ("front-door", "Expected `int`, got `str` - at `$.id`"),
        ("front-door", "status: unknown value 'teleported'"),
    ]


@pytest.mark.parametrize(
    "body", ['{"data": [', "<html><body>502 Bad Gateway</body></html>", '{"items": []}']
)
async def test_a_malformed_page_fails_the_poll_clearly(
    serve: Any, session: aiohttp.ClientSession, body: str
) -> None:
    base = await serve({"/api/v1/intercom/calls": pages(body)})
    with pytest.raises(BadResponse, match=r"^provider front-door: malformed call list page 1"):
        await VmsIntercom(settings(base), session).poll(fresh_tracker())


async def test_calls_pushed_down_a_page_while_paging_are_counted_once(
    serve: Any, session: aiohttp.ClientSession
) -> None:
    first = {"data": [record(4), record(3)], "meta": {"current_page": 1, "last_page": 3}}
    second = {"data": [record(3), record(2)], "meta": {"current_page": 2, "last_page": 3}}
    third = {"data": [record(2), record(1)], "meta": {"current_page": 3, "last_page": 3}}
    base = await serve({"/api/v1/intercom/calls": pages(first, second, third)})
    tracker = Tracker("front-door", "vms-intercom", baselined=True)
    result = await VmsIntercom(settings(base), session).poll(tracker)
    assert [c.id for c in result.calls] == ["4", "3", "2", "1"]


async def test_server_errors_are_retried_then_raised(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    client = VmsIntercom(settings(sim.base_url), session)
    sim.vms.faults.add(Fault("status", status=503), times=2)
    await client.poll(fresh_tracker())  # two failures, then the third attempt answers
    sim.vms.faults.add(Fault("status", status=500), times=1)
    with pytest.raises(ServerError, match="HTTP 500"):
        await client.poll(fresh_tracker())


async def test_only_the_configured_intercoms_are_tracked(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.vms.ring(158)
    sim.vms.ring(180)
    client = VmsIntercom(settings(sim.base_url, intercoms=[180]), session)
    result = await client.poll(fresh_tracker())
    assert [c.intercom.id for c in result.calls if c.intercom] == [180]


async def test_door_status_is_polled_in_batches_of_25(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    for door in range(1, 31):
        sim.vms.add_door(1000 + door, f"Door {door}")
    wanted = [158, 180, *range(1001, 1029)]  # 30 ids
    client = VmsIntercom(settings(sim.base_url, intercoms=wanted), session)
    result = await client.poll(fresh_tracker())
    assert sim.vms.shows_requests == 2
    assert len(result.intercoms) == 30
    front = next(d for d in result.intercoms if d.id == 158)
    assert (front.title, front.is_online) == ("Front door", True)
    assert front.timetable is not None
    assert front.timetable["days"][0]["type"] == "monday"


async def test_a_door_going_offline_and_back_is_two_intercom_events(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    client = VmsIntercom(settings(sim.base_url, intercoms=[158, 180]), session)
    tracker = fresh_tracker()

    async def events() -> list[tuple[str, str | None, str]]:
        client.doors.due_now()  # status is due on every poll here
        diff = tracker.diff(await client.poll(tracker), datetime.now(UTC))
        tracker.apply(diff)
        return [(str(e.kind), e.from_state, e.to_state) for e in diff.events]

    assert await events() == []
    sim.vms.doors[180].is_online = False
    assert await events() == [("intercom", "online", "offline")]
    assert await events() == []
    sim.vms.doors[180].is_online = True
    assert await events() == [("intercom", "offline", "online")]
    assert tracker.intercoms == {"158": True, "180": True}


async def test_the_vendors_shows_example_parses(serve: Any, session: aiohttp.ClientSession) -> None:
    doors = json.loads((FIXTURES / "shows.json").read_text())

    async def shows(request: web.Request) -> web.Response:
        assert request.query.getall("ids[]") == ["180"]
        return web.json_response(doors)

    base = await serve(
        {"/api/v1/intercom/calls": pages({"data": []}), "/api/v1/intercom/shows": shows}
    )
    result = await VmsIntercom(settings(base, intercoms=[180]), session).poll(fresh_tracker())
    (home,) = result.intercoms
    assert (home.id, home.title, home.address, home.is_online) == (180, "Home", "Cameras", True)
    assert home.timetable is not None
    assert home.timetable["days"][2] == {
        "to": "23:59:59",
        "from": "00:00:00+05:00",
        "type": "saturday",
    }


async def test_door_status_failing_never_stops_call_monitoring(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.vms.faults.add(Fault("status", status=500, api="vms-shows"))
    sim.vms.ring(158)
    result = await VmsIntercom(settings(sim.base_url, intercoms=[158]), session).poll(
        fresh_tracker()
    )
    assert len(result.calls) == 1
    assert result.intercoms == []


async def test_a_login_gets_a_token_and_a_new_one_when_it_expires(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    creds = VmsIntercomProvider.model_validate(
        {
            "name": "front-door",
            "type": "vms-intercom",
            "base_url": sim.base_url,
            "login": "callmon",
            "password": "sim-password",
        }
    )
    client = VmsIntercom(creds, session)
    sim.vms.ring(158)
    assert len((await client.poll(fresh_tracker())).calls) == 1
    assert sim.vms.logins == 1
    await client.poll(fresh_tracker())
    assert sim.vms.logins == 1  # the token is kept
    sim.vms.token = "rotated-token"  # the platform expires the token
    assert len((await client.poll(fresh_tracker())).calls) == 1
    assert sim.vms.logins == 2


async def test_a_wrong_password_is_a_clear_auth_error_without_the_password(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    creds = VmsIntercomProvider.model_validate(
        {
            "name": "front-door",
            "type": "vms-intercom",
            "base_url": sim.base_url,
            "login": "callmon",
            "password": "wrong-pass-77",
        }
    )
    with pytest.raises(AuthError) as info:
        await VmsIntercom(creds, session).poll(fresh_tracker())
    assert str(info.value) == (
        "provider front-door: login refused (HTTP 422): These credentials do not match our records."
    )
    assert "wrong-pass-77" not in str(info.value)


def test_a_token_or_a_login_is_required() -> None:
    with pytest.raises(ValueError, match="give a token, or a login and a password"):
        VmsIntercomProvider.model_validate(
            {"name": "d", "type": "vms-intercom", "base_url": "http://x", "login": "only"}
        )


class Watch:
    """A VMS client and its tracker: `poll` diffs, applies, and returns the events."""

    def __init__(self, client: VmsIntercom) -> None:
        self.client = client
        self.tracker = fresh_tracker()
        self.skipped = 0

    async def poll(self) -> list[Any]:
        result = await self.client.poll(self.tracker)
        self.skipped += result.skipped
        diff = self.tracker.diff(result, datetime.now(UTC))
        self.tracker.apply(diff)
        return [e for e in diff.events if e.call is not None]


async def test_an_unreadable_call_fetched_by_id_is_skipped_and_the_poll_goes_on(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Finding 2: the record of a call followed by id has a status callmon cannot map."""
    watch = Watch(VmsIntercom(settings(sim.base_url, per_page=2), session))
    await watch.poll()  # baseline
    stuck, other = sim.vms.ring(158), sim.vms.ring(180)
    assert len(await watch.poll()) == 2
    newest = sim.vms.ring(201)  # pushes the stuck call to page 2: it is fetched by id now
    sim.vms.calls[stuck.id].status = "teleported"
    sim.vms.miss(other.id)
    with structlog.testing.capture_logs() as logs:
        first = await watch.poll()
        second = await watch.poll()
    assert sorted((e.call.id, e.to_state) for e in first) == [
        (str(other.id), "missed"),
        (str(newest.id), "ringing"),
    ]
    assert second == []
    skipped = [e for e in logs if e["event"] == "record skipped"]
    assert len(skipped) == 1  # reported once, though served on every poll
    assert skipped[0]["problem"] == "status: unknown value 'teleported'"
    assert watch.skipped == 1


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("created_at", "0001-01-01T00:00:00+01:00", "created_at: invalid timestamp"),
        ("status", ["ring"], "Expected `str`, got `array` - at `$.status`"),
        ("started_at", "2026-13-45 99:99:99", "started_at: invalid timestamp"),
    ],
)
async def test_a_record_no_datetime_can_hold_is_skipped(
    serve: Any, session: aiohttp.ClientSession, field: str, value: Any, problem: str
) -> None:
    """Finding 9: a record that made the decoder raise an unforeseen error (OverflowError)."""
    base = await serve(
        {"/api/v1/intercom/calls": pages({"data": [record(1), {**record(2), field: value}]})}
    )
    with structlog.testing.capture_logs() as logs:
        result = await VmsIntercom(settings(base), session).poll(fresh_tracker())
    assert [c.id for c in result.calls] == ["1"]
    (entry,) = [e for e in logs if e["event"] == "record skipped"]
    assert problem in entry["problem"]


async def test_a_page_nested_a_thousand_deep_is_a_clear_bad_response(
    serve: Any, session: aiohttp.ClientSession
) -> None:
    """Finding 9: a RecursionError escaped the poll and ended the provider's polling."""
    deep = '{"data": [' + "[" * 1000 + "]" * 1000 + "]}"
    base = await serve({"/api/v1/intercom/calls": pages(deep)})
    with pytest.raises(BadResponse, match="malformed call list page 1: nested too deeply"):
        await VmsIntercom(settings(base), session).poll(fresh_tracker())


async def test_watching_some_doors_costs_one_list_request_per_steady_poll(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Finding 4: calls at doors not watched were never stored, so every page looked new."""
    client = VmsIntercom(
        settings(sim.base_url, intercoms=[158], max_requests_per_second=1000), session
    )
    watch = Watch(client)
    await watch.poll()
    for _ in range(200):
        sim.vms.miss(sim.vms.ring(180).id)  # another door's calls
    await watch.poll()  # reads down to what it saw before: the 200 new calls, once
    before = sim.vms.list_requests
    assert await watch.poll() == []
    assert sim.vms.list_requests - before == 1


async def test_more_new_calls_than_one_poll_reads_are_read_by_the_next_polls(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    """Finding 11: 1,500 calls missed between two polls; 1,000 were alerted, 500 never."""
    watch = Watch(VmsIntercom(settings(sim.base_url, max_requests_per_second=10000), session))
    await watch.poll()
    missed = {str(sim.vms.ring(158).id) for _ in range(1500)}
    for call_id in missed:
        sim.vms.miss(call_id)
    seen: list[str] = []
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            seen += [e.call.id for e in await watch.poll() if e.to_state == "missed"]
    assert len(seen) == len(set(seen)) == 1500
    assert set(seen) == missed
    (deferred,) = [e for e in logs if e["event"].startswith("more new calls than one poll")]
    assert deferred["read"] == 1000
    assert deferred["deferred_at_most"] == 500


async def test_a_malformed_record_served_again_is_reported_once(
    serve: Any, session: aiohttp.ClientSession
) -> None:
    base = await serve(
        {"/api/v1/intercom/calls": pages({"data": [record(1), {**record(2), "id": "x"}]})}
    )
    client = VmsIntercom(settings(base), session)
    tracker = fresh_tracker()
    with structlog.testing.capture_logs() as logs:
        first = await client.poll(tracker)
        second = await client.poll(tracker)
    skips = [e for e in logs if e["event"] == "record skipped"]
    assert len(skips) == 1
    assert (first.skipped, second.skipped) == (2, 0)  # the record and the door status, once


async def test_calls_tracked_unchanged_are_read_slim_and_news_in_full(
    serve: Any, session: aiohttp.ClientSession
) -> None:
    """A poll normalises only what is news: the calls the tracker holds unchanged come back
    without times or record (the tracker passes over them), a changed one in full."""
    ringing = {**record(3, "ring"), "started_at": None}
    bodies: list[Any] = [{"data": [ringing, record(2), record(1)]}]

    async def handler(request: web.Request) -> web.Response:
        return await pages(*bodies)(request)

    base = await serve({"/api/v1/intercom/calls": handler})
    client = VmsIntercom(settings(base), session)
    tracker = fresh_tracker()
    first = await client.poll(tracker)
    assert all(c.created_at is not None for c in first.calls)
    tracker.apply(tracker.diff(first, datetime.now(UTC)))
    again = await client.poll(tracker)
    assert [(c.id, c.created_at, c.intercom and c.intercom.id) for c in again.calls] == [
        ("3", None, 158),
        ("2", None, 158),
        ("1", None, 158),
    ]
    assert tracker.diff(again, datetime.now(UTC)).events == []
    bodies[0] = {"data": [{**ringing, "status": "missed"}, record(2), record(1)]}
    changed = await client.poll(tracker)
    assert [(c.id, c.state, c.created_at is not None) for c in changed.calls] == [
        ("3", CallState.MISSED, True),
        ("2", CallState.MISSED, False),
        ("1", CallState.MISSED, False),
    ]
    events = tracker.diff(changed, datetime.now(UTC)).events
    assert [(e.from_state, e.to_state) for e in events] == [("ringing", "missed")]
    bodies[0] = {"data": [{**record(4), "id": "x"}, record(3), record(2)]}
    broken = await client.poll(tracker)  # off the slim shape: record by record
    assert [(c.id, c.created_at is not None) for c in broken.calls] == [("3", True), ("2", True)]
