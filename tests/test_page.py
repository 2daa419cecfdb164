"""The status page and a call's story page over real HTTP: HTML, escaped, no JavaScript, the
silence form guarded by the api token."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.model import Call, CallState, Intercom, PollResult
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules
from monitor.serve.page import StatusPage
from monitor.serve.web import Readiness, build_app
from monitor.store import SqliteStore, SqlStore, open_store
from monitor.telemetry import Telemetry
from monitor.tracking.pipeline import Pipeline
from monitor.tracking.tracker import Tracker

TOKEN = "page-token-3e9a1c5d7f"
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"


async def recorded(tmp_path: Path, url: str | None = None, call_id: str = "1") -> SqlStore:
    """A store (SQLite, or the one at `url`) holding a missed call at a door whose title is
    markup."""
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - {name: missed, when: {to: missed}, notify: [chat],"
        " title: 'Missed call at {{ call.intercom.title }}'}\n"
    )
    rules = load_rules([tmp_path / "rules.yaml"], Context(notifiers=["chat"], providers=[]))
    store = await open_store(url) if url else SqliteStore(str(tmp_path / "state.db"))
    pipeline = Pipeline(store, Telemetry(CollectorRegistry()), Engine(rules), {"chat": 1})
    tracker = Tracker("door", "vms-intercom", baselined=True)
    for state, at in ((CallState.RINGING, T0), (CallState.MISSED, T0 + timedelta(seconds=30))):
        call = Call(
            id=call_id,
            state=state,
            raw_status=state.value,
            created_at=T0,
            intercom=Intercom(158, HOSTILE),
            marker=state.value,
        )
        await pipeline.process(tracker, PollResult(calls=[call]), at)
    return store


async def serve(
    store: SqlStore, token: str | None, clock: Callable[[], float] = time.time
) -> tuple[web.AppRunner, str]:
    page = StatusPage(
        lambda: store,
        token,
        lambda: ["missed"],
        lambda: {"role": "leader", "providers": {"door": {"up": True}}, "doors": []},
        CollectorRegistry(),
        ZoneInfo("Europe/Berlin"),
        clock=clock,
        providers=["door"],
    )
    runner = web.AppRunner(build_app(CollectorRegistry(), Readiness(), routes=page.routes()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


@pytest.fixture
async def site(tmp_path: Path, store_url: str) -> AsyncIterator[tuple[SqlStore, str]]:
    """The page over each store (the shared one is what a standby shows)."""
    store = await recorded(tmp_path, store_url)
    runner, base = await serve(store, TOKEN)
    yield store, base
    await runner.cleanup()
    await store.close()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, r.content_type, await r.text()


async def post(url: str, form: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=form, allow_redirects=False) as r,
    ):
        return r.status, await r.text()


async def test_the_page_shows_what_callmon_saw_escaped_and_refreshes_itself(
    site: tuple[SqlStore, str],
) -> None:
    _, base = site
    status, kind, html = await get(base + "/")
    assert (status, kind) == (200, "text/html")
    assert '<meta http-equiv="refresh" content="10">' in html
    assert HOSTILE not in html
    assert "Missed call at &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="/calls/door/1">call 1</a>' in html
    assert "<script" not in html  # no JavaScript, and nothing from outside
    assert "http://" not in html
    assert "https://" not in html
    status, _, story = await get(base + "/calls/door/1")
    assert status == 200
    assert "first seen ringing" in story
    assert "ringing → missed" in story
    assert "fired" in story
    assert (await get(base + "/calls/door/nope"))[0] == 404


async def test_the_form_adds_and_expires_a_silence_with_the_token(
    site: tuple[SqlStore, str],
) -> None:
    store, base = site
    form = {"rule": "missed", "match": "call.intercom.id=158", "for": "2h", "comment": "repair"}
    status, text = await post(base + "/silences", {**form, "token": "wrong"})
    assert status == 401
    assert "api_token" in text
    assert await store.silences() == []
    assert (await post(base + "/silences", {**form, "token": TOKEN}))[0] == 303
    (silence,) = await store.silences()
    assert silence.matchers == (("call.intercom.id", "158"),)
    _, _, html = await get(base + "/")
    assert "<td>repair</td>" in html
    expire = f"{base}/silences/{silence.id}/expire"
    assert (await post(expire, {"token": TOKEN}))[0] == 303
    _, _, html = await get(base + "/")
    assert "<td>repair</td>" not in html
    assert (await post(base + "/silences", {**form, "rule": "nope", "token": TOKEN}))[0] == 400


async def test_without_a_token_the_page_only_reads(tmp_path: Path) -> None:
    store = await recorded(tmp_path)
    runner, base = await serve(store, None)
    try:
        _, _, html = await get(base + "/")
        assert "add silence" not in html
        form = {"rule": "missed", "for": "2h", "comment": "x", "token": "anything"}
        assert (await post(base + "/silences", form))[0] == 403
    finally:
        await runner.cleanup()
        await store.close()


async def test_in_a_real_browser_a_call_s_story_is_a_click_away_and_the_form_silences(
    site: tuple[SqlStore, str], tmp_path: Path
) -> None:
    """Debian's Chromium, headless: open the page, follow a call to its story, add a silence
    through the form, see it listed; screenshots at desktop and phone widths."""
    from tests.browser import browser

    store, _ = site
    # The page's clock an hour after the recorded call: its hour is in the history drawn.
    runner, base = await serve(store, TOKEN, clock=lambda: T0.timestamp() + 3600)
    async with browser() as page:
        await page.goto(base + "/")
        text = await page.text()
        assert "Calls in progress" in text
        assert re.search(r"door 158\s+0 answered · 1 missed", text), text
        assert await page.run("document.querySelectorAll('.series svg path').length") >= 3
        # The stylesheet is applied: the Content-Security-Policy's hash is the one served.
        background = "getComputedStyle(document.body).backgroundColor"
        assert await page.run(background) == "rgb(246, 247, 249)"
        assert "13:00 0 answered, 1 missed" in await page.run(
            "document.querySelector('.series.door details').textContent"
        )
        await page.screenshot(tmp_path / "status-desktop.png", width=1280)
        await page.screenshot(tmp_path / "status-phone.png", width=390)
        await page.run(
            "document.querySelector('a[href=\"/calls/door/1\"]').click()", navigates=True
        )
        story = await page.text()
        assert "door call 1" in story
        assert "ringing → missed" in story
        await page.screenshot(tmp_path / "story.png", width=1280)
        await page.goto(base + "/")
        await page.run(
            "const f = document.querySelector('form[action=\"/silences\"]');"
            "f.comment.value = 'from the browser'; f.token.value = '" + TOKEN + "';"
            "f.submit()",
            navigates=True,
        )
        assert "from the browser" in await page.text()
    await runner.cleanup()
    assert [s.comment for s in await store.silences()] == ["from the browser"]
    for name in ("status-desktop.png", "status-phone.png", "story.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_silence_stored_with_an_endless_duration_breaks_no_list(
    site: tuple[SqlStore, str], tmp_path: Path
) -> None:
    """#23 finding 4: a silence an older callmon stored with `for: 999999999d` made `GET /`,
    `GET /api/v1/silences` and `callmon silence list` fail, so it could not even be found to
    be removed."""
    store, base = site
    await store.add_silence("missed", [], time.time(), 1e18, "for ever")
    status, _, html = await get(base + "/")
    assert status == 200
    assert "for ever" in html
    assert "9000-01-01" in html


async def test_a_call_id_with_a_slash_or_a_question_mark_links_to_its_story(
    tmp_path: Path,
) -> None:
    """#23 finding 8: a call id containing `/` got a story link that answered 404."""
    import re

    store = await recorded(tmp_path, call_id="v2/a?b#c")
    runner, base = await serve(store, TOKEN)
    try:
        _, _, html = await get(base + "/")
        (link,) = set(re.findall(r'href="(/calls/[^"]+)"', html))
        status, _, story = await get(base + link)
        assert status == 200
        assert "v2/a?b#c" in story
    finally:
        await runner.cleanup()
        await store.close()
