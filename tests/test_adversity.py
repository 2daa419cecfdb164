"""What a hostile network, a careless operator and an unlucky month tried against callmon's
promise that monitoring never stops silently (#23): each finding, reproduced as it was found,
and what callmon does now."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import structlog
import structlog.testing

from monitor.model import StateKey
from monitor.simulator.bird import Subscription
from monitor.simulator.server import Simulator
from monitor.store import LeaseLost, StoreError, sql
from monitor.store.postgres import PostgresStore
from monitor.store.sessions import SessionBounds
from monitor.store.sqlite import SqliteStore
from tests.conftest import (
    ROOT,
    DaemonProcess,
    Receiver,
    free_port,
    metric_value,
    metrics,
    wait_for,
    wait_for_metric,
    wait_until,
)
from tests.proxy import Proxy
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
    waiting = 'callmon_provider_rechecks_waiting{provider="support"}'
    await wait_for_metric(port, waiting, 100, timeout=60)  # it says it cannot keep up

    call = sim.bird.start_call()
    sim.bird.no_answer(call)
    await wait_for(lambda: f"missed {call} via poll" in receiver.titles(), timeout=30)
    left = metric_value(await metrics(port), ringing)
    assert left < pile  # the pile is worked through, poll after poll
    assert "provider cannot keep up" in daemon.logs()
    assert await daemon.terminate() == 0


def test_rechecks_go_round_the_open_calls_oldest_first_within_a_budget() -> None:
    from monitor.sources.base import Rechecks

    rechecks = Rechecks(budget=2)
    calls = ["a", "b", "c", "d", "e"]  # oldest first
    assert rechecks.pick(calls) == (["a", "b"], 3)
    assert rechecks.pick(calls) == (["c", "d"], 3)
    assert rechecks.pick(calls) == (["e", "a"], 3)  # round again, the longest unchecked first
    assert rechecks.pick(["new", *calls]) == (["new", "b"], 4)  # a new call is never last
    assert rechecks.pick(["x"]) == (["x"], 0)


# --- 2. A partition between the leader and PostgreSQL


def via(url: str, proxy: Proxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    netloc = urlsplit(url).netloc
    host = netloc.rsplit("@", 1)[-1]
    return url.replace(host, f"127.0.0.1:{proxy.port}", 1)


async def frozen_pair(pg_url: str, ttl: float) -> tuple[Proxy, PostgresStore, PostgresStore]:
    """A leader whose link to PostgreSQL goes through a proxy, and a standby that reaches it
    directly, both under the daemon's session bounds for `ttl`."""
    proxy = Proxy(urlsplit(pg_url).port or 5432)
    await proxy.start()
    bounds = SessionBounds.for_lease(ttl)
    leader = await PostgresStore.open(via(pg_url, proxy), bounds=bounds)
    standby = await PostgresStore.open(pg_url, bounds=bounds)
    return proxy, leader, standby


async def take_over(standby: PostgresStore, ttl: float) -> int:
    """Try to take the lease as a standby does (once a second) until it is had; its token."""

    async def attempt() -> int | None:
        try:
            return await asyncio.wait_for(standby.acquire(ttl), 60)
        except StoreError:
            return None

    token = await wait_until(attempt, lambda got: got is not None, timeout=60)
    assert token is not None
    return token


async def test_a_leader_frozen_mid_transaction_cannot_hold_the_lease(pg_url: str) -> None:
    """The leader's link froze just after a fenced write took the lease row `FOR SHARE`: its
    session sat `idle in transaction` and the standby's takeover waited on that lock for as
    long as the freeze lasted; the lease it then got was computed before the wait and had
    already expired. Now the server ends the idle transaction, the takeover's lock wait is
    bounded, and the new lease counts from when it was had."""
    ttl = 3.0
    proxy, leader, standby = await frozen_pair(pg_url, ttl)
    leader.bounds = dataclasses.replace(leader.bounds, operation=3.0)  # the test's patience
    try:
        token = await leader.acquire(ttl)
        assert token is not None
        leader.fence = token

        def freezes_after_the_fence() -> sql.Program[None]:
            proxy.freeze()  # the fence check has locked the lease row; now the link is gone
            yield sql.Query("SELECT 1")

        stuck = asyncio.create_task(leader._run("write", freezes_after_the_fence(), write=True))
        started = time.monotonic()
        new = await take_over(standby, ttl)
        took = time.monotonic() - started
        assert new > token
        holder, _, left = await standby.leader() or ("", 0, 0.0)
        assert holder == standby.holder
        assert left > ttl / 2  # a lease that starts when it is had, not before the lock wait
        print(f"takeover {took:.1f} s after the freeze (lease_ttl {ttl:g} s)")
        with pytest.raises(StoreError, match="no answer within"):
            await asyncio.wait_for(stuck, 60)  # the frozen leader's write fails, in time
    finally:
        await proxy.stop()
        await leader.close()
        await standby.close()


