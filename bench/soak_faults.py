"""The soak's faults, on a schedule through the simulated month: provider outages, 500s and slow
pages, a notifier down for minutes, the store locked, a slow-client flood on `listen`; with two
replicas on PostgreSQL also the leader killed and frozen, PostgreSQL restarted, and the leader's
database link frozen and slowed through a TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from monitor.simulator.faults import Fault as ApiFault


@dataclass(frozen=True)
class Fault:
    """One fault: its name and how to inject it (it returns once the fault is over)."""

    name: str
    inject: Callable[[Any, dict[str, Any]], Awaitable[None]]


def _api_fault(api: str, fault: ApiFault, seconds: float) -> Callable[..., Awaitable[None]]:
    async def inject(run: Any, extra: dict[str, Any]) -> None:
        sim = extra["building"].sim
        line = {"vms": sim.vms, "bird": sim.bird, "cinnox": sim.cinnox, "bw": sim.bandwidth}[api]
        line.faults.add(fault, times=1_000_000)
        await asyncio.sleep(seconds)
        line.faults.clear()

    return inject


def _notifier_down(seconds: float) -> Callable[..., Awaitable[None]]:
    async def inject(run: Any, extra: dict[str, Any]) -> None:
        run.receiver.status = 503
        await asyncio.sleep(seconds)
        run.receiver.status = 200

    return inject


def _store_locked(seconds: float) -> Callable[..., Awaitable[None]]:
    """Another process's transaction holds the store's write lock (a backup, a CLI tool)."""

    async def inject(run: Any, extra: dict[str, Any]) -> None:
        if run.store == "sqlite":
            path = run.watched[0].store.path
            done = threading.Event()

            def hold() -> None:
                db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
                db.execute("BEGIN EXCLUSIVE")
                done.wait(seconds)
                db.execute("ROLLBACK")
                db.close()

            await asyncio.to_thread(hold)
        else:
            import psycopg

            url = run.watched[0].store.url
            async with await psycopg.AsyncConnection.connect(url) as db, db.transaction():
                await db.execute("LOCK TABLE calls, outbox IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(seconds)

    return inject


def _slow_clients(count: int, seconds: float) -> Callable[..., Awaitable[None]]:
    async def inject(run: Any, extra: dict[str, Any]) -> None:
        port = run.daemons[0].port
        stop = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < stop:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(1.0)
                    continue
                try:
                    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    while time.monotonic() < stop and not reader.at_eof():
                        writer.write(b"X")
                        await writer.drain()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(reader.read(1), 1.0)
                except OSError:
                    pass
                finally:
                    writer.close()
                await asyncio.sleep(1.0)

        await asyncio.gather(*(client() for _ in range(count)), return_exceptions=True)

    return inject


async def _leader(run: Any) -> Any:
    for _ in range(120):
        roles = [await asyncio.to_thread(d.role) for d in run.daemons]
        if roles.count("leader") == 1:
            return run.daemons[roles.index("leader")]
        await asyncio.sleep(0.5)
    return run.daemons[0]


async def _kill_leader(run: Any, extra: dict[str, Any]) -> None:
    leader = await _leader(run)
    await leader.kill()
    await asyncio.sleep(2.0)
    await leader.start()
    await leader.ready()


async def _freeze_leader(run: Any, extra: dict[str, Any]) -> None:
    leader = await _leader(run)
    leader.signal(signal.SIGSTOP)
    leader.killed_at.append(time.time())  # its send in flight may go out again: the window
    await asyncio.sleep(18.0)  # three times the soak's lease_ttl
    leader.signal(signal.SIGCONT)


async def _postgres_restarted(run: Any, extra: dict[str, Any]) -> None:
    cluster = extra["cluster"]
    for daemon in run.daemons:  # the leader's sent message may not be recorded: the window
        daemon.killed_at.append(time.time())
    await asyncio.to_thread(cluster.stop)
    await asyncio.sleep(5.0)
    await asyncio.to_thread(cluster.start)


def _link(freeze: bool, seconds: float) -> Callable[..., Awaitable[None]]:
    """callmon-a's link to PostgreSQL (through the proxy) frozen, or slowed by half a second."""

    async def inject(run: Any, extra: dict[str, Any]) -> None:
        proxy = extra["proxy"]
        if freeze:
            run.daemons[0].killed_at.append(time.time())
            proxy.freeze()
        else:
            proxy.delay = 0.5
        await asyncio.sleep(seconds)
        proxy.thaw()
        proxy.delay = 0.0

    return inject


STEPS_UNTIL = 0.45
"""The faults that move a process's memory by design (a restart, a change of role, the flood's
256 connections, whose high-water mark the allocator keeps for the next flood) all come before
this fraction of the run; after it only faults that must move nothing, so that the rest of the
month shows what a process does in its steady state, faults and all."""


def schedule(store: str, days: int, day: float) -> list[tuple[float, Fault]]:
    """(seconds from the start, fault), in order: each kind once or twice over the month. The
    faults last as long as written with days of a minute, shorter with shorter days."""
    k = min(1.0, day / 60.0)
    vms_500 = _api_fault("vms", ApiFault("status", 500, api="vms"), 30.0 * k)
    cinnox_slow = _api_fault("cinnox", ApiFault("delay", seconds=4.0, api="cinnox"), 60.0 * k)
    bird_html = _api_fault("bird", ApiFault("html", 502, api="bird"), 30.0 * k)
    every: list[tuple[float, Fault]] = [
        (0.07, Fault("provider outage: VMS answers 500", vms_500)),
        (
            0.12,
            Fault(
                "slow-client flood on listen: 500 clients for 60 s", _slow_clients(500, 60.0 * k)
            ),
        ),
        (0.17, Fault("leader killed (SIGKILL) and restarted", _kill_leader)),
        (0.50, Fault("slow pages: CINNOX answers after 4 s", cinnox_slow)),
        (0.58, Fault("notifier down for 2 minutes", _notifier_down(120.0 * k))),
        (0.66, Fault("store locked by another process for 8 s", _store_locked(8.0))),
        (0.74, Fault("provider outage: Bird HTML error pages", bird_html)),
        (0.82, Fault("notifier down for 1 minute", _notifier_down(60.0 * k))),
        (0.90, Fault("provider outage: VMS answers 500 again", vms_500)),
    ]
    if store == "postgresql":
        slowed = _link(False, 60.0 * k)
        every += [
            (0.23, Fault("leader frozen (SIGSTOP) for 3 × lease_ttl", _freeze_leader)),
            (0.29, Fault("PostgreSQL restarted", _postgres_restarted)),
            (0.35, Fault("callmon-a's database link frozen for 20 s", _link(True, 20.0))),
            (0.40, Fault("callmon-a's database link slowed by 0.5 s for 60 s", slowed)),
        ]
    if only := os.environ.get("SOAK_ONLY"):  # faults whose name has one of A|B alone
        every = [(f, fault) for f, fault in every if any(o in fault.name for o in only.split("|"))]
    return sorted(((fraction * days * day, fault) for fraction, fault in every), key=lambda x: x[0])
