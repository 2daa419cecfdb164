"""The shape of a loop that works every so often, or at once when woken."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from monitor.store import StoreError
from monitor.telemetry.heartbeat import Heartbeat

log = structlog.get_logger("monitor.tracking")


async def every(
    period: float,
    woken: asyncio.Event,
    beat: Heartbeat,
    step: Callable[[], Awaitable[object]],
    retry: str,
) -> None:
    """The shape of a loop that works every `period` seconds, or at once when `woken` is set:
    a store that fails is logged (`retry` says what waits) and tried again next time."""
    while True:
        beat()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), period)
        woken.clear()
        try:
            await step()
        except StoreError as exc:
            log.error(f"store failed; {retry}", error=str(exc))