async def test_a_replica_that_no_longer_holds_the_lease_takes_no_lock(pg_url: str) -> None:
    """A deposed leader whose link was slow opened a fenced write seconds after it had logged
    `lease lost`; its `FOR SHARE` held the new leader's renewal up. Now a fenced write of a
    replica whose own clock says the lease is gone never reaches the database."""
    proxy, leader, standby = await frozen_pair(pg_url, 3.0)
    try:
        token = await leader.acquire(3.0)
        assert token is not None
        leader.fence = token
        lost: list[bool] = []
        leader.on_lease_lost = lambda: lost.append(True)
        leader.fence_valid = lambda: False
        before = proxy.forwarded
        with pytest.raises(LeaseLost, match="no longer holds the lease"):
            await leader.mark_sent(1, time.time())
        assert proxy.forwarded == before
        assert lost == [True]
        await leader.add_silence("r", [], 0.0, 1.0, "a standby's write is not fenced")
        assert proxy.forwarded > before
    finally:
        await proxy.stop()
        await leader.close()
        await standby.close()


async def test_sigterm_stops_a_leader_whose_database_link_froze(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    pg_url: str,
) -> None:
    """With its link to PostgreSQL frozen, the old leader ignored SIGTERM for 30 s (its lease
    release, and the store's close, waited on the frozen link for ever)."""
    proxy = Proxy(urlsplit(pg_url).port or 5432)
    await proxy.start()
    port = free_port()
    daemon = daemon_factory(
        f"""
store: "{via(pg_url, proxy)}"
lease_ttl: 3s
shutdown_grace: 1s
listen: 127.0.0.1:{port}
rules: [{ROOT / "rules"}]
providers:
  - {{name: front-door, type: vms-intercom, base_url: "{sim.base_url}",
     token: {sim.vms.token}, poll_interval: 500ms}}
notifiers:
  ops-chat:
    urls: ["{receiver.url}"]
"""
    )
    try:
        await daemon.start()
        await wait_for(lambda: '"event": "callmon running"' in daemon.logs(), timeout=30)
        proxy.freeze()
        sim.vms.ring(158)  # the next poll's commit waits on the frozen link, holding its lock
        await asyncio.sleep(2)
        started = time.monotonic()
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(daemon.proc.wait(), 60)
        print(f"stopped {time.monotonic() - started:.1f} s after SIGTERM with its link frozen")
        assert code == 0
        assert '"exit_code": 0, "event": "stopped"' in daemon.logs()
    finally:
        await proxy.stop()


# --- 5. A full disk


def test_a_store_that_fails_between_successes_is_failing_all_along() -> None:
    """On a full disk small writes still succeed (SQLite reuses its WAL's space) while a poll's
    commit fails: each success reset "store failing for" to 0, and the watchdog never acted."""
    from monitor.store.base import RECOVERED_AFTER, StoreHealth

    now = [0.0]
    health = StoreHealth(clock=lambda: now[0])
    health.failed("disk full")
    for _ in range(30):  # a second apart: a probe that succeeds, a commit that fails
        now[0] += 1.0
        health.ok()
        health.failed("disk full")
    assert health.failing_for() == 30.0
    now[0] += RECOVERED_AFTER - 1
    health.ok()
    assert health.failing_for() > 0  # not yet: failures may still come
    now[0] += 1
    health.ok()
    assert health.failing_for() == 0
    assert health.last_error is None


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards; skipped where mounting is not allowed (a
    container without CAP_SYS_ADMIN), except in CI."""
    import os
    import subprocess

    path = tmp_path / "disk"
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> None:
    """Fill the disk to the last byte."""
    with (disk / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


async def test_a_full_disk_makes_the_daemon_exit_3_and_sigterm_is_honoured(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    small_disk: Path,
) -> None:
    disk = small_disk
    port = free_port()
    config = f"""
