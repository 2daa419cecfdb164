"""Injected failures for the fake APIs: errors, slow answers, broken and hostile bodies.

Besides the everyday faults (a 5xx, a delay, an HTML error page, truncated JSON), the hostile
ones play an API that attacks its client: an error body that echoes the request's credentials,
an endless body, JSON nested beyond any parser's patience.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Fault:
    """One failure to serve instead of (or before) a normal answer.

    `kind`: "status" (an error status), "delay", "html", "badjson", "echo" (401 quoting the
    request's `Authorization` header, as some gateways do), "huge" (a streamed body of `size`
    bytes that never ends sooner) or "deep" (JSON nested `size` levels).
    """

    kind: str
    status: int = 500
    seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    api: str | None = None  # only for this API; None for any
    size: int = 0


@dataclass
class Faults:
    """A queue of faults consumed one per matching request."""

    queue: deque[Fault] = field(default_factory=deque)
    served_bytes: int = 0
    """How much of a "huge" body was sent before the client hung up."""

    def add(self, fault: Fault, times: int = 1) -> None:
        self.queue.extend([fault] * times)

    def clear(self) -> None:
        self.queue.clear()

    async def apply(self, api: str, request: web.Request) -> web.StreamResponse | None:
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
        if fault.kind == "echo":
            sent = request.headers.get("Authorization", "")
            return web.json_response(
                {"message": f"invalid credentials: {sent}", "code": 401}, status=401
            )
        if fault.kind == "deep":
            body = '{"data": ' + "[" * fault.size + "]" * fault.size + "}"
            return web.Response(text=body, content_type="application/json")
        if fault.kind == "huge":
            return await self._huge(request, fault.size)
        return web.json_response(
            {"message": f"simulated error {fault.status}"},
            status=fault.status,
            headers=dict(fault.headers),
        )

    async def _huge(self, request: web.Request, size: int) -> web.StreamResponse:
        """Stream `size` bytes of a JSON page, without a length, as fast as the client reads."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b'{"id": 1, "status": "ring"},' * 2048
        self.served_bytes = 0
        try:
            await response.write(b'{"data": [')
            while self.served_bytes < size:
                await response.write(chunk)
                self.served_bytes += len(chunk)
        except (ConnectionError, RuntimeError):
            return response  # the client hung up, as it should
        await response.write_eof()
        return response
