"""A real account's first hour: `callmon notify test` (the command, the page's button, the API),
the story link in every message as a real receiver gets it, and the page's hourly history
counted from the store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.config import Config
from monitor.delivery.trial import send_trial, trial_message
from monitor.runtime.build import load_config_rules
from monitor.runtime.daemon import Daemon
from monitor.serve.api import Api
from monitor.serve.page import StatusPage
from monitor.serve.trials import Trials
from monitor.serve.web import Readiness, build_app
from monitor.simulator.server import Simulator
from monitor.store import SqliteStore
from tests.conftest import (
    Receiver,
    cli,
    free_port,
    serving,
    wait_for,
    wait_for_metric,
    wait_until,
)
from tests.test_e2e import wait_ready

TOKEN = "first-hour-token-5b7c9e1d"
HOOK_SECRET = "hook-password-91f3"


@pytest.fixture
async def refuser() -> AsyncIterator[Receiver]:
    """A second receiver, which refuses every message (500)."""
    async with serving(Receiver(status=500)) as rec:
        yield rec


def secret_url(rec: Receiver) -> str:
    """The receiver's URL with a password in it, which no output may show."""
    return f"json://callmon:{HOOK_SECRET}@127.0.0.1:{rec.port}/hook"


# --- callmon notify test


async def test_notify_test_sends_through_every_url_and_says_how_each_went(
    receiver: Receiver, refuser: Receiver, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: missed\n    when: {to: missed}\n    notify: [ops-chat]\n"
        "    title: 'Missed call at {{ call.intercom.title }}'\n"
        "    body: 'Nobody answered for {{ call.ring_seconds }} s'\n"
    )
    config = tmp_path / "callmon.yaml"
    config.write_text(
        f"store: sqlite:///state.db\nrules: [{rules}]\nexternal_url: https://callmon.example.net\n"
        f'notifiers:\n  ops-chat:\n    urls: ["{secret_url(receiver)}"]\n'
        f'  both:\n    urls: ["{secret_url(receiver)}", "{secret_url(refuser)}"]\n'
    )
    code, out = await cli("notify", "test", "ops-chat", "-c", str(config))
    assert code == 0, out
    assert out.rstrip().endswith("  sent")
    assert receiver.titles() == ["callmon test message for ops-chat"]
    assert "Nothing happened at any door" in receiver.received[0]["message"]

    code, out = await cli("notify", "test", "both", "-c", str(config))
    assert code == 1, out
    sent, failed = out.splitlines()
    assert sent.endswith("  sent")
    assert "FAILED (failed: the service refused it)" in failed
    assert HOOK_SECRET not in out
    assert len(refuser.attempts) == 1  # one attempt, no retry: a test stays outside the outbox

    code, out = await cli("notify", "test", "ops-chat", "--rule", "missed", "-c", str(config))
    assert code == 0, out
    message = receiver.received[-1]
    assert message["title"] == "[test] Missed call at Front door"
    assert "Nobody answered for 30.0 s" in message["message"]
    assert "the call above is made up" in message["message"]
    assert "[Open callmon](https://callmon.example.net/)" in message["message"]
    assert not (tmp_path / "state.db").exists()  # outside the outbox: no store

    code, out = await cli("notify", "test", "pager", "-c", str(config))
    assert code == 1
    assert "no notifier pager in the config (it has: both, ops-chat)" in out


# --- the page's button and the API


async def site(
    tmp_path: Path, token: str | None, urls: dict[str, list[str]]
) -> tuple[web.AppRunner, str, SqliteStore]:
    store = SqliteStore(str(tmp_path / "state.db"))

    def trial(name: str) -> Any:
        async def run() -> Any:
            title, body = trial_message(name)
            return await send_trial(urls[name], title, body, per_url=5.0)

        return run

    trials = Trials({name: trial(name) for name in urls})
    rules = lambda: ["missed"]  # noqa: E731
    api = Api(lambda: store, token, rules, trials=trials)
    page = StatusPage(
        lambda: store,
        token,
        rules,
        lambda: {"role": "leader", "providers": {}, "doors": []},
        __import__("prometheus_client").CollectorRegistry(),
        __import__("datetime").UTC,
        trials=trials,
    )
    app = build_app(
        __import__("prometheus_client").CollectorRegistry(),
        Readiness(store_open=True),
        routes=[*api.routes(), *page.routes()],
    )
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    return runner, f"http://127.0.0.1:{tcp._server.sockets[0].getsockname()[1]}", store  # type: ignore[union-attr]


