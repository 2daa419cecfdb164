"""What the soak watches: each daemon process (RSS, open files, threads, log bytes), the store
(size, rows per table, SQLite's WAL), `/healthz` and the poll lag, sampled on a schedule."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLES = (
    "calls",
    "cursors",
    "rule_state",
    "outbox",
    "attempts",
    "silences",
    "pushes",
    "decisions",
    "lease",
)


@dataclass
class Sample:
    """One look at a daemon and its store."""

    at: float
    rss_mib: float
    fds: int
    threads: int
    log_bytes: int
    store_bytes: int
    wal_bytes: int
    rows: dict[str, int]
    healthz: int
    lag_p99: float | None
    pid: int = 0
    role: str = ""
    """`leader` or `standby` (from `/readyz`), or empty when it did not answer."""


def proc_status(pid: int) -> tuple[float, int, int]:
    """RSS (MiB), open files and threads of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return rss, fds, threads


def http_status(url: str, timeout: float = 10.0) -> int:
    """The status of a GET (0 when nothing answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, TimeoutError):
        return 0


def role(port: int, timeout: float = 10.0) -> str:
    """The replica's role from `/readyz` (empty when nothing answered with one)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=timeout) as got:
            body = json.loads(got.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
        except ValueError:
            return ""
    except (OSError, TimeoutError, ValueError):
        return ""
    return str(body.get("role", "")) if isinstance(body, dict) else ""


def lag_buckets(port: int) -> dict[float, float]:
    """`callmon_poll_lag_seconds` as cumulative counts by upper bound."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except (OSError, TimeoutError):
        return {}
    found = {}
    for le, count in re.findall(r'callmon_poll_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', text):
        found[float("inf") if le == "+Inf" else float(le)] = float(count)
    return found


def p99(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The 99th percentile bound of what was observed between two readings of a histogram."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    for bound, count in zip(bounds, counts, strict=True):
        if count >= 0.99 * counts[-1]:
            return bound
    return None


@dataclass
class SqliteStoreProbe:
    path: Path

    def size(self) -> tuple[int, int, dict[str, int]]:
        wal = Path(f"{self.path}-wal")
        store = self.path.stat().st_size if self.path.exists() else 0
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        rows: dict[str, int] = {}
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            try:
                for table in TABLES:
                    try:
                        rows[table] = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    except sqlite3.Error:
                        continue
            finally:
                db.close()
        except sqlite3.Error:
            pass
        return store + wal_bytes, wal_bytes, rows


@dataclass
class PostgresStoreProbe:
    url: str

    def size(self) -> tuple[int, int, dict[str, int]]:
        import psycopg

        rows: dict[str, int] = {}
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as db:
                size = db.execute("SELECT pg_database_size(current_database())").fetchone()
                for table in TABLES:
                    try:
                        count = db.execute(f"SELECT count(*) FROM {table}").fetchone()
                        rows[table] = int(count[0]) if count else 0
                    except psycopg.Error:
                        continue
        except psycopg.Error:
            return 0, 0, rows
        return int(size[0]) if size else 0, 0, rows


@dataclass
class Watched:
    """One daemon to sample: its process id (a function: it may be restarted), port and log."""

    name: str
    pid: Any
    port: int
    log: Path
    store: SqliteStoreProbe | PostgresStoreProbe
    samples: list[Sample] = field(default_factory=list)
    _lag: dict[float, float] = field(default_factory=dict)

    def sample(self) -> Sample | None:
        pid = self.pid()
        if pid is None:
            return None
        try:
            rss, fds, threads = proc_status(pid)
        except (OSError, AttributeError):
            return None
        size, wal, rows = self.store.size()
        lag = lag_buckets(self.port)
        taken = Sample(
            at=time.monotonic(),
            rss_mib=rss,
            fds=fds,
            threads=threads,
            log_bytes=self.log.stat().st_size if self.log.exists() else 0,
            store_bytes=size,
            wal_bytes=wal,
            rows=rows,
            healthz=http_status(f"http://127.0.0.1:{self.port}/healthz"),
            lag_p99=p99(self._lag, lag) if lag else None,
            pid=pid,
            role=role(self.port),
        )
        if lag:
            self._lag = lag
        self.samples.append(taken)
        return taken


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of (x, y) points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var
