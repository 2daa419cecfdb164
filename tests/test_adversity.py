"""What a hostile network, a careless operator and an unlucky month tried against callmon's
promise that monitoring never stops silently (#23): each finding, reproduced as it was found,
and what callmon does now."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from monitor.simulator.bird import Subscription
from monitor.simulator.server import Simulator
from tests.conftest import (
    DaemonProcess,
    Receiver,
    metric_value,
    metrics,
    wait_for,
    wait_for_metric,
)
from tests.test_push import KEY, PUBLIC, pushing_daemon

# --- 1. A pile of open calls


async def test_a_pile_of_open_calls_never_blinds_a_provider(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """A thousand calls tracked as ringing that the list no longer returns (pushed for ids the
    API does not know) made every poll fetch each by id: at 10 requests a second no poll
    finished within its deadline, and a real missed call was never notified. Now each poll
    re-checks a budget of them, oldest first, and says it is behind."""
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
    poll_interval: 1s
    max_backoff: 1s
    webhook:
      signing_key_file: bird-key
      url: {PUBLIC}""",
    )
    pile = 1000
    hook = Subscription(f"http://127.0.0.1:{port}/hooks/support", KEY, PUBLIC)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    gate = asyncio.Semaphore(16)

    async def push(i: int) -> int:
        payload = {"id": f"lost-{i}", "status": "ringing", "createdAt": created}
        body = {"service": "channels", "event": "voice.inbound", "payload": payload}
        async with gate:
            return await hook.post(json.dumps(body).encode())

    assert set(await asyncio.gather(*(push(i) for i in range(pile)))) == {200}
    ringing = 'callmon_calls_active{provider="support",state="ringing"}'
    await wait_for_metric(port, ringing, pile, timeout=60)
    waiting = 'callmon_provider_rechecks_waiting{provider="support"}'
    await wait_for_metric(port, waiting, 1, timeout=30)  # it says it cannot keep up

    call = sim.bird.start_call()
    sim.bird.no_answer(call)
    await wait_for(lambda: f"missed {call} via poll" in receiver.titles(), timeout=30)
    left = metric_value(await metrics(port), ringing)
    assert left < pile  # the pile is worked through, poll after poll
    assert "provider cannot keep up" in daemon.logs()
    assert await daemon.terminate() == 0


def test_rechecks_go_round_the_open_calls_oldest_first_within_a_budget() -> None:
    from monitor.providers.base import Rechecks

    rechecks = Rechecks(budget=2)
    calls = ["a", "b", "c", "d", "e"]  # oldest first
    assert rechecks.pick(calls) == (["a", "b"], 3)
    assert rechecks.pick(calls) == (["c", "d"], 3)
    assert rechecks.pick(calls) == (["e", "a"], 3)  # round again, the longest unchecked first
    assert rechecks.pick(["new", *calls]) == (["new", "b"], 4)  # a new call is never last
    assert rechecks.pick(["x"]) == (["x"], 0)
