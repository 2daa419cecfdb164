"""PostgreSQL for the tests: a real server, never a mock.

`CALLMON_TEST_POSTGRES_URL` names a server to use when set; otherwise each test session starts
a throwaway cluster with the machine's `initdb` and `pg_ctl` in a temporary folder (as the
`postgres` user when the tests run as root: PostgreSQL refuses to run as root). Each test gets a
schema of its own in it (`search_path` in the URL), dropped afterwards. Tests that stop or
restart the server always start a cluster of their own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.conftest import free_port

ENV = "CALLMON_TEST_POSTGRES_URL"


def binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(folders[0]).parent if folders else None


def unavailable(reason: str) -> None:
    """Skip, except in CI, where every PostgreSQL test must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs PostgreSQL: see .ci/run)")
    pytest.skip(reason)


class Cluster:
    """A throwaway PostgreSQL cluster on a free local port; `stop`, `start` and `restart` act
    on the real server process."""

    def __init__(self) -> None:
        bindir = binaries()
        if bindir is None:
            unavailable(f"PostgreSQL is not installed (no initdb) and ${ENV} is not set")
        assert bindir is not None
        self.bin = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="callmon-pg-"))
        self.data = self.dir / "data"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """The URL of a server for this session: the configured one, or a throwaway cluster."""
    configured = os.environ.get(ENV)
    if configured:
        yield configured
        return
    cluster = Cluster()
    try:
        yield cluster.url
    finally:
        cluster.destroy()


def with_schema(url: str, schema: str) -> str:
    """`url` with every connection's `search_path` set to `schema`."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def schema_of_its_own(url: str) -> Iterator[str]:
    """A fresh, empty schema on the server at `url`, dropped afterwards; yields its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield with_schema(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")
