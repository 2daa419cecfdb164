"""The README's screenshots: the status page (desktop and phone) and a call's story, as Debian's
headless Chromium draws them, from the full daemon against the simulator with a day of history.

The day is written into the store first (calls answered and missed per hour at three doors and
on Bird, the Gate no longer answered since the afternoon), then the daemon runs with the demo's
rules and traffic until a missed call has been alerted.

Run: `make screenshots` (writes docs/status-desktop.png, docs/status-phone.png,
docs/call-story.png).
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.cli.daemon import demo_rules  # noqa: E402
from monitor.config import Config  # noqa: E402
from monitor.runtime.build import load_config_rules  # noqa: E402
from monitor.runtime.daemon import Daemon  # noqa: E402
from monitor.simulator.server import Simulator  # noqa: E402
from monitor.store import Changes, Tally, open_store  # noqa: E402
from tests.browser import browser  # noqa: E402
from tests.conftest import free_port, wait_until  # noqa: E402

HOUR = 3600.0
TOKEN = "screenshot-token-0123456789"


def a_day(now: float) -> list[Tally]:
    """24 hours of calls: busy by day, quiet by night; the Gate (180) unanswered since 15:00."""
    rng = random.Random(4)
    last = now - now % HOUR
    found = []
    for back in range(24, 0, -1):
        hour = last - back * HOUR
        local = time.localtime(hour).tm_hour
        busy = 1.0 if 8 <= local < 19 else 0.15
        for provider, door, rate in (
            ("front-door", "158", 6),
            ("front-door", "180", 4),
            ("front-door", "201", 2),
            ("support", "", 9),
        ):
            calls = rng.randint(0, round(rate * busy + 0.4))
            if door == "180" and back <= 6:
                missed = calls
            else:
                missed = sum(rng.random() < 0.12 for _ in range(calls))
            found.append(Tally(provider, door, hour, calls - missed, missed))
    return found


async def main() -> None:
    out = ROOT / "docs"
    sim = Simulator(seed=3)
    await sim.start(history=30)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="callmon-shots-") as tmp:
        store_url = f"sqlite:///{tmp}/state.db"
        store = await open_store(store_url)
        await store.commit(Changes(tally=a_day(time.time())))
        await store.close()
        providers = sim.provider_configs("1s")
        config = Config.model_validate(
            {
                "store": store_url,
                "listen": f"127.0.0.1:{port}",
                "external_url": f"http://127.0.0.1:{port}",
                "api_token": TOKEN,
                "rules": [str(demo_rules())],
                "providers": providers,
                "notifiers": {"ops-chat": {"urls": ["console://"]}},
            }
        )
        daemon = Daemon(config, load_config_rules(config))
        task = asyncio.create_task(daemon.run())
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:

                async def page() -> str:
                    try:
                        async with session.get(base + "/") as r:
                            return await r.text()
                    except aiohttp.ClientError:
                        return ""

                await wait_until(page, lambda html: "<svg" in html, timeout=60)
                sim.start_traffic()
                html = await wait_until(
                    page, lambda html: html.count('href="/calls/') >= 4, timeout=120
                )
            story = re.findall(r'href="(/calls/front-door/[^"]+)"', html) or re.findall(
                r'href="(/calls/[^"]+)"', html
            )
            async with browser() as tab:
                await tab.goto(base + "/")
                await tab.screenshot(out / "status-desktop.png", width=1280)
                await tab.screenshot(out / "status-phone.png", width=390, height=844)
                await tab.goto(base + story[0])
                await tab.screenshot(out / "call-story.png", width=1280, height=700)
        finally:
            daemon.stopping.set()
            await asyncio.wait_for(task, 30)
            await sim.stop()
    print("wrote docs/status-desktop.png, docs/status-phone.png, docs/call-story.png")


if __name__ == "__main__":
    asyncio.run(main())
