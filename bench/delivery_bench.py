"""Notifications per second to a local receiver, and the time from a provider change to the
receiver with a 1 s poll interval (target: poll interval + 100 ms at p99).

Run: `.venv/bin/python bench/delivery_bench.py`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.config import Config
from monitor.delivery.sender import Sender, warm_up
from monitor.delivery.worker import Worker
from monitor.model import Alert, Severity
from monitor.rules.loader import Context, load_rules
from monitor.runtime.daemon import Daemon
from monitor.simulator.server import Simulator
from monitor.store import Delivery, SqliteStore
from monitor.telemetry import Telemetry


class Receiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expect = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrivals[str(body["title"])] = time.time()
        if len(self.arrivals) >= self.expect:
            self.done.set()
        return web.Response(text="ok")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        return f"json://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"


async def throughput(tmp: Path, count: int = 500) -> None:
    receiver = Receiver()
    receiver.expect = count
    url = await receiver.start()
    store = SqliteStore(str(tmp / "throughput.db"))
    now = datetime.now(UTC)
    await store.enqueue(
        [
            Delivery(
                Alert(
                    key=f"k{i}",
                    rule="r",
                    notifier="chat",
                    severity=Severity.INFO,
                    title=f"m{i}",
                    body="b",
                    created_at=now,
                ),
                0,
            )
            for i in range(count)
        ]
    )
    worker = Worker("chat", 0, Sender(url), store, Telemetry(CollectorRegistry()))
    start = time.perf_counter()
    task = asyncio.create_task(worker.run())
    await receiver.done.wait()
    seconds = time.perf_counter() - start
    worker.stop()
    await task
    await store.close()
    print(
        f"  throughput, one target, in order: {count / seconds:6.0f} notifications/s "
        f"({count} in {seconds:.2f} s)"
    )


async def latency(tmp: Path, calls: int = 40) -> None:
    receiver = Receiver()
    receiver.expect = calls
    url = await receiver.start()
    sim = Simulator(seed=1)
    await sim.start()
    (tmp / "rules.yaml").write_text(
        "rules:\n  - {name: missed, when: {to: missed}, notify: [chat], title: '{{ call.id }}'}\n"
    )
    config = Config.model_validate(
        {
            "store": f"sqlite:///{tmp / 'latency.db'}",
            "listen": "127.0.0.1:0",
            "rules": [str(tmp / "rules.yaml")],
            "providers": [
                {
                    "name": "door",
                    "type": "vms-intercom",
                    "base_url": sim.base_url,
                    "token": sim.vms.token,
                    "poll_interval": "1s",
                }
            ],
            "notifiers": {"chat": {"urls": [url]}},
        }
    )
    rules = load_rules([tmp / "rules.yaml"], Context(notifiers=["chat"], providers=["door"]))
    daemon = Daemon(config, rules)
    run = asyncio.create_task(daemon.run())
    await asyncio.sleep(2.0)
    changed: dict[str, float] = {}
    for _ in range(calls):
        call = sim.vms.ring(158)
        await asyncio.sleep(0.37)
        sim.vms.miss(call.id)
        changed[str(call.id)] = time.time()
    await asyncio.wait_for(receiver.done.wait(), 30)
    daemon.stopping.set()
    await run
    await sim.stop()
    delays = sorted(receiver.arrivals[c] - t for c, t in changed.items())
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    print(
        f"  provider change → receiver, 1 s poll: p50 {p50 * 1000:4.0f} ms, "
        f"p99 {p99 * 1000:4.0f} ms, max {delays[-1] * 1000:4.0f} ms ({calls} calls; "
        f"target p99 ≤ 1100 ms)"
    )


async def main() -> None:
    warm_up()
    print("delivery benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        await throughput(Path(tmp))
        await latency(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
