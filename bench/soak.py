"""`make soak`: a month of a 200-door building in half an hour, on SQLite and on two replicas on
PostgreSQL, with faults injected on a schedule; prints figures and slopes after a warm-up and
exits non-zero when a goal is missed.

Time is compressed: a simulated day lasts `--day-seconds` (60 by default), and the retention
settings shrink with it (the calls' `retention` and `decisions_retention` of 7 days become 7
simulated days), so that the store must level off within the run. The calls' own durations stay
real (they ring for seconds). What is checked at the end: every missed call notified exactly
once (a duplicate is counted, and allowed only in the documented send window: right after a
process was killed), every door outage alerted and resolved, `/healthz` never 200 while a loop
was dead; and the goals below.

Run: `.venv/bin/python bench/soak.py [--store sqlite|postgresql|both] [--days 30]
[--day-seconds 60] [--calls 50000]`; `--quick` is 6 days of 10 s (a check of the harness).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.soak_faults import schedule  # noqa: E402
from bench.soak_load import OUTAGE_FOR, Building, Receiver  # noqa: E402
from bench.soak_probe import (  # noqa: E402
    PostgresStoreProbe,
    SqliteStoreProbe,
    Watched,
    http_status,
)

PYTHON = sys.executable
GOALS = {
    "rss_slope_mib_per_day": 1.0,
    "wal_mib": 64.0,
    "log_mb_per_day": 1.0,
    "lost": 0,
    "duplicates_outside_window": 0,
}
RETENTION_DAYS = 7
"""The calls' and decisions' retention, in simulated days: what a process holds fills up over it."""
WINDOW = 30.0
"""After a process is killed, this many seconds in which a duplicate is the documented one."""


@dataclass
class Daemon:
    """One `callmon run` process of the soak."""

    name: str
    config: Path
    port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None
    killed_at: list[float] = field(default_factory=list)

    async def start(self) -> None:
        out = self.log.open("ab")
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            "-m",
            "monitor",
            "run",
            "-c",
            str(self.config),
            stdout=out,
            stderr=out,
            env=env,
        )
        out.close()

    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def kill(self) -> None:
        assert self.proc is not None
        self.killed_at.append(time.time())
        self.proc.kill()
        await self.proc.wait()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            return -9

    async def ready(self, patience: float = 120.0) -> None:
        deadline = time.monotonic() + patience
        while await asyncio.to_thread(http_status, f"http://127.0.0.1:{self.port}/readyz") != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready; see {self.log}")
            await asyncio.sleep(0.2)

    def role(self) -> str:
        import urllib.request

        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=5) as answer:
                return str(json.loads(answer.read())["role"])
        except (OSError, ValueError, KeyError):
            return "down"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


RULES = """\
rules:
  - name: missed
    when: {to: missed}
    notify: [chat]
    title: "missed {{ provider }} {{ call.id }}"
  - name: door-offline
    when: {kind: intercom, to: offline}
    for: FOR
    resolve: true
    notify: [chat]
    title: "offline {{ intercom.id }}"
""".replace("FOR", f"{OUTAGE_FOR:g}s")


def config(
    building: Building,
    store: str,
    port: int,
    receiver: str,
    folder: Path,
    day: float,
    hooks: dict[str, Any],
) -> str:
    """The daemon's config: the four APIs, retention shrunk with the day, the soak's rules."""
    sim = building.sim
    retention = f"{RETENTION_DAYS * day:g}s"
    base = sim.base_url
    bird, bw = hooks["bird"], hooks["bandwidth"]
    return f"""
store: "{store}"
listen: 127.0.0.1:{port}
lease_ttl: 6s
decisions_retention: {retention}
shutdown_grace: 5s
rules: [{folder / "rules"}]
providers:
  - {{name: front-door, type: vms-intercom, base_url: "{base}", token: {sim.vms.token},
     poll_interval: 1s, retention: {retention}}}
  - {{name: support, type: bird, base_url: "{base}", token: {sim.bird.access_key},
     workspace_id: {sim.bird.workspace_id}, channel_id: {sim.bird.channel_id},
     poll_interval: 5s, retention: {retention},
     webhook: {{signing_key: {bird["key"]}, url: "{bird["url"]}"}}}}
  - {{name: contact-centre, type: cinnox, base_url: "{base}", app_id: {sim.cinnox.app_id},
     token: {sim.cinnox.token}, poll_interval: 1s, retention: {retention}}}
  - {{name: sales, type: bandwidth, base_url: "{base}", user_id: {sim.bandwidth.user_id},
     api_token: {sim.bandwidth.api_token}, api_secret: {sim.bandwidth.api_secret},
     poll_interval: 5s, retention: {retention},
     webhook: {{username: callmon, password: {bw["password"]}}}}}
notifiers:
  chat:
    urls: ["{receiver}"]
