"""Metrics, dashboard and alert rules, checked by Prometheus's own tools and a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from monitor.simulator.server import Simulator
from monitor.telemetry import Telemetry
from tests.conftest import ROOT, DaemonProcess, Receiver, free_port, wait_for
from tests.test_e2e import config_for, metrics, start_daemon

DASHBOARDS = ROOT / "dashboards"


def tool(name: str) -> str:
    """A Prometheus binary (Debian package `prometheus`); CI installs it, so there it must be."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (apt-get install prometheus)")
        pytest.skip(f"{name} is not installed")
    return path


def exported_names() -> set[str]:
    telemetry = Telemetry(CollectorRegistry())
    telemetry.declare(["p"], ["n"], ["r"])
    text = generate_latest(telemetry.registry).decode()
    names = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DASHBOARDS / "callmon.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_has_its_variables_and_a_datasource_on_every_panel() -> None:
    dashboard = json.loads((DASHBOARDS / "callmon.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["provider"]["includeAll"] is True
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    titles = {p["title"] for p in panels}
    assert {
        "Missed calls per provider",
        "Missed calls per intercom",
        "Answer rate",
        "Ring time",
        "Calls ringing and answered now",
        "Intercoms offline",
        "Provider up",
        "Poll duration p95",
        "Notification outcomes",
        "Queue depth",
    } <= titles


def test_the_dashboard_names_only_metrics_callmon_exports() -> None:
    exported = exported_names()
    for expr in dashboard_queries():
        for name in re.findall(r"\bcallmon_[a-z_]+", expr):
            assert name in exported, f"{name} in {expr}"


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    promtool = tool("promtool")
    rules: dict[str, Any] = {"groups": [{"name": "dashboard", "rules": []}]}
    for i, expr in enumerate(dashboard_queries()):
        concrete = expr.replace("$__rate_interval", "5m").replace("$provider", ".*")
        rules["groups"][0]["rules"].append({"record": f"dashboard:query_{i}", "expr": concrete})
    path = tmp_path / "queries.yaml"
    path.write_text(json.dumps(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_check_and_pass_their_unit_tests() -> None:
    promtool = tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", "prometheus-alerts.yaml"],
        cwd=DASHBOARDS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "prometheus-alerts.test.yaml"],
        cwd=DASHBOARDS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


async def test_live_metrics_pass_promtool_and_a_real_prometheus_counts_the_missed_calls(
    sim: Simulator,
    receiver: Receiver,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    promtool, prometheus = tool("promtool"), tool("prometheus")
    port = free_port()
    daemon = await start_daemon(
        daemon_factory, config_for(sim, receiver, port, tmp_path / "state.db"), port, sim.vms.token
    )
    await wait_for(lambda: "baseline taken" in daemon.logs(), timeout=20)
    for door in (158, 180, 158, 201, 180):
        sim.vms.miss(sim.vms.ring(door).id)
    sim.vms.doors[201].is_online = False
    await wait_for(lambda: len(receiver.received) >= 5, timeout=20)

    body = await metrics(port)
    check = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await check.communicate(body.encode())
    assert check.returncode == 0, out.decode()

    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: callmon, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}\n"
    )
    server = await asyncio.create_subprocess_exec(
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        query = 'sum(callmon_call_transitions_total{provider="front-door",to_state="missed"})'
        value = None
        async with aiohttp.ClientSession() as session:
            for _ in range(60):
                await asyncio.sleep(0.5)
                try:
                    async with session.get(
                        f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": query}
                    ) as resp:
                        data = await resp.json()
                except aiohttp.ClientError:
                    continue
                result = data.get("data", {}).get("result", [])
                if result:
                    value = float(result[0]["value"][1])
                    break
        assert value == 5.0
    finally:
        server.terminate()
        await server.wait()
    assert await daemon.terminate() == 0
