"""The VMS doors' online status and timetables: `/api/v1/intercom/shows`, 25 ids per request.

Which doors are watched (the configured `intercoms`, or the doors seen in calls up to
`max_doors`), and a few batches per poll asked about in turn, so that the call list always comes
first in the request budget however many doors there are. A failing status request never stops
call monitoring: it is reported once and the poll goes on.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import structlog

from monitor.model import Call, Intercom, PollResult
from monitor.sources.base import ProviderError, decode_body
from monitor.sources.http import HttpClient

log = structlog.get_logger("monitor.sources.vms_intercom")

SHOWS_PATH = "/api/v1/intercom/shows"
SHOWS_BATCH = 25
"""The documented maximum of ids per `/intercom/shows` request."""
STATUS_BATCHES_PER_POLL = 2
"""Door-status requests one poll makes at most; more doors are asked about in turn."""


class DoorStatus:
    """The status of one VMS account's watched doors."""

    def __init__(
        self,
        provider: str,
        http: HttpClient,
        base: str,
        *,
        only: Collection[int] | None,
        max_doors: int,
        interval: float,
    ) -> None:
        self._provider = provider
        self._http = http
        self._url = base + SHOWS_PATH
        self._only = frozenset(only) if only else None
        self._max_doors = max_doors
        self._interval = interval
        self._next = 0.0
        self._offset = 0
        self._failing = False
        self._full = False

    def watched(self, cursor: Mapping[str, Any], calls: list[Call]) -> set[int]:
        """The doors whose status is polled: the configured ones, or every door seen in a
        call, up to `max_doors` (the rest are not watched, and said so once)."""
        if self._only is not None:
            return set(self._only)
        doors = set(cursor.get("doors", ()))
        for call in calls:
            if call.intercom is None or call.intercom.id in doors:
                continue
            if len(doors) >= self._max_doors:
                if not self._full:
                    log.warning(
                        "more doors than max_doors; the others' status is not watched",
                        provider=self._provider,
                        max_doors=self._max_doors,
                    )
                self._full = True
                continue
            doors.add(call.intercom.id)
        return doors

    async def poll(self, doors: set[int], result: PollResult) -> None:
        """When the status is due, ask about the next doors; their answers go to `result`."""
        if not doors or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._interval
        try:
            result.intercoms = await self._status(self._next_doors(sorted(doors)))
        except ProviderError as exc:  # door status must never stop call monitoring
            if not self._failing:
                log.warning("intercom status unavailable", provider=self._provider, error=str(exc))
                result.skipped += 1
            self._failing = True
        else:
            self._failing = False

    def due_now(self) -> None:
        """Ask about the doors with the next poll, whatever the interval says."""
        self._next = 0.0

    def _next_doors(self, doors: list[int]) -> list[int]:
        per_poll = SHOWS_BATCH * STATUS_BATCHES_PER_POLL
        if len(doors) <= per_poll:
            return doors
        start = self._offset % len(doors)
        chosen = (doors[start:] + doors[:start])[:per_poll]
        self._offset = start + per_poll
        return chosen

    async def _status(self, doors: list[int]) -> list[Intercom]:
        found: list[Intercom] = []
        for i in range(0, len(doors), SHOWS_BATCH):
            batch = doors[i : i + SHOWS_BATCH]
            resp = await self._http.get(self._url, [("ids[]", str(door)) for door in batch])
            found.extend(decode_body(self._provider, "intercom list", resp.body, list[Intercom]))
        return found
