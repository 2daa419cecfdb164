"""P5: how many VMS accounts one callmon process polls every 5 s on one core, beside a naive
poller of the same fleet (`naive_poller.py`).

The fleet (`fleet.py`) runs on core 1; callmon, then the peer, on core 0 (`taskset`). After a
warm-up, one window measures: poll lag (how late polls start after they were due: callmon's
`callmon_poll_lag_seconds`, the peer's own), the polls made, and the CPU the process used
(`/proc/PID/stat`), and callmon's RSS. Prints one line per run; `run(sizes)` returns them for
`bench/goals.py`.

Run: `.venv/bin/python bench/scale_bench.py [ACCOUNTS ...]` (default 1000 5000 10000).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


@dataclass
class Run:
    who: str
    accounts: int
    lag_p99: float
    polls_per_second: float
    cpu: float
    """Cores used in the window (1.0 = one core busy all the time)."""
    rss_mib: float | None = None
    ready_seconds: float | None = None

    def line(self) -> str:
        extra = f", RSS {self.rss_mib:5.0f} MiB" if self.rss_mib is not None else ""
        ready = f", ready in {self.ready_seconds:4.1f} s" if self.ready_seconds else ""
        return (
            f"  {self.who:8s} {self.accounts:>6,} accounts: lag p99 {self.lag_p99 * 1000:7.1f} ms, "
            f"{self.polls_per_second:6.0f} polls/s (due {self.accounts / INTERVAL:5.0f}), "
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


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("callmon_poll_lag_seconds"):
            series, value = line.rsplit(" ", 1)
            found[series] = float(value)
    return found


def quantile(q: float, before: dict[str, float], after: dict[str, float]) -> float:
    """The q-quantile of the observations between two scrapes of a histogram (interpolated
    within its bucket, as Prometheus' `histogram_quantile`)."""
    buckets = []
    for series, value in after.items():
        if "_bucket{" in series:
            bound = series.split('le="')[1].split('"')[0]
            buckets.append((float(bound), value - before.get(series, 0.0)))
    buckets.sort()
    total = buckets[-1][1]
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


def measure_callmon(accounts: int) -> Run:
    fleet, port = start_fleet(accounts)
    listen = free_port()
    with tempfile.TemporaryDirectory() as tmp:
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
    polls = after["callmon_poll_lag_seconds_count"] - before.get(
        "callmon_poll_lag_seconds_count", 0.0
    )
    return Run(
        "callmon",
        accounts,
        quantile(0.99, before, after),
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


def measure_peer(accounts: int) -> Run:
    fleet, port = start_fleet(accounts)
    with tempfile.TemporaryDirectory() as tmp:
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
            time.sleep(WARMUP)
            cpu_before, t0 = cpu_seconds(peer.pid), time.monotonic()
            time.sleep(WINDOW)
            cpu_after, t1 = cpu_seconds(peer.pid), time.monotonic()
            rss = rss_mib(peer.pid)
            words = peer.stdout.readline().split()
            peer.wait(60)
        finally:
            if peer.poll() is None:
                peer.kill()
            fleet.kill()
            fleet.wait()
    return Run(
        "naive",
        accounts,
        float(words[1]),
        int(words[3]) / WINDOW,
        (cpu_after - cpu_before) / (t1 - t0),
        rss,
    )


def run(sizes: list[int]) -> list[tuple[Run, Run]]:
    print(f"P5: VMS accounts polled every {INTERVAL:g} s on one core (window {WINDOW:g} s)")
    found = []
    for accounts in sizes:
        mine = measure_callmon(accounts)
        print(mine.line(), flush=True)
        peer = measure_peer(accounts)
        print(peer.line(), flush=True)
        found.append((mine, peer))
    return found


if __name__ == "__main__":
    run([int(a) for a in sys.argv[1:]] or [1000, 5000, 10000])
