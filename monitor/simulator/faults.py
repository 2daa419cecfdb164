"""Injected failures for the fake APIs: errors, slow answers and broken bodies."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Fault:
    """One failure to serve instead of (or before) a normal answer."""

    kind: str  # "status", "delay", "html", "badjson"
    status: int = 500
    seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    api: str | None = None  # only for this API; None for any


@dataclass
class Faults:
    """A queue of faults consumed one per matching request."""

    queue: deque[Fault] = field(default_factory=deque)

    def add(self, fault: Fault, times: int = 1) -> None:
        self.queue.extend([fault] * times)

    def clear(self) -> None:
        self.queue.clear()

    async def apply(self, api: str) -> web.Response | None:
        """The response to serve instead of the real one, or None to answer normally."""
        for i, fault in enumerate(self.queue):
            if fault.api in (None, api):
                del self.queue[i]
                break
        else:
            return None
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == "html":
            return web.Response(
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                status=fault.status,
                content_type="text/html",
            )
        if fault.kind == "badjson":
            return web.Response(text='{"data": [', status=200, content_type="application/json")
        return web.json_response(
            {"message": f"simulated error {fault.status}"},
            status=fault.status,
            headers=dict(fault.headers),
        )