async def test_the_api_and_the_page_send_a_test_message_only_with_the_token(
    receiver: Receiver, refuser: Receiver, tmp_path: Path
) -> None:
    urls = {"ops-chat": [secret_url(receiver)], "both": [secret_url(receiver), secret_url(refuser)]}
    runner, base, store = await site(tmp_path, TOKEN, urls)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/api/v1/notifiers/ops-chat/test") as r:
                assert r.status == 401
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            async with s.post(f"{base}/api/v1/notifiers/ops-chat/test", headers=bearer) as r:
                assert r.status == 200
                answer = await r.json()
            assert answer["ok"] is True
            assert answer["urls"][0]["outcome"] == "sent"
            assert receiver.titles() == ["callmon test message for ops-chat"]
            async with s.post(f"{base}/api/v1/notifiers/both/test", headers=bearer) as r:
                answer = await r.json()
                text = await r.text()
            assert answer["ok"] is False
            assert [u["outcome"] for u in answer["urls"]] == ["sent", "failed"]
            assert HOOK_SECRET not in text
            async with s.post(f"{base}/api/v1/notifiers/pager/test", headers=bearer) as r:
                assert r.status == 404
            # The page: a button per notifier, sending only with the token.
            async with s.get(f"{base}/") as r:
                html = await r.text()
            assert 'action="/notifiers/ops-chat/test"' in html
            async with s.post(f"{base}/notifiers/ops-chat/test", data={"token": "nope"}) as r:
                assert r.status == 401
            assert len(receiver.received) == 2
            async with s.post(f"{base}/notifiers/both/test", data={"token": TOKEN}) as r:
                assert r.status == 200
                html = await r.text()
            assert "FAILED: failed" in html
            assert HOOK_SECRET not in html
            assert len(receiver.received) == 3
    finally:
        await runner.cleanup()
        await store.close()


async def test_without_a_token_configured_no_test_can_be_sent(
    receiver: Receiver, tmp_path: Path
) -> None:
    runner, base, store = await site(tmp_path, None, {"ops-chat": [receiver.url]})
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/api/v1/notifiers/ops-chat/test") as r:
                assert r.status == 403
            async with s.get(f"{base}/") as r:
                html = await r.text()
            assert "set api_token to test from here" in html
            assert 'action="/notifiers/' not in html
        assert receiver.received == []
    finally:
        await runner.cleanup()
        await store.close()


# --- the story link and the history, through the whole daemon


def daemon_config(
    sim: Simulator, receiver: Receiver, tmp_path: Path, store_url: str, port: int
) -> Config:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: missed\n    when: {to: missed, provider: front-door}\n"
        "    notify: [ops-chat]\n    title: 'Missed call at {{ call.intercom.title }}'\n"
        "    body: 'Story: {{ story_url }}'\n"
    )
    providers = [p for p in sim.provider_configs("200ms") if p["type"] in ("vms-intercom", "bird")]
    return Config.model_validate(
        {
            "store": store_url,
            "listen": f"127.0.0.1:{port}",
            "external_url": "https://callmon.example.net/",
            "rules": [str(rules)],
            "providers": providers,
            "notifiers": {"ops-chat": {"urls": [receiver.url]}},
        }
    )


async def history(port: int, hours: int = 2) -> dict[tuple[str, str | None], tuple[int, int]]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{port}/api/v1/history?hours={hours}") as r,
    ):
        assert r.status == 200
        found = await r.json()
    assert found["hours"] == hours
    return {
        (series["provider"], series["door"]): (
            sum(b["answered"] for b in series["buckets"]),
            sum(b["missed"] for b in series["buckets"]),
        )
        for series in found["series"]
    }


