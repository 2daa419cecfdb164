"""Leadership on an injected clock, over an in-memory lease with the store's semantics (the real
lease on PostgreSQL is tested in test_postgres.py): who leads, when it stops trusting its lease,
and what it does on loss and on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from monitor.runtime.leadership import LOCAL_SHARE, Leadership
from monitor.store import StoreError
from tests.conftest import wait_for


@dataclass
class MemoryLease:
    """The lease row: holder token and expiry, on the test's clock."""

    now: list[float]
    token: int = 0
    holder: str | None = None
    expires: float = 0.0
    fence: int | None = None
    down: bool = False
    calls: list[str] = field(default_factory=list)

    on_lease_lost: Callable[[], None] = field(default=lambda: None)
    fence_valid: Callable[[], bool] = field(default=lambda: True)

    def _up(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise StoreError("store unreachable")

    async def acquire(self, ttl: float) -> int | None:
        self._up("acquire")
        if self.expires > self.now[0] and self.holder != "me":
            return None
        self.token += 1
        self.holder, self.expires = "me", self.now[0] + ttl
        return self.token

    async def renew(self, token: int, ttl: float) -> bool:
        self._up("renew")
        if token != self.token:
            return False
        self.expires = self.now[0] + ttl
        return True

    async def release(self, token: int) -> None:
        self._up("release")
        if token == self.token:
            self.expires = 0.0


def leader_work(stopping: asyncio.Event, cancelled: asyncio.Event) -> Callable[[], Awaitable[None]]:
    """The leader's work: runs until `stopping`; sets `cancelled` when leadership ends it."""

    async def work() -> None:
        try:
            await stopping.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    return work


def leadership(lease: MemoryLease, ttl: float = 3.0) -> tuple[Leadership, list[bool]]:
    changes: list[bool] = []
    return Leadership(lease, ttl, on_change=changes.append, clock=lambda: lease.now[0]), changes


async def test_it_trusts_its_lease_for_two_thirds_of_the_ttl_only() -> None:
    now = [100.0]
    lease = MemoryLease(now)
    lead, _ = leadership(lease)
    stopping = asyncio.Event()
    working = asyncio.Event()

    async def work() -> None:
        working.set()
        await stopping.wait()

    task = asyncio.create_task(lead.run(work, stopping))
    await wait_for(working.is_set)
    assert lead.leading
    assert lead.holds()
    assert lease.fence == 1
    now[0] += 3.0 * LOCAL_SHARE - 0.01
    assert lead.holds()
    assert lease.fence_valid()  # the store asks the same before each fenced write
    now[0] += 0.02  # a pause (SIGSTOP) past two thirds of the ttl: no more sending
    assert not lead.holds()
    assert not lease.fence_valid()  # nor any fenced write: its lock would hold the next up
    stopping.set()
    await task
    assert lease.calls[-1] == "release"
    assert lease.expires == 0.0


async def test_a_lease_taken_by_another_stops_the_work_at_once_and_stands_by() -> None:
    now = [0.0]
    lease = MemoryLease(now)
    lead, changes = leadership(lease, ttl=0.3)  # renews every 0.1 s of real time
    stopping, cancelled = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(lead.run(leader_work(stopping, cancelled), stopping))
    await wait_for(lambda: lead.leading)
    lease.token, lease.holder, lease.expires = 7, "other", 1e9  # another replica took it
    await wait_for(cancelled.is_set, timeout=5)
    assert not lead.leading
    assert not lead.holds()
    assert changes == [True, False]
    assert lease.fence is None  # a standby's own writes (pushes, checks) are not fenced
    lease.expires = 0.0  # the other one left: this replica leads again, with a new token
    await wait_for(lambda: lead.leading, timeout=5)
    assert lease.fence == 8
    assert lead.failovers == 2
    stopping.set()
    await task


async def test_a_store_out_of_reach_ends_leadership_once_the_lease_lapses() -> None:
    now = [0.0]
    lease = MemoryLease(now)
    lead, changes = leadership(lease, ttl=0.3)
    stopping, cancelled = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(lead.run(leader_work(stopping, cancelled), stopping))
    await wait_for(lambda: lead.leading)
    renewals = lease.calls.count("renew")
    lease.down = True
    await wait_for(lambda: lease.calls.count("renew") > renewals)  # and that renewal failed
    assert lead.leading  # still within its share of the ttl
    now[0] += 0.3 * LOCAL_SHARE
    await wait_for(cancelled.is_set, timeout=5)
    assert changes == [True, False]
    stopping.set()
    await task


async def test_a_pause_that_nobody_used_ends_with_the_next_renewal() -> None:
    """Paused past its share of the ttl with no standby taking over: it sends nothing until a
    renewal with the same token succeeds, then goes on leading (no needless failover)."""
    now = [0.0]
    lease = MemoryLease(now)
    lead, changes = leadership(lease, ttl=0.3)
    stopping = asyncio.Event()

    async def work() -> None:
        await stopping.wait()

    task = asyncio.create_task(lead.run(work, stopping))
    await wait_for(lambda: lead.leading)
    now[0] += 10.0  # the pause
    assert not lead.holds()
    lead.nudge()
    await wait_for(lead.holds, timeout=5)
    assert changes == [True]
    assert lease.fence == 1
    stopping.set()
    await task
