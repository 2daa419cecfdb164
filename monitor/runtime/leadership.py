"""Which replica leads: a lease on the shared store, renewed every `ttl / 3`.

A replica stands by until it takes the lease (free, expired, or released by a leader that
stopped), then runs the leader's work until it stops or loses the lease. The store fences every
write with the token the lease gave (see `monitor.store.postgres`), so a leader that loses the
lease can change nothing. What the store cannot fence is a send through apprise: the leader
therefore holds the lease *locally* only until two thirds of the ttl after its last successful
renewal began (`holds`), and sends only while it holds it; a replica paused for longer (SIGSTOP,
a frozen VM) finds it no longer holds it when it wakes, before anything else can happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import anyio
import structlog

from monitor.store import StoreError

log = structlog.get_logger("monitor.runtime.leadership")

LOCAL_SHARE = 2 / 3
"""The part of the ttl after a renewal's start during which the leader trusts it still leads."""
STANDBY_RETRY = 1.0
"""How often, at most, a standby tries to take the lease (a tenth of the ttl when shorter; a
release wakes it at once)."""


@runtime_checkable
class Lease(Protocol):
    """The store's side of leadership (`PostgresStore`)."""

    fence: int | None
    on_lease_lost: Callable[[], None]
    fence_valid: Callable[[], bool]

    async def acquire(self, ttl: float) -> int | None: ...

    async def renew(self, token: int, ttl: float) -> bool: ...

    async def release(self, token: int) -> None: ...


class Leadership:
    """Stands by, leads while the lease is held, hands the lease over on stop."""

    def __init__(
        self,
        lease: Lease,
        ttl: float,
        *,
        on_change: Callable[[bool], None] = lambda leading: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.ttl = ttl
        self._on_change = on_change
        self._clock = clock
        self.token: int | None = None
        self._valid_until = float("-inf")
        self._nudged = asyncio.Event()
        self.failovers = 0
        """How many times this replica took the lease."""

    @property
    def leading(self) -> bool:
        """Whether this replica is the leader now (its work runs)."""
        return self.token is not None

    def holds(self) -> bool:
        """Whether this replica may act as the leader this instant (send a notification)."""
        return self.token is not None and self._clock() < self._valid_until

    def nudge(self) -> None:
        """Look at the lease now: it was released, or a write found it taken."""
        self._nudged.set()

    async def run(self, lead: Callable[[], Awaitable[None]], stopping: asyncio.Event) -> None:
        """Stand by and lead in turn until `stopping` is set; `lead` runs the leader's work and
        returns once it has stopped (after `stopping`), or is cancelled when the lease is lost.
        On stop the lease is released, so that a standby leads at once."""
        while not stopping.is_set():
            token = await self._acquire()
            if token is None:
                await _wait_either(self._nudged, stopping, min(STANDBY_RETRY, self.ttl / 10))
                self._nudged.clear()
                continue
            if await self._lead(token, lead):
                continue  # lost: stand by again
            # A store out of reach must not hold the stop up: the lease then simply expires.
            with contextlib.suppress(StoreError), anyio.move_on_after(self.ttl / 3):
                await self.lease.release(token)
                log.info("lease released for another replica")
            return

    async def _acquire(self) -> int | None:
        started = self._clock()
        try:
            token = await self.lease.acquire(self.ttl)
        except StoreError as exc:
            log.debug("cannot take the lease", error=str(exc))
            return None
        if token is not None:
            self._valid_until = started + self.ttl * LOCAL_SHARE
        return token

    async def _lead(self, token: int, lead: Callable[[], Awaitable[None]]) -> bool:
        """Lead with `token` until `lead` returns (False) or the lease is lost (True)."""
        self.token = self.lease.fence = token
        self.lease.fence_valid = self.holds
        self.failovers += 1
        log.info("leading", token=token)
        self._on_change(True)
        lost = False
        try:
            async with anyio.create_task_group() as group:

                async def keep() -> None:
                    nonlocal lost
                    await self._keep(token)
                    lost = True
                    self.token = None  # sending stops this instant, before the cancellation
                    group.cancel_scope.cancel()

                group.start_soon(keep)
                await lead()
                group.cancel_scope.cancel()
        finally:
            self.token = None
            # The leader's work has stopped (its writes finished or were cancelled): from now
            # on this replica writes only what a standby may (a push, a health check).
            self.lease.fence = None
            self._on_change(False)
        if lost:
            log.warning("lease lost; standing by", token=token)
        return lost

    async def _keep(self, token: int) -> None:
        """Renew every ttl / 3; return once another replica took the lease, or once it lapsed
        while the store could not be reached. A renewal that succeeds after a lapse (this
        replica was paused, and nobody took over) carries on: the token did not change, so no
        one else led meanwhile."""
        while True:
            since = self._clock() - (self._valid_until - self.ttl * LOCAL_SHARE)
            await _wait_either(self._nudged, None, max(0.0, self.ttl / 3 - since))
            self._nudged.clear()
            started = self._clock()
            try:
                with anyio.fail_after(max(self._valid_until - started, self.ttl / 3)):
                    kept = await self.lease.renew(token, self.ttl)
            except (StoreError, TimeoutError) as exc:
                if self._clock() >= self._valid_until:
                    log.error("lease lapsed: the store could not be reached to renew it")
                    return
                log.warning("cannot renew the lease; retrying", error=str(exc) or "timeout")
                await anyio.sleep(min(self.ttl / 10, max(0.0, self._valid_until - self._clock())))
                continue
            if not kept:
                log.warning("another replica took the lease")
                return
            self._valid_until = started + self.ttl * LOCAL_SHARE


async def _wait_either(event: asyncio.Event, other: asyncio.Event | None, seconds: float) -> None:
    """Wait until `event` (or `other`) is set, `seconds` at most."""
    waits = [asyncio.ensure_future(event.wait())]
    if other is not None:
        waits.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
