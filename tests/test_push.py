"""Pushes (webhooks) over real HTTP: the simulator signs as Bird does, callmon verifies, keeps,
applies once, and polling agrees afterwards."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.simulator.bird import Subscription
from monitor.simulator.faults import Fault
from monitor.simulator.server import Simulator
from monitor.sources.bird import BirdWebhook, accept
from monitor.sources.webhook import MAX_BODY, Received, Refused
from tests.conftest import (
    DaemonProcess,
    Receiver,
    free_port,
    metric_value,
    metrics,
    wait_for,
    wait_for_metric,
    wait_until,
)

KEY = "bird-signing-key-5e1f9a"
PUBLIC = "https://callmon.example.net/hooks/support"
RULE = """\
rules:
  - name: missed
    when: {to: [missed, rejected]}
    notify: [chat]
    title: "missed {{ call.id }} via {{ via }}"
"""


def bird_settings() -> BirdWebhook:
    return BirdWebhook(signing_key=KEY, url=PUBLIC)


def event(status: str = "no-answer", call_id: str = "c-1") -> bytes:
    payload = {"id": call_id, "status": status, "createdAt": "2026-11-23T12:00:00Z"}
    return json.dumps(
        {"service": "channels", "event": "voice.inbound", "payload": payload}
    ).encode()


def signed(body: bytes, key: str = KEY, url: str = PUBLIC, stamp: str = "1795000000") -> Received:
    signature = Subscription("unused", key, url).sign(body, stamp)
    headers = {"messagebird-request-timestamp": stamp, "messagebird-signature": signature}
    try:
        at = float(stamp)  # it arrives as it is signed
    except ValueError:
        at = time.time()
    return Received(headers, {}, body, at=at)


def refusal(got: Received) -> tuple[int, str]:
    with pytest.raises(Refused) as refused:
        accept(bird_settings(), got)
    return refused.value.status, str(refused.value)


def test_a_bird_push_signed_as_bird_signs_is_accepted_as_it_came() -> None:
    body = event()
    assert accept(bird_settings(), signed(body)) == body.decode()


def test_a_bird_push_that_is_not_bird_s_is_refused() -> None:
    body = event()
    assert refusal(signed(body, key="another-key")) == (401, "bird push with a wrong signature")
    assert refusal(signed(body, url="https://elsewhere/hooks/support"))[0] == 401
    assert refusal(Received({}, {}, body)) == (
        401,
        "bird push without messagebird-signature and its timestamp",
    )
    tampered = signed(body)
    assert (
        refusal(Received(tampered.headers, {}, body.replace(b"no-answer", b"completed")))[0] == 401
    )
    assert refusal(signed(b'{"payload": []}'))[0] == 400
    assert refusal(signed(event(status="teleported"))) == (
        400,
        "unknown Bird call status 'teleported'",
    )


async def pushing_daemon(
    daemon_factory: Callable[..., DaemonProcess],
    receiver: Receiver,
    folder: Path,
    provider: str,
    rule: str = RULE,
) -> tuple[DaemonProcess, int]:
    """A daemon (a process, on SQLite) with one `provider` entry (YAML, indented as a list
    item), started and past its baseline; and its port."""
    port = free_port()
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "missed.yaml").write_text(rule)
    daemon = daemon_factory(
        f"""
store: sqlite:///{folder / "state.db"}
listen: 127.0.0.1:{port}
rules: [{folder / "rules"}]
providers:
{provider}
notifiers:
  chat:
    urls: ["{receiver.url}"]
