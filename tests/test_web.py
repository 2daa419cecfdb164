"""/metrics, /healthz, /readyz over real HTTP."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from monitor.serve.web import Readiness, build_app
from monitor.telemetry import Telemetry


async def test_endpoints() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    telemetry.declare(["door"], ["chat"], ["missed"])
    problems: list[str] = []
    readiness = Readiness(problems=lambda: problems)
    async with TestClient(TestServer(build_app(registry, readiness))) as client:
        assert (await client.get("/healthz")).status == 200
        problems.append("loop poll:door is not running: OSError: boom")
        resp = await client.get("/healthz")
        assert resp.status == 503
        assert (await resp.json())["problems"] == ["loop poll:door is not running: OSError: boom"]
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["reason"] == "store not open"
        readiness.store_open = True
        assert (await client.get("/readyz")).status == 200
        body = await (await client.get("/metrics")).text()
    assert 'callmon_provider_up{provider="door"} 0.0' in body
    assert 'callmon_notifications_total{notifier="chat",outcome="dropped"} 0.0' in body
    assert 'callmon_rule_fired_total{rule="missed"} 0.0' in body
    assert "callmon_build_info{" in body
