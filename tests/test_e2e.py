"""The real daemon, as a process, against the simulator over HTTP, notifying a local receiver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from monitor.simulator.server import Simulator
from tests.conftest import (
    ROOT,
    DaemonProcess,
    Receiver,
    free_port,
    metric_value,
    metrics,
    polls,
    ringing,
    transitions,
    wait_for,
    wait_for_metric,
    wait_until,
)

SECRET = "s3cr3t-vms-token-do-not-log"
HOOK_SECRET = "hook-key-8f2c1e"


def config_for(sim: Simulator, receiver: Receiver, port: int, store: Path) -> str:
    hook = receiver.url.replace("json://", f"json://callmon:{HOOK_SECRET}@")
    return f"""
store: sqlite:///{store}
listen: 127.0.0.1:{port}
rules: [{ROOT / "rules"}]
providers:
  - name: front-door
    type: vms-intercom
    base_url: {sim.base_url}
    token: ${{VMS_TOKEN}}
    poll_interval: 200ms
notifiers:
  ops-chat:
    urls: ["{hook}"]
"""


async def ready(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def wait_ready(port: int, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await ready(port):
        assert loop.time() < deadline, "daemon never became ready"
        await asyncio.sleep(0.1)


async def start_daemon(
    daemon_factory: Callable[..., DaemonProcess], config: str, port: int, token: str
) -> DaemonProcess:
    """A daemon process on `config`, started and answering `/readyz` on `port`."""
    daemon = daemon_factory(config, VMS_TOKEN=token)
    await daemon.start()
    await wait_ready(port)
    return daemon


async def test_missed_call_notified_once_across_a_sigkill_restart(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    sim.vms.token = SECRET
    sim.traffic.seed_history(30)  # already final before the first start: baseline, no alerts
    port = free_port()
    daemon = await start_daemon(
        daemon_factory, config_for(sim, receiver, port, tmp_path / "state.db"), port, SECRET
    )
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)

    call = sim.vms.ring(158)
    await wait_for_metric(port, ringing("front-door"), 1)
    sim.vms.miss(call.id)
    await wait_for(lambda: len(receiver.received) == 1, timeout=15)
    assert receiver.received[0]["title"] == "Missed call at Front door"

    # The receiver has the message before apprise's answer reaches the worker that counts it.
    sent = 'callmon_notifications_total{notifier="ops-chat",outcome="sent"}'
    await wait_for_metric(port, sent, 1)
    body = await metrics(port)
    transitions = 'from_state="ringing",provider="front-door",to_state="missed"'
    assert f"callmon_call_transitions_total{{{transitions}}} 1.0" in body
    assert f"{sent} 1.0" in body
    assert SECRET not in body
    assert HOOK_SECRET not in body

    await daemon.kill()
    missed_while_down = sim.vms.ring(180)
    sim.vms.miss(missed_while_down.id)

    await daemon.start()
    await wait_ready(port)
    await wait_for(lambda: len(receiver.received) >= 2, timeout=15)
    await polls(sim, 5)  # several more polls: nothing else may arrive
    assert receiver.titles() == ["Missed call at Front door", "Missed call at Gate"]

    assert await daemon.terminate() == 0
    assert SECRET not in daemon.logs()
    assert HOOK_SECRET not in daemon.logs()
    assert "baseline taken" in daemon.logs()


async def test_sigterm_stops_gracefully_with_exit_0(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    port = free_port()
    daemon = await start_daemon(
        daemon_factory, config_for(sim, receiver, port, tmp_path / "state.db"), port, sim.vms.token
    )
    assert await daemon.terminate() == 0
    assert '"event": "stopped"' in daemon.logs()


async def test_provider_outage_is_one_alert_and_one_recovery(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    from monitor.simulator.faults import Fault

    port = free_port()
    daemon = await start_daemon(
        daemon_factory, config_for(sim, receiver, port, tmp_path / "state.db"), port, sim.vms.token
    )
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)
    sim.vms.faults.add(Fault("status", status=503), times=6)  # 2 polls of 3 attempts each
    await wait_for(lambda: len(receiver.received) >= 2, timeout=30)
    await polls(sim, 3)
    assert receiver.titles() == [
        "Call monitoring of front-door is down",
        "Call monitoring of front-door has recovered",
    ]
    assert "HTTP 503" in str(receiver.received[0]["message"])
    body = await metrics(port)
    assert 'callmon_provider_up{provider="front-door"} 1.0' in body
    assert 'callmon_provider_requests_total{code="503",provider="front-door"}' in body
    await daemon.terminate()


async def test_every_provider_end_to_end(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    sim.cinnox.late = (0.0, 0.5)
    sim.traffic.seed_history(20)
    port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: missed\n"
        "    when: {to: missed}\n"
        "    notify: [ops-chat]\n"
        "    title: 'missed on {{ provider }}'\n"
    )
    providers = "\n".join(
        "  - {" + ", ".join(f"{k}: '{v}'" for k, v in p.items()) + "}"
        for p in sim.provider_configs(poll_interval="300ms")
    )
    config = (
        f"store: sqlite:///{tmp_path / 'state.db'}\nlisten: 127.0.0.1:{port}\n"
        f"rules: [{rules}]\nproviders:\n{providers}\n"
        f"notifiers:\n  ops-chat: {{urls: ['{receiver.url}']}}\n"
    )
    daemon = daemon_factory(config)
    await daemon.start()
    await wait_ready(port)
    await wait_for(lambda: daemon.logs().count("baseline taken") == 4, timeout=20)

    lines = [sim.vms, sim.bird, sim.cinnox, sim.bandwidth]
    missed = [line.start_call() for line in lines]
    answered = [line.start_call() for line in lines]
    ringing_providers = ("front-door", "support", "sales")  # CINNOX shows only final records
    for provider in ringing_providers:  # every provider sees both ringing
        await wait_for_metric(port, ringing(provider), 2)
    for line, call in zip(lines, answered, strict=True):
        line.answer(call)
    for line, call in zip(lines, missed, strict=True):
        line.no_answer(call)
    for provider in ringing_providers:
        await wait_for_metric(port, transitions(provider, "ringing", "answered"), 1)
    for line, call in zip(lines, answered, strict=True):
        line.hang_up(call)
    await wait_for(lambda: len(receiver.received) >= 4, timeout=20)
    for provider in ringing_providers:
        await wait_for_metric(port, transitions(provider, "answered", "ended"), 1)
    await wait_for_metric(port, transitions("contact-centre", "none", "ended"), 1)
    await polls(sim, 3)
    assert sorted(receiver.titles()) == [
        "missed on contact-centre",
        "missed on front-door",
        "missed on sales",
        "missed on support",
    ]
    body = await metrics(port)

    def count(provider: str, frm: str, to: str) -> float:
        return metric_value(body, transitions(provider, frm, to))

    for provider in ringing_providers:
        assert count(provider, "none", "ringing") == 2
        assert count(provider, "ringing", "answered") == 1
        assert count(provider, "answered", "ended") == 1
        assert count(provider, "ringing", "missed") == 1
    assert count("contact-centre", "none", "ended") == 1
    assert count("contact-centre", "none", "missed") == 1
    assert 'callmon_provider_requests_total{code="429",provider="sales"}' not in body
    assert await daemon.terminate() == 0


async def test_a_for_timer_fires_from_the_running_daemon(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: ringing-too-long\n"
        "    when: {state: ringing}\n"
        "    for: 2s\n"
        "    notify: [ops-chat]\n"
        "    title: '{{ call.intercom.title }} ringing for {{ for | duration }}'\n"
    )
    port = free_port()
    config = config_for(sim, receiver, port, tmp_path / "state.db").replace(
        f"rules: [{ROOT / 'rules'}]", f"rules: [{rules}]"
    )
    daemon = await start_daemon(daemon_factory, config, port, sim.vms.token)
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)
    sim.vms.ring(180)
    answered = sim.vms.ring(158)
    await wait_for_metric(port, ringing("front-door"), 2)
    sim.vms.answer(answered.id)  # answered in time: its timer is cancelled
    await wait_for(lambda: len(receiver.received) >= 1, timeout=10)
    await polls(sim, 10)  # two seconds of polls: well past the answered call's deadline
    assert receiver.titles() == ["Gate ringing for 2s"]
    assert await daemon.terminate() == 0


async def test_rules_reload_on_edit_reject_a_broken_edit_and_silences_apply(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    import sys

    rules = tmp_path / "rules"
    rules.mkdir()
    rule = rules / "missed.yaml"
    template = (
        "rules:\n  - name: missed\n    when: {{to: missed}}\n    notify: [ops-chat]\n"
        "    title: '{version} missed at {{{{ call.intercom.title }}}}'\n"
    )
    rule.write_text(template.format(version="v1"))
    port = free_port()
    config = config_for(sim, receiver, port, tmp_path / "state.db").replace(
        f"rules: [{ROOT / 'rules'}]", f"rules: [{rules}]"
    )
    daemon = await start_daemon(daemon_factory, config, port, sim.vms.token)
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)

    async def miss_at(door: int, expect: int) -> None:
        sim.vms.miss(sim.vms.ring(door).id)
        await wait_for(lambda: len(receiver.received) >= expect, timeout=10)

    await miss_at(158, 1)
    rule.write_text(template.format(version="v2"))
    await wait_for(lambda: "rules reloaded" in daemon.logs(), timeout=10)
    await miss_at(158, 2)
    rule.write_text("rules:\n  - name: missed\n    when: {to: [missed\n")
    await wait_for(lambda: "rule reload rejected" in daemon.logs(), timeout=10)
    await miss_at(158, 3)
    assert receiver.titles() == [
        "v1 missed at Front door",
        "v2 missed at Front door",
        "v2 missed at Front door",
    ]
    rejected = [e for e in daemon.log_events() if e.get("event", "").startswith("rule reload rej")]
    assert rejected[0]["error"].startswith(f"{rule}:4:1: invalid YAML")
    assert 'callmon_rule_reloads_total{outcome="failure"} 1.0' in await metrics(port)

    added = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "silence",
        "add",
        "--rule",
        "missed",
        "--match",
        "call.intercom.id=180",
        "--for",
        "1h",
        "--comment",
        "gate repairs",
        "-c",
        str(daemon.config),
        env=daemon.env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await added.communicate()
    assert added.returncode == 0, stderr
    await wait_for(lambda: "silences in force" in daemon.logs(), timeout=10)
    sim.vms.miss(sim.vms.ring(180).id)
    await miss_at(158, 4)
    await polls(sim, 5)
    assert receiver.titles()[3:] == ["v2 missed at Front door"]
    assert 'callmon_alerts_silenced_total{rule="missed"} 1.0' in await metrics(port)
    assert await daemon.terminate() == 0


async def test_a_timer_survives_a_kill_but_not_a_call_answered_meanwhile(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: ringing-too-long\n    when: {state: ringing}\n    for: 3s\n"
        "    notify: [ops-chat]\n    title: '{{ call.intercom.title }} still ringing'\n"
    )
    port = free_port()
    config = config_for(sim, receiver, port, tmp_path / "state.db").replace(
        f"rules: [{ROOT / 'rules'}]", f"rules: [{rules}]"
    )
    daemon = await start_daemon(daemon_factory, config, port, sim.vms.token)
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)
    answered_meanwhile = sim.vms.ring(158)
    still_ringing = sim.vms.ring(180)
    await wait_for_metric(port, ringing("front-door"), 2)  # both seen: two timers stored
    await daemon.kill()
    sim.vms.answer(answered_meanwhile.id)
    # The world moves on while callmon is down: both timers fall due (3 s after the ring).
    due = still_ringing.created + 3.2
    await wait_for(lambda: time.time() >= due, timeout=10)
    from monitor.simulator.faults import Fault

    sim.vms.faults.add(Fault("delay", seconds=1.5))  # a slow first poll after the restart
    await daemon.start()
    await wait_ready(port)
    await wait_for(lambda: len(receiver.received) >= 1, timeout=10)
    await polls(sim, 10)
    assert receiver.titles() == ["Gate still ringing"]
    del still_ringing
    assert await daemon.terminate() == 0


async def test_a_store_deleted_under_the_daemon_makes_it_exit_3(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """The daemon cannot work without its store: `/healthz` says so, then it exits non-zero so
    that the orchestrator restarts it, rather than write into a deleted file."""
    port = free_port()
    text = config_for(sim, receiver, port, tmp_path / "state.db") + "unhealthy_exit_after: 2s\n"
    daemon = await start_daemon(daemon_factory, text, port, sim.vms.token)
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"state.db{suffix}").unlink(missing_ok=True)

    async def healthz() -> int:
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"http://127.0.0.1:{port}/healthz") as r,
            ):
                return r.status
        except aiohttp.ClientError:
            return 0

    status = await wait_until(healthz, lambda status: status != 200)
    assert status in (503, 0)  # 0: it already exited
    assert daemon.proc is not None
    assert await asyncio.wait_for(daemon.proc.wait(), 30) == 3
    assert "callmon cannot work; exiting so that it is restarted" in daemon.logs()
    assert [e["exit_code"] for e in daemon.log_events() if e.get("event") == "stopped"] == [3]


async def test_a_daemon_that_cannot_open_its_store_logs_the_exit_code_it_exits_with(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """#22: the last line said `"exit_code": 0` of a daemon that then exited 1."""
    (tmp_path / "a-file").write_text("not a folder\n")
    port = free_port()
    daemon = daemon_factory(
        f"store: sqlite:///{tmp_path}/a-file/state.db\nlisten: 127.0.0.1:{port}\nrules: []\n"
    )
    await daemon.start()
    assert daemon.proc is not None
    assert await asyncio.wait_for(daemon.proc.wait(), 30) == 1
    stops = [e for e in daemon.log_events() if e.get("event") == "stopped"]
    assert [e["exit_code"] for e in stops] == [1]
    assert "cannot open store" in daemon.logs()


