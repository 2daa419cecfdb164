"""On SIGTERM: the workers get the grace to send what is due and to finish a send in flight;
then they stop, and whatever is left stays queued in the store for the next start."""

from __future__ import annotations

import contextlib
import time

import anyio
import structlog

from monitor.delivery.worker import Worker
from monitor.store import Outbox, StoreError

log = structlog.get_logger("monitor.delivery")


LAST_TRY = 1.0
"""Past the grace, how long a worker that was recording a sent message gets to finish."""


async def drain(store: Outbox, workers: list[Worker], grace: float) -> None:
    """Give the workers `grace` seconds to send what is due and finish what is in flight (on
    SIGTERM); whatever is left stays queued in the store for the next start."""
    deadline = anyio.current_time() + grace
    with anyio.move_on_after(grace):
        # The workers keep sending; this only watches the outbox until nothing is due.
        with contextlib.suppress(StoreError):
            while await _anything_due(store, workers):  # noqa: ASYNC110
                await anyio.sleep(0.1)
    # Stopped whatever happened above (a store that fails, say): a worker recording a sent
    # message tries once more and gives up, so that nothing holds the stop up.
    for worker in workers:
        worker.stop()
    with anyio.move_on_after(max(deadline - anyio.current_time(), LAST_TRY)):
        while any(w.running for w in workers):  # noqa: ASYNC110
            await anyio.sleep(0.05)
    if any(w.sending for w in workers):
        log.warning("grace period over with a send in flight; it stays queued")


async def _anything_due(store: Outbox, workers: list[Worker]) -> bool:
    now = time.time()
    for worker in workers:
        due = await store.next_due(worker.notifier, worker.target)
        if due is not None and due <= now:
            return True
    return False
