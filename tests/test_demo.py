"""`callmon demo`: the daemon against the built-in simulator, as `make demo` runs it: the VMS
polled, Bird and Bandwidth pushing, alerts printed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port, metric_value, metrics, wait_until


async def test_the_demo_polls_the_vms_takes_pushes_and_prints_alerts(
    tmp_path: Path,
) -> None:
    port = free_port()
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor",
            "demo",
            "--listen",
            f"127.0.0.1:{port}",
            "--seed",
            "3",
            stdout=sink,
            stderr=sink,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=tmp_path,
        )
    try:
        detected = 'callmon_event_detection_seconds_count{{provider="{}",via="{}"}}'

        async def seen() -> dict[str, float]:
            try:
                body = await metrics(port)
            except OSError:
                return {}
            return {
                f"{p} by {via}": metric_value(body, detected.format(p, via))
                for p, via in (("front-door", "poll"), ("support", "push"), ("sales", "push"))
            }

        def both_paths(found: dict[str, float]) -> bool:
            pushed = found.get("support by push", 0) + found.get("sales by push", 0)
            return found.get("front-door by poll", 0) > 0 and pushed > 0

        await wait_until(seen, both_paths, timeout=90)
        alert = re.compile(r"^\[(INFO|WARNING|CRITICAL)\] \S", re.MULTILINE)
        await wait_until(
            lambda: asyncio.to_thread(out.read_text),
            lambda text: alert.search(text) is not None,
            timeout=60,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