def sent_in(db: Path) -> int:
    """How many messages a daemon's SQLite store records as sent (read beside the daemon)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'").fetchone()[0])


async def test_reminders_of_a_door_still_offline_survive_a_sigkill(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """#25: `remind:` reminders are timers in the store: a `kill -9` neither skips nor repeats
    one, and the resolve still comes."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "door.yaml").write_text(
        "rules:\n  - {name: door, when: {kind: intercom, to: offline}, for: 1s, remind: 2s,\n"
        "     resolve: true, notify: [chat], title: '{{ intercom.title }} offline'}\n"
    )
    port = free_port()
    daemon = daemon_factory(
        f"""
store: sqlite:///{tmp_path / "state.db"}
listen: 127.0.0.1:{port}
rules: [{rules}]
providers:
  - {{name: front-door, type: vms-intercom, base_url: "{sim.base_url}", token: {sim.vms.token},
     poll_interval: 200ms, intercoms: [180]}}
notifiers:
  chat:
    urls: ["{receiver.url}"]
"""
    )
    await daemon.start()
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=30)
    sim.vms.doors[180].is_online = False
    await wait_for(lambda: "Still: Gate offline (for 3s)" in receiver.titles(), timeout=30)
    # Killed once the reminder's send is recorded: a kill between the send and its record is
    # the documented window (it goes once more after the restart), not what this test is about.
    await wait_for(lambda: sent_in(tmp_path / "state.db") >= 2, timeout=30)
    await daemon.kill()
    await daemon.start()
    await wait_for(lambda: "Still: Gate offline (for 7s)" in receiver.titles(), timeout=30)
    sim.vms.doors[180].is_online = True
    await wait_for(lambda: "Resolved: Gate offline" in receiver.titles(), timeout=30)
    titles = receiver.titles()
    reminders = [t for t in titles if t.startswith("Still:")]
    assert titles[0] == "Gate offline"
    assert titles.count("Gate offline") == 1
    assert len(reminders) == len(set(reminders))  # none twice
    held = [int(t.split("(for ")[1].rstrip("s)")) for t in reminders]
    assert held == list(range(3, 3 + 2 * len(held), 2))  # none skipped: 3 s, 5 s, 7 s, …
    assert titles[-1] == "Resolved: Gate offline"
    assert await daemon.terminate() == 0
