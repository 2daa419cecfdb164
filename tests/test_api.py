"""The JSON API's silences and outbox over real HTTP, on both stores: reading is open, changing
needs the bearer token (401) and is refused without one configured (403); bad input is a JSON
error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.serve.api import Api
from monitor.serve.web import Readiness, build_app
from monitor.store import Delivery, SqlStore, open_store
from tests.test_store import alert

TOKEN = "api-token-5d8c2f7a1b9e"
NOW = 1_800_000_000.0
Call = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    opened = await open_store(store_url)
    yield opened
    await opened.close()


async def serve(store: SqlStore, token: str | None) -> tuple[web.AppRunner, str]:
    api = Api(lambda: store, token, lambda: ["missed", "offline"], clock=lambda: NOW)
    runner = web.AppRunner(build_app(CollectorRegistry(), Readiness(), routes=api.routes()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/api/v1"


@pytest.fixture
async def api(store: SqlStore) -> AsyncIterator[Call]:
    runner, base = await serve(store, TOKEN)

    async def call(method: str, path: str, body: Any = None, token: str | None = TOKEN) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = body if isinstance(body, bytes) else None
        async with (
            aiohttp.ClientSession() as s,
            s.request(
                method,
                base + path,
                json=None if data is not None else body,
                data=data,
                headers=headers,
            ) as r,
        ):
            assert r.content_type == "application/json"
            return r.status, await r.json()

    yield call
    await runner.cleanup()


async def test_a_silence_is_created_listed_and_expired(api: Call, store: SqlStore) -> None:
    status, made = await api(
        "POST",
        "/silences",
        {"rule": "missed", "match": {"call.intercom.id": "158"}, "for": "2h", "comment": "repair"},
    )
    assert status == 201
    assert made["rule"] == "missed"
    assert made["match"] == {"call.intercom.id": "158"}
    assert made["ends"] == "2027-01-15T10:00:00+00:00"
    assert await api("GET", "/silences", token=None) == (200, {"silences": [made]})
    (kept,) = await store.silences(NOW)
    assert kept.matchers == (("call.intercom.id", "158"),)
    assert await api("DELETE", f"/silences/{made['id']}") == (
        200,
        {"id": made["id"], "expired": True},
    )
    assert await api("GET", "/silences") == (200, {"silences": []})
    assert await api("DELETE", f"/silences/{made['id']}") == (
        404,
        {"error": f"no silence {made['id']} in force"},
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"for": "1h"}, "rule: the name of the rule to silence is required"),
        ({"rule": "nope", "for": "1h"}, "rule: unknown rule 'nope'"),
        ({"rule": "missed", "for": "soon"}, "invalid duration 'soon'"),
        ({"rule": "missed", "for": "1h", "match": {"caller": "1"}}, "unknown event field"),
        ({"rule": "missed", "for": "1h", "match": ["x"]}, "match: an object of field to value"),
        (b"{not json", "the body is not JSON"),
        # #23 finding 4: answered 500, yet stored, and every list failed after it
        ({"rule": "missed", "for": "999999999d"}, "a duration is at most 366d (a year)"),
        ([1, 2], "the body is a JSON object"),
    ],
)
async def test_a_bad_silence_is_a_json_error(
    api: Call, store: SqlStore, body: Any, error: str
) -> None:
    status, answer = await api("POST", "/silences", body)
    assert status == 400
    assert error in answer["error"]
    assert await store.silences() == []


async def test_changes_need_the_token_and_a_read_only_api_refuses_them(
    api: Call, store: SqlStore
) -> None:
    body = {"rule": "missed", "for": "1h"}
    for token in (None, "wrong-token-0000000000"):
        status, answer = await api("POST", "/silences", body, token=token)
        assert status == 401
        assert answer == {"error": "a change needs Authorization: Bearer with the api_token"}
        assert (await api("POST", "/outbox/retry", {}, token=token))[0] == 401
    runner, base = await serve(store, None)  # no api_token configured
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/silences", json=body) as r:
                assert r.status == 403
                assert "read-only" in (await r.json())["error"]
            async with s.get(f"{base}/silences") as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
    assert await store.silences() == []


async def test_the_outbox_is_listed_and_retried(api: Call, store: SqlStore) -> None:
    await store.enqueue([Delivery(alert("a", "first"), 0), Delivery(alert("b", "second"), 0)])
    first, _ = await store.outbox()
    await store.mark_dead(first.id, "undelivered after 60 s")
    status, listed = await api("GET", "/outbox?status=dead", token=None)
    assert status == 200
    assert [(i["title"], i["status"], i["last_error"]) for i in listed["outbox"]] == [
        ("first", "dead", "undelivered after 60 s")
    ]
    assert (await api("GET", "/outbox?status=lost"))[0] == 400
    assert await api("POST", "/outbox/retry", {"dead": True}) == (200, {"retried": 1})
    assert await api("POST", "/outbox/retry", b"") == (200, {"retried": 2})
    assert [i.status for i in await store.outbox()] == ["pending", "pending"]
    assert await api("POST", "/outbox/retry", {"dead": "yes"}) == (
        400,
        {"error": "dead: true or false"},
    )


async def test_what_callmon_saw_and_decided_reads_as_json(
    api: Call, store: SqlStore, tmp_path: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from monitor.model import CallState, PollResult
    from monitor.rules.engine import Engine
    from monitor.rules.loader import Context, load_rules
    from monitor.telemetry import Telemetry
    from monitor.tracking.pipeline import Pipeline
    from monitor.tracking.tracker import Tracker
    from tests.test_explain import RULES, ring

    (tmp_path / "rules.yaml").write_text(RULES)
    rules = load_rules([tmp_path / "rules.yaml"], Context(notifiers=["chat"], providers=[]))
    pipeline = Pipeline(store, Telemetry(CollectorRegistry()), Engine(rules), {"chat": 1})
    tracker = Tracker("door", "vms-intercom", baselined=True)
    t0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    for state, at in ((CallState.RINGING, t0), (CallState.MISSED, t0 + timedelta(seconds=30))):
        await pipeline.process(tracker, PollResult(calls=[ring("1", 158, state, at)]), at)

    status, story = await api("GET", "/calls/door/1", token=None)
    assert status == 200
    ringing, missed = story["steps"]
    assert (ringing["from"], ringing["to"], ringing["via"]) == (None, "ringing", "poll")
    assert [(v["rule"], v["verdict"]) for v in missed["verdicts"]] == [
        ("gate", "fired"),
        ("calm", "fired"),
        ("hushed", "fired"),
    ]
    assert missed["verdicts"][0]["deliveries"][0]["status"] == "pending"
    assert (await api("GET", "/calls/door/404"))[0] == 404

    status, events = await api("GET", "/events?limit=1")
    assert [(e["call_id"], e["to"]) for e in events["events"]] == [("1", "missed")]
    assert (await api("GET", "/events?limit=0"))[0] == 400
    status, alerts = await api("GET", "/alerts")
    assert [(a["rule"], a["how"], len(a["deliveries"])) for a in alerts["alerts"]] == [
        ("hushed", "sent", 1),
        ("calm", "sent", 1),
        ("gate", "sent", 1),
    ]
    status, overview = await api("GET", "/status")
    assert overview["outbox"] == {"pending": 3, "dead": 0}
    assert overview["rules"] == ["missed", "offline"]


async def test_an_unknown_endpoint_is_a_json_404(api: Call) -> None:
    assert await api("GET", "/nothing-here") == (
        404,
        {"error": "no endpoint GET /api/v1/nothing-here"},
    )
    assert (await api("PUT", "/silences"))[0] in (404, 405)


def test_wrong_tokens_are_slowed_down_per_address() -> None:
    """#23 finding 8: `api_token` could be guessed at 1,143 tries a second."""
    from monitor.serve.auth import ApiError, Guesses, authorize

    now = [0.0]
    guesses = Guesses(burst=5, every=1.0, clock=lambda: now[0])
    token = TOKEN.encode()

    def attempt(given: str, client: str = "10.0.0.9") -> int:
        try:
            authorize(token, given, guesses, client)
        except ApiError as exc:
            return exc.status
        return 200

    assert [attempt("guess") for _ in range(8)] == [401] * 5 + [429] * 3
    assert attempt(TOKEN) == 429  # not even looked at: a guesser learns nothing
    assert attempt(TOKEN, client="10.0.0.10") == 200  # another address is not held up
    now[0] += 1.0
    assert attempt("guess") == 401  # one more a second
    assert attempt("guess") == 429
    now[0] += 1.0
    assert attempt(TOKEN) == 200


async def test_the_api_answers_429_to_an_address_that_keeps_guessing(api: Call) -> None:
    statuses = [(await api("POST", "/outbox/retry", {}, token="wrong-token"))[0] for _ in range(10)]
    assert statuses.count(401) <= 6
    assert statuses[-1] == 429


async def test_malformed_requests_get_a_4xx_never_a_500(api: Call) -> None:
    """#23 finding 8: an id past 2**63 and a body nested deeper than the JSON parser's limit
    were answered 500."""
    assert (await api("DELETE", "/silences/99999999999999999999999999"))[0] == 400
    assert (await api("POST", "/outbox/retry", b"[" * 100_000))[0] == 400
    assert (await api("POST", "/silences", b'{"rule": ' + b"[" * 100_000))[0] == 400