async def test_a_message_links_to_its_call_and_the_history_counts_every_call(
    sim: Simulator, receiver: Receiver, tmp_path: Path, store_url: str
) -> None:
    port = free_port()
    config = daemon_config(sim, receiver, tmp_path, store_url, port)
    daemon = Daemon(config, load_config_rules(config))
    task = asyncio.create_task(daemon.run())
    try:
        await wait_ready(port)
        for provider in ("front-door", "support"):
            series = f'callmon_last_poll_success_timestamp_seconds{{provider="{provider}"}}'
            await wait_for_metric(port, series, 1)  # the baseline is taken
        missed = []
        for door, outcomes in ((158, "aamm"), (180, "m"), (201, "a")):
            for outcome in outcomes:
                call = sim.vms.ring(door)
                if outcome == "a":
                    sim.vms.answer(call.id)
                    sim.vms.end(call.id)
                else:
                    sim.vms.miss(call.id)
                    missed.append(call.id)
        for outcome in "aam":
            call_id = sim.bird.start_call()
            if outcome == "a":
                sim.bird.answer(call_id)
                sim.bird.hang_up(call_id)
            else:
                sim.bird.no_answer(call_id)
        expected = {
            ("front-door", None): (3, 3),
            ("front-door", "158"): (2, 2),
            ("front-door", "180"): (0, 1),
            ("front-door", "201"): (1, 0),
            ("support", None): (2, 1),
        }

        async def counted() -> dict[tuple[str, str | None], tuple[int, int]]:
            return await history(port)

        assert await wait_until(counted, lambda found: found == expected, timeout=30) == expected
        # Every message links to its call's story, and the link leads there.
        await wait_for(lambda: len(receiver.received) == 3, timeout=30)
        bodies = sorted(m["message"] for m in receiver.received)
        for call_id, body in zip(sorted(missed), bodies, strict=True):
            story = f"https://callmon.example.net/calls/front-door/{call_id}"
            assert body == f"Story: {story}\n\n[Open this call in callmon]({story})"
            local = story.replace("https://callmon.example.net", f"http://127.0.0.1:{port}")
            async with aiohttp.ClientSession() as s, s.get(local) as r:
                assert r.status == 200
    finally:
        daemon.stopping.set()
        await asyncio.wait_for(task, 30)
    # A restart loses nothing: the counts are the store's.
    port = free_port()
    config = daemon_config(sim, receiver, tmp_path, store_url, port)
    again = Daemon(config, load_config_rules(config))
    task = asyncio.create_task(again.run())
    try:
        await wait_ready(port)
        assert await history(port) == expected
    finally:
        again.stopping.set()
        await asyncio.wait_for(task, 30)


def test_the_link_is_markdown_where_the_target_takes_it_and_text_elsewhere() -> None:
    from monitor.delivery.sender import Sender

    story = "calls/front-door/48213"
    link = "https://callmon.example.net/calls/front-door/48213"
    markdown = Sender("json://127.0.0.1/hook", external_url="https://callmon.example.net")
    body, kind = markdown.compose("Back_door rang *twice*", story)
    assert kind == "markdown"
    # The alert's text is plain: what would format it is escaped, the link is markdown.
    assert body == f"Back\\_door rang \\*twice\\*\n\n[Open this call in callmon]({link})"
    assert markdown.compose("Provider down", None)[0].endswith(
        "[Open callmon](https://callmon.example.net/)"
    )
    text = Sender("console://", external_url="https://callmon.example.net")
    assert text.compose("Back_door rang", story) == (
        f"Back_door rang\n\nOpen this call in callmon: {link}",
        None,
    )
    plain = Sender("json://127.0.0.1/hook")
    assert plain.compose("Back_door rang", story) == ("Back_door rang", None)


async def test_ready_before_the_notifier_urls_are_checked_and_nothing_sent_until_they_are(
    sim: Simulator, receiver: Receiver, tmp_path: Path
) -> None:
    """`run` checks the notifier URLs beside its start (apprise takes 0.15 s to find its
    plugins, most of a start-up): polls and decides meanwhile, and sends nothing until the
    check has passed; what was decided waits in the outbox."""
    port = free_port()
    config = daemon_config(sim, receiver, tmp_path, f"sqlite:///{tmp_path / 's.db'}", port)
    checked = threading.Event()
    daemon = Daemon(config, load_config_rules(config), check=lambda: checked.wait(30) and None)
    task = asyncio.create_task(daemon.run())
    try:
        await wait_ready(port)
        series = 'callmon_last_poll_success_timestamp_seconds{provider="front-door"}'
        await wait_for_metric(port, series, 1)  # the baseline is taken
        call = sim.vms.ring(158)
        sim.vms.miss(call.id)
        await wait_for_metric(port, 'callmon_notification_queue_depth{notifier="ops-chat"}', 1)
        assert receiver.received == []
        assert not [name for name in daemon.supervisor.beats if name.startswith("send:")]
        checked.set()
        await wait_for(lambda: len(receiver.received) == 1, timeout=30)
        assert "send:ops-chat:0" in daemon.supervisor.beats
    finally:
        checked.set()
        daemon.stopping.set()
        await asyncio.wait_for(task, 30)
    assert daemon.exit_code == 0
