"""Shared test fixtures: the simulator, a local notification receiver, the daemon as a process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from hypothesis import settings

from monitor.simulator.server import Simulator

settings.register_profile("default", max_examples=150, deadline=None)
settings.register_profile("fuzz", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_PORTS = iter(range(20000 + 500 * _WORKER, 20500 + 500 * _WORKER))


@pytest.fixture(autouse=True)
def _handle_run_restored() -> Iterator[None]:
    """`--debug` times every callback for the rest of the process (it wraps
    `asyncio.Handle._run`): a test that runs `main` with it in-process leaves no wrapper to the
    tests after it, which would name each slow callback once per wrapper."""
    original = asyncio.Handle._run
    yield
    asyncio.Handle._run = original  # type: ignore[method-assign]


def free_port() -> int:
    """A free port for a daemon to listen on, from this test worker's own range (below the
    kernel's ephemeral ports), so that parallel workers never hand out the same one."""
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("this worker ran out of test ports")


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Wait until `predicate()` holds, or fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def wait_until(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 20.0
) -> T:
    """Call `probe()` until `check` accepts what it returns, which is returned; fail the test
    after `timeout` seconds, saying what was seen last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check(value := await probe()):
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last seen: {value!r}")
        await asyncio.sleep(0.05)
    return value


async def metrics(port: int) -> str:
    """The daemon's /metrics page."""
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        return await r.text()


async def wait_for_metric(port: int, series: str, at_least: float, timeout: float = 20.0) -> None:
    """Wait until a series on the daemon's /metrics reaches `at_least`."""

    async def value() -> float:
        return metric_value(await metrics(port), series)

    await wait_until(value, lambda v: v >= at_least, timeout)


async def polls(sim: Simulator, count: int, timeout: float = 20.0) -> None:
    """Wait until the daemon has made `count` more VMS list requests (polls) to the simulator:
    how a test lets the daemon look again before asserting that nothing more happened."""
    target = sim.vms.list_requests + count
    await wait_for(lambda: sim.vms.list_requests >= target, timeout=timeout)


def ringing(provider: str) -> str:
    return f'callmon_calls_active{{provider="{provider}",state="ringing"}}'


def transitions(provider: str, frm: str, to: str) -> str:
    return (
        f'callmon_call_transitions_total{{from_state="{frm}",provider="{provider}",'
        f'to_state="{to}"}}'
    )


def metric_value(body: str, series: str) -> float:
    """The value of one series (`name{labels}` exactly as exposed) in a metrics page, or 0."""
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@dataclass
class Attempt:
    """One post the receiver got, whatever it answered: the message and the outcome."""

    body: dict[str, Any]
    outcome: str  # "accepted", "refused" (a 5xx/4xx) or "hung"

    @property
    def title(self) -> str:
        return str(self.body.get("title"))


@dataclass
class Receiver:
    """A local HTTP endpoint that apprise's `json://` target posts to.

    Every post is recorded in `attempts` before the receiver decides how to answer, so that a
    test can tell "nothing was sent" from "everything sent was refused"; `received` holds the
    messages it accepted.
    """

    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    status: int = 200
    hang: float = 0.0
    slow: float = 0.0
    on_post: Callable[[dict[str, Any]], None] | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.on_post is not None:
            self.on_post(body)
        if self.hang:  # hang, then fail without taking the message
            self.attempts.append(Attempt(body, "hung"))
            await asyncio.sleep(self.hang)
            return web.Response(status=503)
        if self.slow:  # slow, but takes the message
            await asyncio.sleep(self.slow)
        if self.status != 200:
            self.attempts.append(Attempt(body, "refused"))
            return web.Response(status=self.status)
        self.attempts.append(Attempt(body, "accepted"))
        self.received.append(body)
        return web.Response(text="ok")

    def titles(self) -> list[str]:
        return [str(m.get("title")) for m in self.received]

    def refused(self) -> list[str]:
        return [a.title for a in self.attempts if a.outcome != "accepted"]


@contextlib.asynccontextmanager
async def serving(rec: Receiver) -> AsyncIterator[Receiver]:
    """`rec` taking posts at 127.0.0.1:`rec.port`/hook while the block runs."""
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as rec:
        yield rec


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[dict[str, Handler]], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve hand-written handlers (recorded payloads) on a real local port; yields the root."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(seed=1)
    await simulator.start()
    yield simulator
    await simulator.stop()


@dataclass
class DaemonProcess:
    """`callmon run` as a real child process."""

    config: Path
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    log_path: Path | None = None
    args: tuple[str, ...] = ()
    nofile: int | None = None
    """The process's limit of open files (a container's is often 1,024)."""

    def _limits(self) -> None:
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    async def start(self) -> None:
        assert self.log_path is not None
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor",
            "run",
            "-c",
            str(self.config),
            *self.args,
            stdout=log,
            stderr=log,
            env=self.env,
            cwd=str(self.config.parent),
            preexec_fn=self._limits,
        )
        log.close()

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def logs(self) -> str:
        assert self.log_path is not None
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.logs().splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events


@pytest.fixture
async def daemon_factory(tmp_path: Path) -> AsyncIterator[Callable[[str], DaemonProcess]]:
    made: list[DaemonProcess] = []

    def make(config_text: str, **env: str) -> DaemonProcess:
        path = tmp_path / "callmon.yaml"
        path.write_text(config_text)
        full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        daemon = DaemonProcess(path, full_env, log_path=tmp_path / "daemon.log")
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        if daemon.proc is not None and daemon.proc.returncode is None:
            daemon.proc.kill()
            await daemon.proc.wait()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server for this session (see `tests.pg`)."""
    from tests import pg

    with pg.server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """The URL of an empty schema of this test's own on the session's PostgreSQL server."""
    from tests import pg

    with pg.schema_of_its_own(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store's URL on each backend: the store's contract holds on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


async def cli(*args: str) -> tuple[int, str]:
    """`callmon ARGS` in a process of its own: its exit code and what it printed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()
