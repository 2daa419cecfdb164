"""A fifth provider is one module and one line (#25): `tests/toy_provider.py` registers a toy
provider from outside callmon's package, and the config's schema, `init`, `check`, polling and
the daemon take it with no other module touched."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from aiohttp import web

from tests.conftest import ROOT, Receiver, free_port, metrics, wait_for, wait_until
from tests.toy_provider import ToyApi


def toy(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "tests.toy_provider", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


async def test_a_toy_provider_registered_from_tests_is_taken_everywhere(
    tmp_path: Path, receiver: Receiver
) -> None:
    api = ToyApi("toy-token-3f81c2")
    runner = web.AppRunner(api.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    env = {"TOY_BASE_URL": base, "TOY_TOKEN": api.token, "ALERT_URL": receiver.url}
    try:
        code, schema = toy("config", "schema", cwd=tmp_path, env=env)
        assert code == 0
        assert '"toy"' in schema  # editors see its keys

        code, said = toy("init", "--provider", "toy", cwd=tmp_path, env=env)
        assert code == 0, said
        config = tmp_path / "callmon.yaml"
        assert "type: toy" in config.read_text()
        assert "provider_type: toy" in (tmp_path / "rules" / "missed-calls.yaml").read_text()
        port = free_port()
        config.write_text(
            re.sub(r"listen: \S+", f"listen: 127.0.0.1:{port}", config.read_text(), count=1)
        )

        code, said = toy("check", "-c", str(config), cwd=tmp_path, env=env)
        assert code == 0, said
        assert "ok: 1 providers" in said

        daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.toy_provider",
            "run",
            "-c",
            str(config),
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            up = 'callmon_provider_up{provider="toy-line"} 1.0'

            async def scraped() -> str:
                try:
                    return await metrics(port)
                except OSError:
                    return ""

            await wait_until(scraped, lambda body: up in body, timeout=60)  # polled: a baseline
            api.calls["t1"] = {"id": "t1", "status": "ring", "created": "2026-12-04T12:00:00Z"}
            await wait_until(scraped, lambda body: 'state="ringing"} 1.0' in body, timeout=30)
            api.calls["t1"]["status"] = "lost"
            await wait_for(lambda: bool(receiver.titles()), timeout=30)
            assert receiver.titles()[0].startswith("Missed call")
        finally:
            daemon.terminate()
            assert await asyncio.wait_for(daemon.wait(), 30) == 0
    finally:
        await runner.cleanup()
