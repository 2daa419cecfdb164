"""The soak's world: a 200-door building's month of calls on the simulator, door outages, and a
notification receiver that remembers what it got and when. Ground truth is kept here, from the
traffic's own decisions, never from callmon's code."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from monitor.simulator.server import Simulator

LINES = (("vms-intercom", 0.6), ("bird", 0.2), ("cinnox", 0.15), ("bandwidth", 0.05))
"""How the building's calls spread over the four APIs (Bandwidth lists at 1 request a second)."""
PROVIDER = {
    "vms-intercom": "front-door",
    "bird": "support",
    "cinnox": "contact-centre",
    "bandwidth": "sales",
}
OUTAGE_FOR = 3.0
"""The soak's door rule fires after a door has been offline this long (seconds)."""


@dataclass
class Truth:
    """What happened, as the traffic decided it."""

    missed: dict[tuple[str, str], float] = field(default_factory=dict)
    """(provider name, call id) → when the call became missed."""
    calls: Counter[str] = field(default_factory=Counter)
    outages: list[tuple[int, float, float]] = field(default_factory=list)
    """(door, went offline, came back) of the outages long enough to alert on."""
    short_outages: int = 0


@dataclass
class Building:
    """The simulator with 200 doors and a month of traffic compressed into `seconds`."""

    calls: int
    seconds: float
    doors: int = 200
    seed: int = 7
    sim: Simulator = field(init=False)
    truth: Truth = field(default_factory=Truth)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.sim = Simulator(seed=self.seed)
        self.sim.vms.doors.clear()
        for door in range(1, self.doors + 1):
            floor, flat = divmod(door, 10)
            self.sim.vms.add_door(door, f"Floor {floor} door {flat}", "1 Soak Street")

    @property
    def lines(self) -> dict[str, object]:
        sim = self.sim
        return {
            "vms-intercom": sim.vms,
            "bird": sim.bird,
            "cinnox": sim.cinnox,
            "bandwidth": sim.bandwidth,
        }

    async def run(self) -> None:
        """Play the month out: a call every so often on a line chosen by weight, and door
        outages (some too short to alert on), until cancelled."""
        rate = self.calls / self.seconds
        outage_every = self.seconds / 120  # four outages a simulated day
        next_outage = time.monotonic() + outage_every
        names, weights = zip(*LINES, strict=True)
        try:
            while True:
                await asyncio.sleep(self._rng.expovariate(rate))
                line = self._rng.choices(names, weights)[0]
                self._spawn(self._call(line))
                if time.monotonic() >= next_outage:
                    next_outage += outage_every
                    self._spawn(self._outage())
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: object) -> None:
        task = asyncio.create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, kind: str) -> None:
        line: object = self.lines[kind]
        rng = self._rng
        call = line.start_call()  # type: ignore[attr-defined]
        self.truth.calls[kind] += 1
        roll = rng.random()
        await asyncio.sleep(rng.uniform(1.0, 4.0))
        if roll < 0.6:
            line.answer(call)  # type: ignore[attr-defined]
            await asyncio.sleep(rng.uniform(2.0, 10.0))
            line.hang_up(call)  # type: ignore[attr-defined]
        elif roll < 0.66:
            line.reject(call)  # type: ignore[attr-defined]
            if kind == "vms-intercom":  # a door station's "declined" rings on, then is missed
                self.truth.missed[(PROVIDER[kind], str(call))] = time.time()
        else:
            line.no_answer(call)  # type: ignore[attr-defined]
            self.truth.missed[(PROVIDER[kind], str(call))] = time.time()

    async def _outage(self) -> None:
        door = self.sim.vms.doors[self._rng.randint(1, self.doors)]
        if not door.is_online:
            return
        long = self._rng.random() < 0.5
        seconds = self._rng.uniform(OUTAGE_FOR + 4, OUTAGE_FOR + 15) if long else 0.5
        door.is_online = False
        started = time.time()
        try:
            await asyncio.sleep(seconds)
        finally:
            door.is_online = True  # the month ends with every door back
        if long:
            self.truth.outages.append((door.id, started, time.time()))
        else:
            self.truth.short_outages += 1


@dataclass
class Receiver:
    """The chat room: every message posted (apprise's `json://`), with when it came."""

    status: int = 200
    got: list[tuple[float, str, str]] = field(default_factory=list)
    """(when, title, body) of every message taken."""
    refused: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._take)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"json://127.0.0.1:{self.port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.status != 200:
            self.refused += 1
            return web.Response(status=self.status)
        self.got.append((time.time(), str(body.get("title")), str(body.get("message"))))
        return web.Response(text="ok")

    def titles(self) -> Counter[str]:
        return Counter(title for _, title, _ in self.got)
