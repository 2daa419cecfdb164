"""Several replicas on one PostgreSQL store, as real processes: the simulator's missed calls each
reach the chat once while leaders are killed, frozen, stopped, and the database restarts.

Each replica posts to its own path on one receiver (`/hook/NAME`), so that a test sees who sent
what. The figures of a run (failover times, duplicates, lost) are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.simulator.server import Simulator
from tests.conftest import (
    ROOT,
    DaemonProcess,
    free_port,
    metric_value,
    metrics,
    wait_for,
    wait_for_metric,
    wait_until,
)

TOKEN = "replica-test-token"
TTL = 2.0
POLL = 0.5
RULE = """\
rules:
  - name: missed
    when: {to: missed}
    notify: [chat]
    title: "missed {{ call.id }}"
"""


BIRD_KEY = "replica-bird-key-77"
BIRD_URL = "https://callmon.example.net/hooks/support"


def bird_provider(sim: Simulator) -> str:
    """A Bird provider that learns of calls by push (its poll only takes the baseline)."""
    return f"""
  - name: support
    type: bird
    base_url: {sim.base_url}
    token: {sim.bird.access_key}
    workspace_id: {sim.bird.workspace_id}
    channel_id: {sim.bird.channel_id}
    poll_interval: 1h
    webhook: {{signing_key: {BIRD_KEY}, url: "{BIRD_URL}"}}
"""


@dataclass
class Hooks:
    """One receiver for every replica: who posted which title, and when."""

    port: int = 0
    posts: list[tuple[str, str, float]] = field(default_factory=list)
    status: int = 200
    refusals: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.status != 200:
            self.refusals.append(time.time())
            return web.Response(status=self.status)
        self.posts.append((request.match_info["replica"], str(body.get("title")), time.time()))
        return web.Response(text="ok")

    def titles(self) -> Counter[str]:
        return Counter(title for _, title, _ in self.posts)

    def sent_by(self, replica: str, since: float = 0.0) -> list[str]:
        return [title for who, title, at in self.posts if who == replica and at >= since]


@pytest.fixture
async def hooks() -> AsyncIterator[Hooks]:
    found = Hooks()
    app = web.Application()
    app.router.add_post("/hook/{replica}", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield found
    await runner.cleanup()


@dataclass
class Replica:
    name: str
    port: int
    daemon: DaemonProcess

    @property
    def pid(self) -> int:
        assert self.daemon.proc is not None
        return self.daemon.proc.pid

    async def role(self) -> str | None:
        """`leader` or `standby` as /readyz says; None when it does not answer."""
        url = f"http://127.0.0.1:{self.port}/readyz"
        try:
            timeout = aiohttp.ClientTimeout(total=1)
            async with aiohttp.ClientSession(timeout=timeout) as s, s.get(url) as r:
                if r.status != 200:
                    return None
                payload: dict[str, Any] = await r.json()
                return str(payload.get("role"))
        except (aiohttp.ClientError, TimeoutError):
            return None


@pytest.fixture
async def replicas(tmp_path: Path, sim: Simulator, hooks: Hooks) -> AsyncIterator[Any]:
    made: list[Replica] = []
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "missed.yaml").write_text(RULE)

    def make(
        store: str, count: int, ttl: float = TTL, with_bird: bool = False, notifier: str = ""
    ) -> list[Replica]:
        sim.vms.token = TOKEN
        for _i in range(count):
            name = f"r{len(made)}"
            port = free_port()
            config = tmp_path / f"{name}.yaml"
            config.write_text(
                f"""
store: "{store}"
listen: 127.0.0.1:{port}
lease_ttl: {ttl}s
shutdown_grace: 5s
rules: [{tmp_path / "rules"}]
providers:
  - name: front-door
    type: vms-intercom
    base_url: {sim.base_url}
    token: ${{VMS_TOKEN}}
    poll_interval: {int(POLL * 1000)}ms
{bird_provider(sim) if with_bird else ""}
notifiers:
  chat:
    urls: ["json://127.0.0.1:{hooks.port}/hook/{name}"]
    {notifier}
