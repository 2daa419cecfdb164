"""Kept pushes applied by the leader, oldest first (`PushIntake`): each becomes a one-call step
through the same tracker, rules and outbox as a poll, and is deleted in that step's
transaction. The tracker drops what it already knows (a replayed push, the poll that catches
up) and never moves a call backwards. (Any replica takes pushes in: `monitor.serve.hooks`.)
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import structlog

from monitor.model import PollResult
from monitor.sources.base import Provider, ProviderError
from monitor.sources.webhook import NotYet
from monitor.store import Push, Pushes
from monitor.telemetry.heartbeat import Heartbeat
from monitor.tracking.periodic import every
from monitor.tracking.pipeline import Pipeline
from monitor.tracking.tracker import Tracker

log = structlog.get_logger("monitor.tracking.pushes")

BATCH = 50
LOOK_AGAIN = 1.0
"""The leader looks at the kept pushes at least this often (a wake-up may be missed)."""
PATIENCE = 60.0
"""How long a push whose call the API does not show yet is tried again (then polling reads
the call)."""


class PushIntake:
    """The leader's loop that applies kept pushes, oldest first."""

    def __init__(
        self,
        store: Pushes,
        pipeline: Pipeline,
        targets: Mapping[str, tuple[Tracker, Provider]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._targets = targets
        self._clock = clock
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """A push was kept (here, or by another replica)."""
        self._woken.set()

    async def run(self, beat: Heartbeat) -> None:
        drain = functools.partial(self.drain, beat)
        await every(LOOK_AGAIN, self._woken, beat, drain, "kept pushes wait for it")

    async def drain(self, beat: Callable[[], None] = lambda: None) -> int:
        """Apply every kept push that can be applied now; how many were. `beat` at every batch:
        while pushes keep coming (a flood, the provider's retries), a drain lasts as long, and
        is progress, not a hung loop (the soak's leader was exited so after 110 s)."""
        applied = 0
        waiting: set[int] = set()
        while True:
            beat()
            batch = [
                p for p in await self._store.pushes(BATCH + len(waiting)) if p.id not in waiting
            ]
            if not batch:
                return applied
            for push in batch:
                target = self._targets.get(push.provider)
                if target is not None and not target[0].baselined:
                    waiting.add(push.id)  # the first poll takes the baseline; then this applies
                    continue
                if await self._apply(push, target):
                    applied += 1
                else:
                    waiting.add(push.id)

    async def _apply(self, push: Push, target: tuple[Tracker, Provider] | None) -> bool:
        """Apply one kept push; False when it must wait (its call not shown by the API yet)."""
        pipeline, provider = self._pipeline, push.provider
        if target is None:
            log.warning(
                "a kept push's provider is no longer configured; dropped", provider=provider
            )
            await pipeline.forget_pushes([push.id])
            return True
        tracker, client = target
        try:
            calls = await client.pushed(push.body)
        except NotYet as exc:
            if time.time() - push.received_at < PATIENCE:
                return False
            log.info(
                "a push's call never showed; polling reads it", provider=provider, why=str(exc)
            )
            await pipeline.forget_pushes([push.id])
            return True
        except ProviderError as exc:
            if time.time() - push.received_at < PATIENCE:
                log.warning("reading a pushed call failed; trying again", error=str(exc))
                return False
            await pipeline.forget_pushes([push.id])
            return True
        except Exception as exc:  # a push the provider accepted but its client cannot read
            log.error(
                "a kept push cannot be read; dropped",
                provider=provider,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            await pipeline.forget_pushes([push.id])
            return True
        result = PollResult(calls=calls, via="push")
        await pipeline.process(tracker, result, self._clock(), pushes=[push.id])
        return True