store: sqlite:///{disk / "state.db"}
listen: 127.0.0.1:{port}
unhealthy_exit_after: 3s
shutdown_grace: 1s
rules: [{ROOT / "rules"}]
providers:
  - {{name: front-door, type: vms-intercom, base_url: "{sim.base_url}",
     token: {sim.vms.token}, poll_interval: 200ms}}
notifiers:
  ops-chat:
    urls: ["{receiver.url}"]
"""
    daemon = daemon_factory(config)
    await daemon.start()
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=30)
    fill(disk)
    for _ in range(30):  # polls that have plenty to write, on a disk that has no room
        call = sim.vms.ring(158)
        sim.vms.miss(call.id)
    assert daemon.proc is not None
    assert await asyncio.wait_for(daemon.proc.wait(), 60) == 3
    assert "callmon cannot work; exiting so that it is restarted" in daemon.logs()

    # Started again with a little room, then the disk fills while a message it sent
    # cannot be recorded (it retries the record, shielded from cancellation): SIGTERM
    # still stops it, within shutdown_grace and a last try.
    (disk / "filler").unlink()
    again = daemon_factory(config)
    assert again.log_path is not None
    again.log_path.write_text("")
    receiver.status = 503  # nothing is delivered yet: the messages stay queued
    await again.start()
    await wait_for(lambda: '"event": "callmon running"' in again.logs(), timeout=30)
    call = sim.vms.ring(180)
    sim.vms.miss(call.id)
    await wait_for(lambda: bool(receiver.refused()), timeout=30)
    fill(disk)
    receiver.status = 200
    await wait_for(lambda: bool(receiver.received), timeout=60)
    await wait_for(lambda: "a sent message cannot be recorded yet" in again.logs(), 30)
    assert again.proc is not None
    again.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(again.proc.wait(), 30) == 0
    assert "a sent message may be sent once more" in again.logs()


# --- 3. Slow clients


async def healthz_latency(port: int) -> float:
    """Seconds for a fresh connection to get /healthz answered 200."""
    started = time.monotonic()
    # Generous: on a busy machine a connect may wait for its SYN to be retried.
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 120)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: callmon\r\nConnection: close\r\n\r\n")
    status = await asyncio.wait_for(reader.readline(), 120)
    if not status.startswith(b"HTTP/1.1 200"):  # say why: /healthz names what is wrong
        status += await asyncio.wait_for(reader.read(), 120)
    writer.close()
    assert status.startswith(b"HTTP/1.1 200"), status
    return time.monotonic() - started


async def test_slow_clients_never_take_the_listener_down(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """Connections that sent their headers a byte at a time were never timed out: about 1,000
    of them took a process with a container's limit of 1,024 open files past it, and /healthz
    became unreachable. Now headers must arrive within seconds and connections are bounded,
    the oldest idle one making room, so the probes keep answering."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    port = free_port()
    daemon = daemon_factory(
        f"""
store: sqlite:///{tmp_path / "state.db"}
listen: 127.0.0.1:{port}
rules: [{ROOT / "rules"}]
providers:
  - {{name: front-door, type: vms-intercom, base_url: "{sim.base_url}",
     token: {sim.vms.token}, poll_interval: 300ms}}
notifiers:
  ops-chat:
    urls: ["{receiver.url}"]
"""
    )
    daemon.nofile = 1024
    flooding = True
    opened = 0
    clients: list[asyncio.Task[None]] = []

    async def slow_client() -> None:
        nonlocal opened
        while flooding:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(1.0)
                continue
            opened += 1
            try:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                while flooding and not reader.at_eof():
                    writer.write(b"X")  # a header, a byte a second
                    await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(reader.read(1), 1.0)
            except OSError:
                pass
            finally:
                writer.close()
            await asyncio.sleep(1.0)  # and comes back

    try:
        await daemon.start()
        await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=30)
        clients += [asyncio.create_task(slow_client()) for _ in range(1500)]
        await wait_for(lambda: opened >= 1500, timeout=60)
        latencies = [await healthz_latency(port) for _ in range(20)]
        call = sim.vms.ring(158)
        sim.vms.miss(call.id)
        await wait_for(lambda: "Missed call at Front door" in receiver.titles(), timeout=30)
        await wait_for(lambda: opened >= 3000, timeout=60)  # the slow ones are let go, in time
        latencies += [await healthz_latency(port) for _ in range(20)]
        print(f"/healthz with 1,500 slow clients: max {max(latencies) * 1000:.0f} ms")
        assert "too many connections" in daemon.logs()
        assert "Too many open files" not in daemon.logs()
        assert daemon.proc is not None
        assert daemon.proc.returncode is None
    finally:
        flooding = False
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert await daemon.terminate() == 0