"""
            )
            env = {**os.environ, "VMS_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
            daemon = DaemonProcess(config, env, log_path=tmp_path / f"{name}.log")
            made.append(Replica(name, port, daemon))
        return made[-count:]

    yield make
    for replica in made:
        proc = replica.daemon.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
            await proc.wait()  # reaped in this loop: no warning from a closed one later


async def leader_among(replicas: list[Replica], timeout: float = 30.0) -> Replica:
    """The one replica that says it leads (failing when none or two do)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        roles = await asyncio.gather(*(r.role() for r in replicas))
        leaders = [r for r, role in zip(replicas, roles, strict=True) if role == "leader"]
        assert len(leaders) <= 1, f"two leaders at once: {[r.name for r in leaders]}"
        if leaders:
            return leaders[0]
        assert loop.time() < deadline, f"no leader within {timeout} s; roles: {roles}"
        await asyncio.sleep(0.05)


async def start_all(replicas: list[Replica]) -> None:
    for replica in replicas:
        await replica.daemon.start()
    await wait_for(lambda: all(r.daemon.proc is not None for r in replicas))


async def baseline_taken(replica: Replica) -> None:
    await wait_for(lambda: "baseline taken" in replica.daemon.logs(), timeout=30)


async def more_polls(replica: Replica, count: int = 3) -> None:
    """Wait until the replica (the leader) has polled `count` more times: whatever those polls
    could still bring has arrived by then."""
    series = 'callmon_provider_requests_total{code="200",provider="front-door"}'
    seen = metric_value(await metrics(replica.port), series)
    await wait_until(
        lambda: metrics(replica.port), lambda body: metric_value(body, series) >= seen + count
    )


async def healthz(replica: Replica) -> int:
    url = f"http://127.0.0.1:{replica.port}/healthz"
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status


class Traffic:
    """Missed calls at a steady pace, in the background, each with an id of its own."""

    def __init__(self, sim: Simulator, count: int, every: float) -> None:
        self.sim, self.count, self.every = sim, count, every
        self.ids: list[str] = []

    async def run(self) -> None:
        doors = [158, 180]
        for i in range(self.count):
            call = self.sim.vms.ring(doors[i % 2])
            self.sim.vms.miss(call.id)
            self.ids.append(str(call.id))
            await asyncio.sleep(self.every)


PASSWORD = "pg-secret-8d1f"


