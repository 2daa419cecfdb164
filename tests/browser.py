"""A real headless Chromium for the tests, driven over the DevTools protocol (a WebSocket, through
aiohttp): navigate, evaluate, wait for loads, take screenshots. Debian's `chromium`; `.ci/run`
installs it, and elsewhere the tests that need it skip with the reason."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port, wait_until

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class Navigated(AssertionError):
    """The document a command was for went away meanwhile (a navigation under way)."""


GONE = ("navigated or closed", "context was destroyed", "Cannot find context")


class Page:
    """One browser tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        await self._ws.send_json({"id": message_id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._ws.receive_json(), 30)
            if message.get("id") == message_id:
                if "error" in message:
                    error = message["error"]
                    kind = Navigated if any(g in str(error) for g in GONE) else AssertionError
                    raise kind(f"{method}: {error}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def goto(self, url: str) -> None:
        """Open `url` and wait until its document has loaded."""
        await self._mark()
        await self.send("Page.navigate", url=url)
        await self._settled()

    async def run(self, expression: str, *, navigates: bool = False) -> Any:
        """Evaluate JavaScript in the page (the test's own hand, not the page's code); with
        `navigates`, wait until the document it leads to has loaded."""
        if not navigates:
            return await self._evaluate(expression)
        await self._mark()
        found: Any = None
        with contextlib.suppress(Navigated):  # the page it leads to may come before the answer
            found = await self._evaluate(expression)
        await self._settled()
        return found

    async def _evaluate(self, expression: str) -> Any:
        found = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    async def _mark(self) -> None:
        """Mark the document shown now, so that `_settled` knows it from the next one (a load
        event alone could be this one's, late on a busy machine; the address may not change:
        a form that redirects back to the page)."""
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                await self._evaluate("window.__shownBefore = true")
                return
            except Navigated:  # the document shown is being replaced (the first, blank one
                if asyncio.get_running_loop().time() > deadline:  # on a busy machine)
                    raise
                await asyncio.sleep(0.05)

    async def _settled(self) -> None:
        """Wait until a document other than the marked one has loaded."""
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                state = await self._evaluate(
                    "window.__shownBefore ? 'before' : document.readyState"
                )
            except Navigated:  # asked just as the next document replaced the marked one
                state = "navigating"
            if state == "complete":
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no new page loaded within 60 s ({state})")
            await asyncio.sleep(0.05)

    async def text(self) -> str:
        return str(await self.run("document.body.innerText"))

    async def screenshot(self, path: Path, width: int, height: int = 900) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI installs it: see .ci/run)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return found


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Page]:
    """A headless Chromium with one page, closed afterwards."""
    port = free_port()
    profile = tempfile.mkdtemp(prefix="callmon-chromium-")
    proc = await asyncio.create_subprocess_exec(
        chromium(),
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:

            async def targets() -> list[dict[str, Any]]:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                        found: list[dict[str, Any]] = await r.json()
                        return found
                except aiohttp.ClientError:
                    return []

            pages = await wait_until(
                targets, lambda found: any(t.get("type") == "page" for t in found), timeout=30
            )
            target = next(t for t in pages if t.get("type") == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                yield page
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