# --- 6. Rule files that would freeze the daemon


def hostile_rule_files(rules: Path) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
    """Each way a rules folder froze or bloated the daemon: (what, make it, take it away)."""
    import os

    def make_many() -> None:
        for i in range(1001):
            (rules / f"r{i}.yaml").write_text("rules: []\n")

    def remove_many() -> None:
        for i in range(1001):
            (rules / f"r{i}.yaml").unlink()

    return [
        ("a FIFO", lambda: os.mkfifo(rules / "fifo.yaml"), (rules / "fifo.yaml").unlink),
        (
            "a link to /dev/zero",
            lambda: (rules / "zero.yaml").symlink_to("/dev/zero"),
            (rules / "zero.yaml").unlink,
        ),
        (
            "a 2 MiB file",
            lambda: (rules / "big.yaml").write_text("rules: []\n" + "#" * 2 * 1024 * 1024),
            (rules / "big.yaml").unlink,
        ),
        ("1,001 files", make_many, remove_many),
    ]


REASONS = ["not a regular file", "not a regular file", "larger than 1024 KiB", "at most 1000 are"]


async def test_rule_files_that_would_freeze_the_daemon_are_refused_off_the_event_loop(
    tmp_path: Path,
) -> None:
    """A FIFO named x.yaml froze every loop until SIGTERM; a link to /dev/zero took 4.7 GB in
    8 s; a 14 MB file froze everything for 109 s; 5,000 files for half a minute. Each is now a
    counted reload failure, read off the event loop, while /healthz answers and the rules in
    force stay."""
    from monitor.config import Config
    from monitor.runtime.build import load_config_rules
    from monitor.runtime.daemon import Daemon

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ok.yaml").write_text(
        "rules:\n  - {name: missed, when: {to: missed}, notify: [chat]}\n"
    )
    port = free_port()
    config = Config.model_validate(
        {
            "store": f"sqlite:///{tmp_path / 's.db'}",
            "listen": f"127.0.0.1:{port}",
            "rules": [str(rules)],
            "notifiers": {"chat": {"urls": ["json://127.0.0.1:1/x"]}},
        }
    )
    daemon = Daemon(config, load_config_rules(config))
    task = asyncio.create_task(daemon.run())
    failure = 'callmon_rule_reloads_total{outcome="failure"}'
    try:
        with structlog.testing.capture_logs() as logged:
            await wait_for(lambda: "rule-files" in daemon.supervisor.beats, timeout=10)
            for count, ((what, make, undo), reason) in enumerate(
                zip(hostile_rule_files(rules), REASONS, strict=True), 1
            ):
                make()
                await wait_for_metric(port, failure, count, timeout=30)
                assert (await healthz_latency(port)) >= 0, what  # answers 200 meanwhile
                assert [r.name for r in daemon.rules] == ["missed"], what
                assert reason in str(logged[-1].get("error")), (what, logged[-1])
                undo()
    finally:
        daemon.stopping.set()
        await asyncio.wait_for(task, 20)


def test_check_holds_rule_files_to_the_same_bounds(tmp_path: Path) -> None:
    """`callmon check` read the same FIFO for ever and took 14.9 GB from /dev/zero."""
    import subprocess
    import sys

    from tests.conftest import ROOT as root

    rules = tmp_path / "rules"
    rules.mkdir()
    (tmp_path / "callmon.yaml").write_text(
        "rules: [./rules]\nnotifiers: {chat: {urls: ['json://127.0.0.1:1/x']}}\n"
    )
    for (what, make, undo), reason in zip(hostile_rule_files(rules), REASONS, strict=True):
        make()
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "check", "-c", "callmon.yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
            check=False,
        )
        assert done.returncode == 1, what
        assert reason in done.stderr, (what, done.stderr)
        undo()