def with_password(url: str) -> str:
    """`url` with a password (the test servers trust local connections, so it is only carried,
    and must never be shown)."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def no_password_shown(group: list[Replica]) -> None:
    for replica in group:
        assert PASSWORD not in replica.daemon.logs()


def report(name: str, **figures: Any) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


async def test_leaders_killed_ten_times_lose_nothing_and_double_nothing_outside_the_window(
    sim: Simulator, hooks: Hooks, replicas: Any, pg_url: str
) -> None:
    group: list[Replica] = replicas(with_password(pg_url), 3)
    await start_all(group)
    first = await leader_among(group)
    await baseline_taken(first)
    traffic = Traffic(sim, 200, 0.15)
    running = asyncio.create_task(traffic.run())
    failovers: list[float] = []
    try:
        for _ in range(10):
            leader = await leader_among(group)
            await asyncio.sleep(0.8)  # let it work for a moment
            await leader.daemon.kill()
            killed = time.monotonic()
            others = [r for r in group if r is not leader]
            await leader_among(others, timeout=60)
            failovers.append(time.monotonic() - killed)
            await leader.daemon.start()  # back as a standby
        await running
    finally:
        running.cancel()
    expected = {f"missed {cid}" for cid in traffic.ids}
    await wait_for(lambda: expected <= set(hooks.titles()), timeout=30)
    await more_polls(await leader_among(group))
    titles = hooks.titles()
    lost = expected - set(titles)
    duplicates = {t: n for t, n in titles.items() if n > 1}
    report(
        "kill -9 x10",
        calls=len(expected),
        failover_median=f"{statistics.median(failovers):.2f}s",
        failover_worst=f"{max(failovers):.2f}s",
        duplicates=sum(n - 1 for n in duplicates.values()),
        lost=len(lost),
    )
    assert set(titles) == expected  # nothing lost, nothing made up
    assert len(failovers) == 10  # each a takeover: how fast is the report's, not an assertion
    # The one window: a message whose send was in flight when its sender died.
    assert sum(n - 1 for n in duplicates.values()) <= len(failovers), duplicates
    no_password_shown(group)


async def test_a_frozen_leader_that_wakes_up_sends_and_writes_nothing(
    sim: Simulator, hooks: Hooks, replicas: Any, pg_url: str
) -> None:
    group: list[Replica] = replicas(pg_url, 2)
    await start_all(group)
    frozen = await leader_among(group)
    await baseline_taken(frozen)
    other = next(r for r in group if r is not frozen)
    os.kill(frozen.pid, signal.SIGSTOP)
    paused = time.monotonic()
    try:
        assert await leader_among([other], timeout=10) is other
        traffic = Traffic(sim, 10, 0.2)
        await traffic.run()
        expected = {f"missed {cid}" for cid in traffic.ids}
        await wait_for(lambda: expected <= set(hooks.titles()), timeout=20)
        await asyncio.sleep(max(0.0, 3 * TTL - (time.monotonic() - paused)))
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    woke = time.time()
    more = Traffic(sim, 5, 0.2)
    await more.run()
    expected |= {f"missed {cid}" for cid in more.ids}
    await wait_for(lambda: expected <= set(hooks.titles()), timeout=20)
    await wait_for(lambda: "lease lost; standing by" in frozen.daemon.logs(), timeout=20)
    await more_polls(other)
    assert hooks.sent_by(frozen.name, since=woke) == []
    assert all(n == 1 for n in hooks.titles().values()), hooks.titles()
    assert await wait_until(frozen.role, lambda role: role is not None) == "standby"
    assert await other.role() == "leader"


async def test_sigterm_hands_the_lease_over_at_once(
    sim: Simulator, hooks: Hooks, replicas: Any, pg_url: str
) -> None:
    """With a long ttl (15 s), a standby leads within 2 s: the lease is handed over, not left
    to expire."""
    group: list[Replica] = replicas(pg_url, 2, ttl=15.0)
    await start_all(group)
    leader = await leader_among(group)
    await baseline_taken(leader)
    other = next(r for r in group if r is not leader)
    assert await wait_until(other.role, lambda role: role is not None) == "standby"
    assert await healthz(other) == 200  # a standby is healthy: nothing to restart
    async with aiohttp.ClientSession() as session:  # and shows the shared store
        async with session.get(f"http://127.0.0.1:{other.port}/") as page:
            assert page.status == 200
            assert "standby" in await page.text()
        async with session.get(f"http://127.0.0.1:{other.port}/api/v1/status") as answer:
            assert (await answer.json())["role"] == "standby"
    assert metric_value(await metrics(leader.port), "callmon_leader") == 1
    assert metric_value(await metrics(other.port), "callmon_leader") == 0
    # The rules change while it stands by: it will lead with the new ones.
    rule = leader.daemon.config.parent / "rules" / "missed.yaml"
    rule.write_text(RULE.replace('"missed {{ call.id }}"', '"MISSED {{ call.id }}"'))
    await wait_for(lambda: "rules reloaded" in other.daemon.logs(), timeout=10)
    assert leader.daemon.proc is not None
    leader.daemon.proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert await leader_among([other], timeout=60) is other
    handover = time.monotonic() - stopped
    report("SIGTERM", handover=f"{handover:.2f}s")
    assert await asyncio.wait_for(leader.daemon.proc.wait(), 60) == 0
    # Handed over, not left to expire: the leader released its lease as it stopped.
    assert "lease released for another replica" in leader.daemon.logs()
    assert metric_value(await metrics(other.port), "callmon_leader") == 1
    traffic = Traffic(sim, 3, 0.1)
    await traffic.run()
    expected = {f"MISSED {cid}" for cid in traffic.ids}
    await wait_for(lambda: expected <= set(hooks.titles()), timeout=20)
    assert all(who == other.name for who, _, _ in hooks.posts)
    assert "baseline taken" not in other.daemon.logs()  # carried on from the stored state


async def test_the_database_restarting_under_traffic_loses_nothing(
    sim: Simulator, hooks: Hooks, replicas: Any
) -> None:
    from tests.pg import Cluster

    cluster = Cluster()  # restarted by this test: a server of its own
    try:
        group: list[Replica] = replicas(with_password(cluster.url), 2)
        await start_all(group)
        await baseline_taken(await leader_among(group))
        traffic = Traffic(sim, 40, 0.15)
        running = asyncio.create_task(traffic.run())
        await asyncio.sleep(2)
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(2 * TTL)  # down longer than the lease
        await asyncio.to_thread(cluster.start)
        await running
        expected = {f"missed {cid}" for cid in traffic.ids}
        await wait_for(lambda: expected <= set(hooks.titles()), timeout=40)
        leader = await leader_among(group)
        duplicates = sum(n - 1 for n in hooks.titles().values())
        report("PostgreSQL restart", calls=len(expected), duplicates=duplicates, lost=0)
        assert duplicates <= 1
        assert await leader.role() == "leader"
        assert any("store" in line for r in group for line in r.daemon.logs().splitlines())
        no_password_shown(group)
    finally:
        await asyncio.to_thread(cluster.destroy)


async def tool(config: Path, *args: str) -> str:
    """A CLI command as its own process, as an operator runs it beside the daemons."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VMS_TOKEN": TOKEN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        "-c",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_the_leader_sees_an_outbox_retry_and_a_silence_from_another_process_at_once(
    sim: Simulator, hooks: Hooks, replicas: Any, pg_url: str
) -> None:
    """A message given up on (dead-lettered: never tried again by itself) goes out when another
    process says `outbox retry --dead`: only that command can have sent it. How soon is the
    report's figure (the leader acts on NOTIFY at once)."""
    (replica,) = replicas(pg_url, 1, notifier="max_age: 1s")
    config = replica.daemon.config
    await start_all([replica])
    await baseline_taken(await leader_among([replica]))
    hooks.status = 503
    call = sim.vms.ring(158)
    sim.vms.miss(call.id)
    await wait_for(lambda: "notification dead-lettered" in replica.daemon.logs(), timeout=60)
    hooks.status = 200
    assert (await tool(config, "outbox", "list", "--dead")).count("\n") == 1
    assert (await tool(config, "outbox", "retry", "--dead")).endswith("notifications due now\n")
    asked = time.time()
    await wait_for(lambda: hooks.titles() == {f"missed {call.id}": 1}, timeout=60)
    ((_, _, sent),) = hooks.posts
    report("outbox retry", sent_after_the_command=f"{max(0.0, sent - asked):.2f}s")

    await tool(config, "silence", "add", "--rule", "missed", "--for", "1h", "--comment", "test")
    url = f"http://127.0.0.1:{replica.port}/api/v1/silences"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert [s["comment"] for s in (await answer.json())["silences"]] == ["test"]
    async with aiohttp.ClientSession() as session, session.post(url, json={}) as answer:
        assert answer.status == 403  # no api_token in this config: the API only reads
    await asyncio.sleep(1.0)  # the promise: a new silence is in force within a second
    hushed = sim.vms.ring(180)
    sim.vms.miss(hushed.id)
    series = 'callmon_alerts_silenced_total{rule="missed"}'
    await wait_for_metric(replica.port, series, 1)
    assert f"missed {hushed.id}" not in hooks.titles()


async def test_a_push_taken_by_a_standby_reaches_the_leader_through_the_store(
    sim: Simulator, hooks: Hooks, replicas: Any, pg_url: str
) -> None:
    group: list[Replica] = replicas(pg_url, 2, with_bird=True)
    await start_all(group)
    leader = await leader_among(group)
    await wait_for(lambda: leader.daemon.logs().count("baseline taken") >= 2, timeout=30)
    standby = next(r for r in group if r is not leader)
    assert await wait_until(standby.role, lambda role: role is not None) == "standby"
    url = f"http://127.0.0.1:{standby.port}/hooks/support"
    sim.bird.subscribe(url, BIRD_KEY, BIRD_URL)
    call = sim.bird.start_call()
    sim.bird.no_answer(call)
    await wait_for(lambda: f"missed {call}" in hooks.titles(), timeout=15)
    assert [who for who, title, _ in hooks.posts if title == f"missed {call}"] == [leader.name]
    accepted = 'callmon_webhook_requests_total{outcome="accepted",provider="support"}'
    assert metric_value(await metrics(standby.port), accepted) == 2
