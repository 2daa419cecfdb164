"""P5: how many VMS accounts one callmon process polls every 5 s on one core, beside a naive
poller of the same fleet (`naive_poller.py`), on a quiet core and on a core shared with a busy
loop (a machine half as fast, as a slower machine or a busy host shows it).

The fleet (`fleet.py`) runs on core 1; callmon, then the peer, on core 0 (pinned as `taskset`
does), in the busy mode beside a process spinning on core 0 too. After a warm-up, one window
measures, for both the same way: poll lag (how late polls start after they were due) and event
loop lag (how late a task asking to wake every 50 ms wakes: callmon's own sampler, run in the
peer as well), each as a histogram with the same buckets read at the window's start and end,
their p50, p99 and p99.9 interpolated within buckets as Prometheus' `histogram_quantile` does,
and the maximum as the bound of the highest bucket reached; the polls made; the CPU the process
used (`/proc/PID/stat`); its RSS. Prints one line per run and a table; `run(sizes, modes)`
returns them for `bench/goals.py`.

Run: `.venv/bin/python bench/scale_bench.py [--busy|--quiet] [ACCOUNTS ...]` (default both
modes, 1000 5000 10000).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
PYTHON = sys.executable
CALLMON = os.environ.get("CALLMON", str(Path(PYTHON).with_name("callmon")))
"""The `callmon` measured: the one beside this Python, or `$CALLMON` (`make bench` uses a
runtime-only install, as deployed: without the test and dev tools, whose `rich` structlog would
load)."""
INTERVAL = 5.0
WARMUP = 25.0
WINDOW = 30.0
CALLS_PER_SECOND = 20.0
TICK = os.sysconf("SC_CLK_TCK")


MODES = ("quiet", "busy")
"""`quiet`: core 0 to itself; `busy`: core 0 shared with a process that spins."""


@dataclass
class Lags:
    """A lag histogram's figures over a window, seconds; `most` is the bound of the highest
    bucket any observation reached (inf: past the last bound)."""

    p50: float
    p99: float
    p999: float
    most: float

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float]) -> Lags:
        return cls(
            quantile(0.5, before, after),
            quantile(0.99, before, after),
            quantile(0.999, before, after),
            highest(before, after),
        )

    def text(self) -> str:
        return (
            f"p50 {ms(self.p50)}, p99 {ms(self.p99)}, p99.9 {ms(self.p999)}, max ≤ {ms(self.most)}"
        )


def ms(seconds: float) -> str:
    if seconds == float("inf"):
        return "inf"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


@dataclass
class Run:
    who: str
    accounts: int
    mode: str
    poll: Lags
    loop: Lags
    polls_per_second: float
    cpu: float
    """Cores used in the window (1.0 = one core busy all the time)."""
    rss_mib: float | None = None
    ready_seconds: float | None = None

    @property
    def lag_p99(self) -> float:
        return self.poll.p99

    def line(self) -> str:
        extra = f", RSS {self.rss_mib:5.0f} MiB" if self.rss_mib is not None else ""
        ready = f", ready in {self.ready_seconds:4.1f} s" if self.ready_seconds else ""
        return (
            f"  {self.who:8s} {self.accounts:>6,} accounts [{self.mode}]: poll lag "
            f"{self.poll.text()}; loop lag {self.loop.text()}; "
            f"{self.polls_per_second:4.0f} polls/s (due {self.accounts / INTERVAL:4.0f}), "
            f"CPU {self.cpu:4.2f} core{extra}{ready}"
        )


def pinned(cpu: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def start_fleet(accounts: int) -> tuple[subprocess.Popen[str], int]:
    fleet = subprocess.Popen(
        [
            *(PYTHON, str(HERE / "fleet.py"), "--accounts", str(accounts)),
            *("--calls-per-second", str(CALLS_PER_SECOND)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: pinned(1),
    )
    assert fleet.stdout is not None
    line = fleet.stdout.readline().split()
    if not line or line[0] != "ready":
        fleet.kill()
        raise RuntimeError("the fleet did not start")
    return fleet, int(line[1])


def config(tmp: Path, accounts: int, port: int, listen: int) -> Path:
    rules = tmp / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: missed, when: {to: missed}, notify: [ops],"
        " title: 'Missed call at {{ call.intercom.title }}'}\n"
    )
    lines = [
        f"store: sqlite:///{tmp / 'callmon.db'}",
        f"listen: 127.0.0.1:{listen}",
        f"rules: [{rules}]",
        "notifiers:",
        f"  ops: {{urls: ['json://127.0.0.1:{port}/alerts']}}",
        "providers:",
    ]
    base = f"http://127.0.0.1:{port}/a"
    lines += [
        f"  - {{name: acct-{i}, type: vms-intercom, base_url: '{base}/{i}', token: acct-{i},"
        f" poll_interval: {INTERVAL:g}s, status_interval: 1m}}"
        for i in range(accounts)
    ]
    path = tmp / "callmon.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return str(r.read().decode())


def series(text: str, name: str) -> dict[str, float]:
    """The series of histogram `name` in a metrics page, by what follows the name
    (`_bucket{le="0.001"}`, `_count`, …)."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "_"):
            key, value = line.rsplit(" ", 1)
            found[key[len(name) :]] = float(value)
    return found


def _buckets(before: dict[str, float], after: dict[str, float]) -> list[tuple[float, float]]:
    buckets = []
    for key, value in after.items():
        if key.startswith("_bucket{"):
            bound = key.split('le="')[1].split('"')[0]
            buckets.append((float(bound), value - before.get(key, 0.0)))
    return sorted(buckets)