# --- 7. Every way out of `callmon run` is an exit code of SPEC


async def test_a_store_lost_as_the_leaders_work_starts_ends_in_exit_3_not_a_crash(
    tmp_path: Path,
) -> None:
    """Under load the store was deleted before the leader's work had read its state: the
    StoreError escaped as `ExceptionGroup: unhandled errors in a TaskGroup` and the process
    exited 1. Now that start is retried, and the watchdog ends it with 3."""
    from monitor.config import Config
    from monitor.runtime.daemon import EXIT_UNHEALTHY, Daemon

    port = free_port()
    config = Config.model_validate(
        {
            "store": f"sqlite:///{tmp_path / 's.db'}",
            "listen": f"127.0.0.1:{port}",
            "rules": [],
            "unhealthy_exit_after": 1.0,
        }
    )
    deleted = asyncio.Event()

    class Deleted(SqliteStore):
        """The store whose files go just before the leader's work reads its state."""

        async def load_rule_state(self) -> dict[StateKey, str]:
            for suffix in ("", "-wal", "-shm"):
                (tmp_path / f"s.db{suffix}").unlink(missing_ok=True)
            await wait_for(lambda: self.health.failing_for() > 0)
            deleted.set()
            return await super().load_rule_state()

    store = Deleted(str(tmp_path / "s.db"))
    daemon = Daemon(config, [], store=store)
    await asyncio.wait_for(daemon.run(), 30)
    assert deleted.is_set()
    assert daemon.exit_code == EXIT_UNHEALTHY


# --- 8. Smaller findings


async def raw_post(port: int, path: str, headers: bytes, body: bytes) -> int:
    """POST with headers exactly as given (bytes that are not UTF-8 included); the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: callmon\r\nContent-Length: {len(body)}\r\n".encode()
        + headers
        + b"Connection: close\r\n\r\n"
        + body
    )
    status = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    return int(status.split()[1])


async def test_hostile_pushes_get_a_4xx_and_are_counted(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """A push nested 10,000 deep with a valid signature, and one with a header byte that is
    not UTF-8, got 500 and were not counted; the outcome was `malformed` where SPEC says
    `invalid`, and never `duplicate`; Bird's signed timestamp had no replay window."""
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
    webhook:
      signing_key_file: bird-key
      url: {PUBLIC}""",
    )
    hook = Subscription(f"http://127.0.0.1:{port}/hooks/support", KEY, PUBLIC)
    deep = b'{"payload": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    assert await hook.post(deep) == 400

    stamp = str(int(time.time()))
    body = json.dumps({"service": "channels", "event": "voice.inbound"}).encode()
    headers = (
        f"messagebird-request-timestamp: {stamp}\r\n".encode()
        + b"messagebird-signature: \xff\xfe"
        + hook.sign(body, stamp).encode()
        + b"\r\n"
    )
    assert await raw_post(port, "/hooks/support", headers, body) == 400

    stale = str(int(time.time()) - 3600)  # a request captured an hour ago, sent again
    old = json.dumps(
        {
            "service": "channels",
            "event": "voice.inbound",
            "payload": {"id": "c-9", "status": "ringing", "createdAt": "2026-11-23T12:00:00Z"},
        }
    ).encode()
    replayed = (
        f"messagebird-request-timestamp: {stale}\r\n"
        f"messagebird-signature: {hook.sign(old, stale)}\r\n"
    ).encode()
    assert await raw_post(port, "/hooks/support", replayed, old) == 401

    assert await hook.post(old) == 200
    assert await hook.post(old) == 200  # the same push again: answered, counted, not kept
    body_text = await metrics(port)
    counted = {
        outcome: metric_value(
            body_text, f'callmon_webhook_requests_total{{outcome="{outcome}",provider="support"}}'
        )
        for outcome in ("invalid", "unauthorized", "accepted", "duplicate")
    }
    assert counted == {"invalid": 2, "unauthorized": 1, "accepted": 1, "duplicate": 1}
    assert 'outcome="malformed"' not in body_text
    assert await daemon.terminate() == 0