"""
    )
    await daemon.start()
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)
    return daemon, port


async def polls_blocked(api: Any, port: int, provider: str) -> None:
    """No poll sees anything from now on: what arrives, arrives by push."""
    api.faults.add(Fault("status", status=503), times=10_000)
    await wait_for_metric(port, f'callmon_provider_up{{provider="{provider}"}}', 0, timeout=20)


async def polls_again(api: Any, port: int, provider: str) -> None:
    """Polls succeed again; returns once three more have."""
    api.faults.clear()
    await wait_for_metric(port, f'callmon_provider_up{{provider="{provider}"}}', 1, timeout=20)
    polled = f'callmon_provider_requests_total{{code="200",provider="{provider}"}}'
    await wait_for_metric(port, polled, metric_value(await metrics(port), polled) + 3)


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers or {}) as r:
        return r.status


def kept(store: Path) -> int:
    db = sqlite3.connect(store)
    try:
        return int(db.execute("SELECT count(*) FROM pushes").fetchone()[0])
    finally:
        db.close()


async def test_a_push_alerts_once_before_any_poll_and_polling_agrees_afterwards(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    (tmp_path / "bird-key").write_text(KEY + "\n")
    daemon, port = await pushing_daemon(
        daemon_factory,
        receiver,
        tmp_path,
        f"""\
  - name: support
    type: bird
    base_url: {sim.base_url}
    token: {sim.bird.access_key}
    workspace_id: {sim.bird.workspace_id}
    channel_id: {sim.bird.channel_id}
    poll_interval: 300ms
    max_backoff: 300ms
    webhook:
      signing_key_file: bird-key
      url: {PUBLIC}""",
    )
    hook = f"http://127.0.0.1:{port}/hooks/support"
    sim.bird.subscribe(hook, KEY, PUBLIC)
    await polls_blocked(sim.bird, port, "support")

    call = sim.bird.start_call()
    sim.bird.reject(call)  # pushed: ringing, then busy
    await wait_for(lambda: receiver.titles() == [f"missed {call} via push"], timeout=15)
    accepted = 'callmon_webhook_requests_total{outcome="accepted",provider="support"}'
    await wait_for_metric(port, accepted, 2)
    body = await metrics(port)
    detected = 'callmon_event_detection_seconds_count{provider="support",via="push"}'
    assert metric_value(body, detected) >= 1

    # Bird retries for hours: the same event again changes nothing.
    replay = Subscription(hook, KEY, PUBLIC)
    last = json.dumps(
        {
            "service": "channels",
            "event": "voice.inbound",
            "payload": sim.bird.calls[call].as_json(sim.bird.channel_id),
        }
    ).encode()
    assert await replay.post(last) == 200
    # A late push of an earlier status (pushes may arrive out of order) moves nothing back.
    earlier = json.loads(last)
    earlier["payload"].update(status="ringing", endedAt=None)
    assert await replay.post(json.dumps(earlier).encode()) == 200
    await wait_for_metric(port, accepted, 4)
    await wait_until(lambda: asyncio.to_thread(kept, tmp_path / "state.db"), lambda n: n == 0)
    body = await metrics(port)
    assert metric_value(body, 'callmon_calls_active{provider="support",state="ringing"}') == 0

    # What is not Bird's changes nothing, each with its status.
    assert await post(hook, last) == 401
    assert await Subscription(hook, "wrong-key", PUBLIC).post(last) == 401
    assert await replay.post(b"[1, 2, 3]") == 400
    assert await replay.post(b" " * (MAX_BODY + 1)) == 413
    assert await post(f"http://127.0.0.1:{port}/hooks/nobody", last) == 404
    body = await metrics(port)
    for outcome, count in (("unauthorized", 2), ("invalid", 1), ("too_large", 1)):
        series = f'callmon_webhook_requests_total{{outcome="{outcome}",provider="support"}}'
        assert metric_value(body, series) == count

    # The poll catches up with the same change: no second event.
    await polls_again(sim.bird, port, "support")
    body = await metrics(port)
    busy = (
        'callmon_call_transitions_total{from_state="ringing",provider="support",'
        'to_state="rejected"}'
    )
    assert metric_value(body, busy) == 1
    assert receiver.titles() == [f"missed {call} via push"]
    assert KEY not in daemon.logs()
    assert await daemon.terminate() == 0


# --- Bandwidth

BW_USER, BW_PASSWORD = "callmon", "bw-callback-pass-31c"


def bandwidth_settings() -> Any:
    from monitor.sources.bandwidth import BandwidthWebhook

    return BandwidthWebhook(username=BW_USER, password=BW_PASSWORD)


def basic(user: str = BW_USER, password: str = BW_PASSWORD) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


def bw_event(**fields: Any) -> bytes:
    return json.dumps({"eventType": "hangup", "callId": "c-1", **fields}).encode()


def test_a_bandwidth_push_needs_the_callback_s_credentials_and_a_call_event() -> None:
    from monitor.sources import bandwidth
    from monitor.sources.webhook import Reply

    body = bw_event(cause="NO_ANSWER", time="2026-11-23T12:00:00Z")
    assert bandwidth.accept(bandwidth_settings(), Received(basic(), {}, body)) == body.decode()
    for headers in (
        {},
        basic(password="guess"),
        basic(user="other"),
        {"Authorization": "Basic @@"},
    ):
        with pytest.raises(Refused) as refused:
            bandwidth.accept(bandwidth_settings(), Received(headers, {}, body))
        assert refused.value.status == 401
    with pytest.raises(Refused) as refused:
        bandwidth.accept(bandwidth_settings(), Received(basic(), {}, b'{"eventType": 3}'))
    assert refused.value.status == 400
    other = bandwidth.accept(
        bandwidth_settings(), Received(basic(), {}, bw_event(eventType="dtmf"))
    )
    assert isinstance(other, Reply)
    assert (other.status, other.outcome) == (200, "ignored")


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({"eventType": "incomingcall"}, "ringing"),
        ({"eventType": "answer"}, "answered"),
        ({"eventType": "timeout"}, "missed"),
        ({"cause": "NORMAL_CLEARING", "callState": "completed"}, "ended"),
        ({"cause": "ORIGINATOR_CANCEL", "callState": "completed"}, "missed"),
        ({"cause": "USER_BUSY", "callState": "rejected"}, "rejected"),
        ({"cause": "UNALLOCATED_NUMBER", "callState": "rejected"}, "rejected"),
        ({"eventType": "initiate"}, "ringing"),
        (
            {"eventType": "disconnect", "cause": "hangup", "answerTime": "2026-11-23T12:00:05Z"},
            "ended",
        ),
        ({"eventType": "disconnect", "cause": "hangup"}, "missed"),
        ({"eventType": "disconnect", "cause": "busy"}, "rejected"),
        ({"eventType": "disconnect", "cause": "cancel"}, "missed"),
        ({"eventType": "disconnect", "cause": "error"}, "failed"),
    ],
)
async def test_each_bandwidth_event_means_what_the_poll_would_read(
    fields: dict[str, Any], state: str
) -> None:
    from monitor.sources.bandwidth import Bandwidth, BandwidthProvider

    settings = BandwidthProvider(
        type="bandwidth",
        name="sales",
        base_url="http://127.0.0.1:1",
        user_id="u-1",
        api_token="t",
        api_secret="s",
    )
    async with aiohttp.ClientSession() as session:
        client = Bandwidth(settings, session)
        body = bw_event(time="2026-11-23T12:00:10Z", **fields)
        (call,) = await client.pushed(body.decode())
    assert call.state == state
    assert call.id == "c-1"
    if "cause" in fields:
        assert call.raw["hangupCause"] == fields["cause"]


async def test_a_bandwidth_callback_alerts_once_with_its_hangup_cause(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    bw = sim.bandwidth
    rule = RULE.replace('via {{ via }}"', 'via {{ via }}: {{ call.raw.hangupCause }}"')
    daemon, port = await pushing_daemon(
        daemon_factory,
        receiver,
        tmp_path,
        f"""\
  - name: sales
    type: bandwidth
    base_url: {sim.base_url}
    user_id: {bw.user_id}
    api_token: {bw.api_token}
    api_secret: {bw.api_secret}
    poll_interval: 300ms
    max_backoff: 300ms
    webhook: {{username: {BW_USER}, password: {BW_PASSWORD}}}""",
        rule,
    )
    hook = f"http://127.0.0.1:{port}/hooks/sales"
    bw.subscribe(hook.replace("http://", f"http://{BW_USER}:{BW_PASSWORD}@"))
    await polls_blocked(bw, port, "sales")

    call = bw.start_call()
    bw.no_answer(call)
    cause = bw.calls[call].cause
    await wait_for(lambda: receiver.titles() == [f"missed {call} via push: {cause}"], timeout=15)
    replayed = bw_event(callId=call, cause=cause, callState="completed", time="2026-11-23T12:00Z")
    assert await post(hook, replayed, basic()) == 200  # the same hangup again: nothing new
    assert await post(hook, bw_event(callId=call, cause="NO_ANSWER")) == 401
    wrong = basic(password="nope")
    assert await post(hook, bw_event(callId=call), wrong) == 401
    assert await post(hook, bw_event(eventType="speak"), basic()) == 200
    body = await metrics(port)
    for outcome, count in (("accepted", 3), ("unauthorized", 2), ("ignored", 1)):
        series = f'callmon_webhook_requests_total{{outcome="{outcome}",provider="sales"}}'
        assert metric_value(body, series) == count

    await wait_until(lambda: asyncio.to_thread(kept, tmp_path / "state.db"), lambda n: n == 0)
    await polls_again(bw, port, "sales")
    missed = (
        'callmon_call_transitions_total{from_state="ringing",provider="sales",to_state="missed"}'
    )
    assert metric_value(await metrics(port), missed) == 1
    assert receiver.titles() == [f"missed {call} via push: {cause}"]
    assert BW_PASSWORD not in daemon.logs()
    assert await daemon.terminate() == 0


# --- CINNOX

CINNOX_TOKEN = "cinnox-hook-token-9b2"


def cinnox_settings() -> Any:
    from monitor.sources.cinnox import CinnoxWebhook

    return CinnoxWebhook(token=CINNOX_TOKEN)


def test_a_cinnox_push_needs_the_token_answers_the_challenge_and_keeps_call_events() -> None:
    from monitor.sources import cinnox
    from monitor.sources.webhook import Reply

    token = {"token": CINNOX_TOKEN}
    hello = cinnox.accept(cinnox_settings(), Received({}, token, b'{"challenge": "abc123"}'))
    assert isinstance(hello, Reply)
    assert hello.body == {"code": 0, "result": {"challenge": "abc123"}}
    end = b'{"message": {"id": "f00d", "status": "CallEnd", "serviceId": "svc-1"}}'
    assert cinnox.accept(cinnox_settings(), Received({}, token, end)) == end.decode()
    for query in ({}, {"token": "guess"}, {"token": CINNOX_TOKEN + "x"}):
        with pytest.raises(Refused) as refused:
            cinnox.accept(cinnox_settings(), Received({}, query, end))
        assert refused.value.status == 401
    for body in (b"[]", b'{"message": {"id": "f00d", "status": "CallRinging"}}', b"{}"):
        with pytest.raises(Refused) as refused:
            cinnox.accept(cinnox_settings(), Received({}, token, body))
        assert refused.value.status == 400


async def test_a_cinnox_call_end_reads_the_final_record_at_once(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """The poll runs once an hour here: only the push can bring the call, and its record shows
    in the call log a second after the call ended (CINNOX publishes late)."""
    cx = sim.cinnox
    cx.late = (1.0, 1.0)
    daemon, port = await pushing_daemon(
        daemon_factory,
        receiver,
        tmp_path,
        f"""\
  - name: contact-centre
    type: cinnox
    base_url: {sim.base_url}
    app_id: {cx.app_id}
    token: {cx.token}
    poll_interval: 1h
    webhook: {{token: {CINNOX_TOKEN}}}""",
    )
    hook = f"http://127.0.0.1:{port}/hooks/contact-centre"
    assert await cx.subscribe(f"{hook}?token=wrong") is False
    assert await cx.subscribe(f"{hook}?token={CINNOX_TOKEN}") is True

    call = cx.start_call()
    cx.reject(call)
    await wait_for(lambda: receiver.titles() == [f"missed {call} via push"], timeout=15)
    body = await metrics(port)
    for outcome, count in (("challenge", 1), ("accepted", 2), ("unauthorized", 1)):
        series = f'callmon_webhook_requests_total{{outcome="{outcome}",provider="contact-centre"}}'
        assert metric_value(body, series) == count
    assert CINNOX_TOKEN not in daemon.logs()
    assert await daemon.terminate() == 0


async def test_a_slow_or_oversized_body_is_refused_without_keeping_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender that stalls mid-body gets 408 once the (here shortened) body timeout passes; a
    body announced over 64 KiB gets 413 before it is read."""
    from aiohttp import web
    from prometheus_client import CollectorRegistry

    from monitor.serve import hooks as push
    from monitor.serve.web import Readiness, build_app
    from monitor.sources import bird
    from monitor.sources.bird import BirdProvider
    from monitor.store import SqliteStore
    from monitor.telemetry import Telemetry

    monkeypatch.setattr(push, "BODY_TIMEOUT", 0.5)
    store = SqliteStore(str(tmp_path / "state.db"))
    provider = BirdProvider(
        type="bird",
        name="support",
        base_url="http://127.0.0.1:1",
        token="t",
        workspace_id="w",
        channel_id="c",
        webhook=bird_settings(),
    )
    telemetry = Telemetry(CollectorRegistry())
    assert bird.PLUGIN.webhook is not None
    hooks = push.Hooks(
        {"support": (provider, bird.PLUGIN.webhook)}, lambda: store, telemetry, lambda: None
    )
    runner = web.AppRunner(build_app(telemetry.registry, Readiness(), hooks.handle))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:

        async def raw(head: str, body: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head.encode() + body)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(200), 10)
            writer.close()
            return answer

        stalled = "POST /hooks/support HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        assert (await raw(stalled, b"{")).startswith(b"HTTP/1.1 408")
        huge = f"POST /hooks/support HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
        assert (await raw(huge, b"")).startswith(b"HTTP/1.1 413")
        assert await store.pushes(10) == []
        count = telemetry.registry.get_sample_value
        labels = {"provider": "support"}
        assert count("callmon_webhook_requests_total", {**labels, "outcome": "timeout"}) == 1
        assert count("callmon_webhook_requests_total", {**labels, "outcome": "too_large"}) == 1
    finally:
        await runner.cleanup()
        await store.close()