def highest(before: dict[str, float], after: dict[str, float]) -> float:
    """The bound of the lowest bucket that holds every observation of the window."""
    buckets = _buckets(before, after)
    total = buckets[-1][1] if buckets else 0.0
    for bound, count in buckets:
        if count >= total:
            return bound
    return float("nan")


def quantile(q: float, before: dict[str, float], after: dict[str, float]) -> float:
    """The q-quantile of the observations between two scrapes of a histogram (interpolated
    within its bucket, as Prometheus' `histogram_quantile`)."""
    buckets = _buckets(before, after)
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


POLL_LAG, LOOP_LAG = "callmon_poll_lag_seconds", "callmon_event_loop_lag_seconds"


@contextlib.contextmanager
def core_shared(mode: str) -> Iterator[None]:
    """In the busy mode, a process spinning on core 0 for as long as the block runs."""
    if mode != "busy":
        yield
        return
    spin = subprocess.Popen([PYTHON, "-c", "while True: pass"], preexec_fn=lambda: pinned(0))
    try:
        yield
    finally:
        spin.kill()
        spin.wait()


def measure_callmon(accounts: int, mode: str = "quiet") -> Run:
    fleet, port = start_fleet(accounts)
    listen = free_port()
    with tempfile.TemporaryDirectory() as tmp, core_shared(mode):
        path = config(Path(tmp), accounts, port, listen)
        started = time.monotonic()
        daemon = subprocess.Popen(
            [CALLMON, "run", "-c", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: pinned(0),
        )
        try:
            ready = until_ready(listen, daemon)
            ready_seconds = ready - started
            time.sleep(WARMUP)
            before, cpu_before, t0 = scrape(listen), cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(WINDOW)
            after, cpu_after, t1 = scrape(listen), cpu_seconds(daemon.pid), time.monotonic()
            rss = rss_mib(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
            fleet.kill()
            fleet.wait()
    polls = series(after, POLL_LAG)["_count"] - series(before, POLL_LAG).get("_count", 0.0)
    return Run(
        "callmon",
        accounts,
        mode,
        Lags.between(series(before, POLL_LAG), series(after, POLL_LAG)),
        Lags.between(series(before, LOOP_LAG), series(after, LOOP_LAG)),
        polls / (t1 - t0),
        (cpu_after - cpu_before) / (t1 - t0),
        rss,
        ready_seconds,
    )


def until_ready(port: int, process: subprocess.Popen[bytes]) -> float:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"callmon exited with {process.returncode}")
        url = f"http://127.0.0.1:{port}/readyz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
            if r.status == 200:
                return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError("callmon was not ready within 300 s")


def measure_peer(accounts: int, mode: str = "quiet") -> Run:
    fleet, port = start_fleet(accounts)
    with tempfile.TemporaryDirectory() as tmp, core_shared(mode):
        peer = subprocess.Popen(
            [
                *(PYTHON, str(HERE / "naive_poller.py"), "--accounts", str(accounts)),
                *("--base", f"http://127.0.0.1:{port}", "--db", str(Path(tmp, "naive.db"))),
                *("--interval", str(INTERVAL), "--warmup", str(WARMUP), "--window", str(WINDOW)),
            ],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: pinned(0),
        )
        try:
            assert peer.stdout is not None
            peer.stdout.readline()  # ready
            texts, cpu, at = [], [], []
            for _ in range(2):  # the window's start and end
                texts.append(json.loads(peer.stdout.readline().split(" ", 1)[1]))
                cpu.append(cpu_seconds(peer.pid))
                at.append(time.monotonic())
            rss = rss_mib(peer.pid)
            polls = int(peer.stdout.readline().split()[1])
            peer.wait(60)
        finally:
            if peer.poll() is None:
                peer.kill()
            fleet.kill()
            fleet.wait()
    before, after = texts
    return Run(
        "naive",
        accounts,
        mode,
        Lags.between(
            series(before, "peer_poll_lag_seconds"), series(after, "peer_poll_lag_seconds")
        ),
        Lags.between(
            series(before, "peer_event_loop_lag_seconds"),
            series(after, "peer_event_loop_lag_seconds"),
        ),
        polls / WINDOW,
        (cpu[1] - cpu[0]) / (at[1] - at[0]),
        rss,
    )


def run(sizes: list[int], modes: tuple[str, ...] = MODES) -> list[tuple[Run, Run]]:
    print(f"P5: VMS accounts polled every {INTERVAL:g} s on one core (window {WINDOW:g} s)")
    found = []
    for mode in modes:
        for accounts in sizes:
            mine = measure_callmon(accounts, mode)
            print(mine.line(), flush=True)
            peer = measure_peer(accounts, mode)
            print(peer.line(), flush=True)
            found.append((mine, peer))
    return found


def table(runs: list[tuple[Run, Run]]) -> None:
    """The P5 table of the README: both modes, three sizes, callmon beside the peer."""
    print()
    print(
        "| core | accounts | who | poll lag p50 | p99 | p99.9 | max ≤ | loop lag p99 | p99.9 "
        "| max ≤ | CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for pair in runs:
        for r in pair:
            print(
                f"| {r.mode} | {r.accounts:,} | {r.who} | {ms(r.poll.p50)} | {ms(r.poll.p99)} "
                f"| {ms(r.poll.p999)} | {ms(r.poll.most)} | {ms(r.loop.p99)} "
                f"| {ms(r.loop.p999)} | {ms(r.loop.most)} | {r.cpu:.2f} |"
            )


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = tuple(m for m in MODES if f"--{m}" in args) or MODES
    table(run([int(a) for a in args if not a.startswith("--")] or [1000, 5000, 10000], chosen))