"""


@dataclass
class Run:
    """One soak on one store: what it measured and what it found."""

    store: str
    days: int
    day: float
    truth: Any = None
    receiver: Receiver | None = None
    watched: list[Watched] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)
    health: list[tuple[float, str, int]] = field(default_factory=list)
    exits: dict[str, int | None] = field(default_factory=dict)


async def soak(kind: str, days: int, day: float, calls: int, folder: Path) -> Run:
    """Run the month on one store kind; return what was seen."""
    from monitor.simulator.bird import Subscription  # noqa: F401  (the simulator pushes)

    run = Run(kind, days, day)
    building = Building(calls, days * day)
    receiver = run.receiver = Receiver()
    url = await receiver.start()
    await building.sim.start()
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    (folder / "rules" / "soak.yaml").write_text(RULES)
    count = 2 if kind == "postgresql" else 1
    ports = [free_port() for _ in range(count)]
    # Pushes go to the first replica; any replica keeps them for the leader.
    public = f"http://127.0.0.1:{ports[0]}/hooks/support"
    hooks = {
        "bird": {"key": "soak-bird-key-8e2", "url": public},
        "bandwidth": {"password": "soak-bw-pass-51"},
    }
    building.sim.bird.subscribe(public, hooks["bird"]["key"], public)
    building.sim.bandwidth.subscribe(
        f"http://callmon:{hooks['bandwidth']['password']}@127.0.0.1:{ports[0]}/hooks/sales"
    )
    env_extra: dict[str, Any] = {"building": building}
    if kind == "sqlite":
        path = folder / "state.db"
        stores = [f"sqlite:///{path}"]
        probe: Any = SqliteStoreProbe(path)
    else:
        from tests.pg import Cluster
        from tests.proxy import Proxy

        cluster = Cluster()
        env_extra["cluster"] = cluster
        proxy = Proxy(cluster.port)
        await proxy.start()
        env_extra["proxy"] = proxy
        direct = cluster.url
        stores = [direct.replace(f":{cluster.port}/", f":{proxy.port}/"), direct]
        probe = PostgresStoreProbe(direct)
    for i, port in enumerate(ports):
        name = f"callmon-{'ab'[i]}"
        path = folder / f"{name}.yaml"
        path.write_text(config(building, stores[i], port, url, folder, day, hooks))
        daemon = Daemon(name, path, port, folder / f"{name}.log")
        run.daemons.append(daemon)
        run.watched.append(Watched(name, daemon.pid, port, daemon.log, probe))
        await daemon.start()
    for daemon in run.daemons:
        await daemon.ready()
    await baselines(run.daemons, 4)  # calls start once history is recorded, as on a first start
    started = time.monotonic()
    traffic = asyncio.create_task(building.run())
    sampler = asyncio.create_task(sample_every(run, 10.0))
    healthz = asyncio.create_task(watch_health(run))
    plan = schedule(kind, days, day)
    injected: list[asyncio.Task[None]] = []
    try:
        for at, fault in plan:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            run.faults.append((time.monotonic() - started, fault.name))
            print(f"  [{kind}] day {at / day:4.1f}: {fault.name}", flush=True)
            injected.append(asyncio.create_task(fault.inject(run, env_extra)))
        await asyncio.sleep(max(0.0, started + days * day - time.monotonic()))
        await asyncio.gather(*injected)  # each fault over before the end is judged
    finally:
        traffic.cancel()
        for task in injected:
            task.cancel()
        await asyncio.gather(traffic, *injected, return_exceptions=True)
    await settle(run, building)
    sampler.cancel()
    healthz.cancel()
    await asyncio.gather(sampler, healthz, return_exceptions=True)
    for daemon in run.daemons:
        run.exits[daemon.name] = await daemon.stop()
    run.truth = building.truth
    await building.sim.stop()
    await receiver.stop()
    if "proxy" in env_extra:
        await env_extra["proxy"].stop()
    if "cluster" in env_extra:
        await asyncio.to_thread(env_extra["cluster"].destroy)
    return run


async def baselines(daemons: list[Daemon], providers: int, patience: float = 60.0) -> None:
    """Until the daemons' logs say every provider took its baseline."""
    deadline = time.monotonic() + patience
    while sum(d.log.read_text().count("baseline taken") for d in daemons) < providers:
        if time.monotonic() > deadline:
            raise RuntimeError("no baseline taken; see the logs")
        await asyncio.sleep(0.2)


async def sample_every(run: Run, period: float) -> None:
    while True:
        for watched in run.watched:
            await asyncio.to_thread(watched.sample)
        await asyncio.sleep(period)


async def watch_health(run: Run) -> None:
    """`/healthz` of every daemon every second: (when, daemon, status)."""
    while True:
        for daemon in run.daemons:
            status = await asyncio.to_thread(
                http_status, f"http://127.0.0.1:{daemon.port}/healthz", 2.0
            )
            run.health.append((time.time(), daemon.name, status))
        await asyncio.sleep(1.0)


async def settle(run: Run, building: Building, patience: float = 180.0) -> None:
    """After the traffic stops: until every missed call and outage is told (or `timeout`)."""
    assert run.receiver is not None
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        titles = run.receiver.titles()
        missing = [k for k in building.truth.missed if f"missed {k[0]} {k[1]}" not in titles]
        alerts = sum(n for t, n in titles.items() if t.startswith("offline "))
        resolved = sum(n for t, n in titles.items() if t.startswith("Resolved: offline "))
        if not missing and resolved >= alerts:
            return
        await asyncio.sleep(2.0)


if __name__ == "__main__":  # pragma: no cover
    from bench.soak_report import main

    sys.exit(main())
