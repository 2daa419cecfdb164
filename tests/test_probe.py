"""`callmon probe` over real HTTP against the simulator serving each fault, on all four
providers: credentials that work or are refused, a closed port, TLS that cannot be trusted (and
which way), a server that never answers, an answer callmon cannot read. Nothing is written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.probe import Answer, _clock, _clock_offset, _rate_budget, probe, webhook_url
from monitor.config import Config
from monitor.simulator.faults import Fault
from monitor.simulator.server import Simulator
from tests import certs
from tests.conftest import cli, free_port

KINDS = ("vms-intercom", "bird", "cinnox", "bandwidth")
SECRET = {"vms-intercom": "token", "bird": "token", "cinnox": "token", "bandwidth": "api_secret"}
"""The credential each provider type is refused without."""


def api(sim: Simulator, kind: str) -> Any:
    return {"vms-intercom": sim.vms, "bird": sim.bird, "cinnox": sim.cinnox}.get(
        kind, sim.bandwidth
    )


def config(sim: Simulator, kind: str, **changes: Any) -> Config:
    entry = next(p for p in sim.provider_configs() if p["type"] == kind)
    entry.update({"timeout": "1s", **changes})
    return Config.model_validate({"providers": [entry]})


async def one(config: Config) -> Answer:
    answers = await probe(config)
    assert len(answers) == 1
    return answers[0]


@pytest.mark.parametrize("kind", KINDS)
async def test_working_credentials_say_what_callmon_reads(sim: Simulator, kind: str) -> None:
    sim.traffic.seed_history(5, span=1200)  # within every client's first look back
    answer = await one(config(sim, kind))
    assert answer.ok, answer.sentence
    assert "HTTP 200" in answer.sentence
    assert " calls read, newest 20" in answer.sentence  # the newest call's time, in UTC
    assert "clock within 1 s of ours" in answer.sentence


@pytest.mark.parametrize("kind", KINDS)
async def test_refused_credentials_are_named(sim: Simulator, kind: str) -> None:
    secret = "wrong-secret-7d1e9a"
    answer = await one(config(sim, kind, **{SECRET[kind]: secret}))
    assert not answer.ok
    assert answer.sentence.startswith(f"provider {answer.name}:")
    assert "check its credentials" in answer.sentence
    assert secret not in answer.sentence


@pytest.mark.parametrize("kind", KINDS)
async def test_a_closed_port_is_unreachable(sim: Simulator, kind: str) -> None:
    port = free_port()
    answer = await one(config(sim, kind, base_url=f"http://127.0.0.1:{port}"))
    assert not answer.ok
    assert f"unreachable on port {port}" in answer.sentence
    assert "refused" in answer.sentence.lower()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_that_never_answers_is_a_timeout(sim: Simulator, kind: str) -> None:
    api(sim, kind).faults.add(Fault("delay", seconds=2), times=10)
    answer = await one(config(sim, kind, timeout="500ms"))
    assert not answer.ok
    assert "no response within 0.5 s" in answer.sentence, answer.sentence


@pytest.mark.parametrize("kind", KINDS)
async def test_an_unreadable_answer_is_named(sim: Simulator, kind: str) -> None:
    api(sim, kind).faults.add(Fault("badjson"), times=10)
    answer = await one(config(sim, kind))
    assert not answer.ok
    assert "an answer callmon cannot read" in answer.sentence, answer.sentence
    assert answer.sentence.startswith(f"provider {answer.name}:")


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture
async def tls_sim(request: pytest.FixtureRequest, cert_dir: Path) -> AsyncIterator[Simulator]:
    """The simulator over HTTPS with the certificate the test names."""
    name, expired = request.param
    cert = certs.make(cert_dir / f"{name}-{expired}", name, expired=expired)
    simulator = Simulator(seed=1)
    await simulator.start(tls=cert.server())
    simulator.cert = cert  # type: ignore[attr-defined]
    yield simulator
    await simulator.stop()


@pytest.mark.parametrize("tls_sim", [("127.0.0.1", False)], indirect=True)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_self_signed_certificate_is_named_and_trusting_it_works(
    tls_sim: Simulator, kind: str
) -> None:
    assert tls_sim.base_url.startswith("https://")
    answer = await one(config(tls_sim, kind))
    assert not answer.ok
    assert "TLS: the server's certificate is self-signed" in answer.sentence, answer.sentence
    trusted = await one(config(tls_sim, kind, verify_tls=str(tls_sim.cert.cert)))  # type: ignore[attr-defined]
    assert trusted.ok, trusted.sentence


@pytest.mark.parametrize("tls_sim", [("127.0.0.1", True)], indirect=True)
@pytest.mark.parametrize("kind", KINDS)
async def test_an_expired_certificate_is_named(tls_sim: Simulator, kind: str) -> None:
    answer = await one(config(tls_sim, kind, verify_tls=str(tls_sim.cert.cert)))  # type: ignore[attr-defined]
    assert not answer.ok
    assert "TLS: the server's certificate has expired" in answer.sentence, answer.sentence


@pytest.mark.parametrize("tls_sim", [("api.example.net", False)], indirect=True)
@pytest.mark.parametrize("kind", KINDS)
async def test_a_certificate_for_another_host_is_named(tls_sim: Simulator, kind: str) -> None:
    answer = await one(config(tls_sim, kind, verify_tls=str(tls_sim.cert.cert)))  # type: ignore[attr-defined]
    assert not answer.ok
    assert "TLS: the server's certificate is for another host name" in answer.sentence


def test_webhook_urls_are_under_external_url_with_placeholders_for_secrets() -> None:
    conf = Config.model_validate(
        {
            "external_url": "https://callmon.example.net/",
            "providers": [
                {
                    "name": "contact-centre",
                    "type": "cinnox",
                    "base_url": "https://cinnox.example",
                    "app_id": "app",
                    "token": "t" * 20,
                    "webhook": {"token": "hook-secret-token-1234"},
                },
                {
                    "name": "sales",
                    "type": "bandwidth",
                    "base_url": "https://bw.example",
                    "user_id": "u-1",
                    "api_token": "a" * 20,
                    "api_secret": "s" * 20,
                    "webhook": {"username": "callmon", "password": "hook-password-5678"},
                },
            ],
        }
    )
    assert conf.external_url == "https://callmon.example.net"
    cinnox, bandwidth = conf.providers
    assert webhook_url(cinnox, conf.external_url) == (
        "https://callmon.example.net/hooks/contact-centre?token=YOUR-WEBHOOK-TOKEN"
    )
    assert webhook_url(bandwidth, conf.external_url) == (
        "https://callmon:PASSWORD@callmon.example.net/hooks/sales"
    )


def test_a_rate_limit_budget_is_read_where_the_api_reports_one() -> None:
    assert _rate_budget({"x-ratelimit-remaining": "57", "x-ratelimit-limit": "60"}) == "57/60 left"
    assert _rate_budget({"ratelimit-remaining": "3"}) == "3 left"
    assert _rate_budget({"date": "x"}) is None


async def test_the_command_writes_nothing_and_exits_by_the_outcome(
    sim: Simulator, tmp_path: Path
) -> None:
    sim.traffic.seed_history(3)
    path = tmp_path / "callmon.yaml"
    path.write_text("store: sqlite:///probe-state.db\n" + sim.config_yaml())
    code, out = await cli("probe", "-c", str(path))
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 4, out
    assert all("  ok  " in line for line in lines), out
    # One provider refused: exit 1, the secret nowhere in the output.
    secret = sim.bird.access_key
    path.write_text(path.read_text().replace(secret, "not-the-key-94af01"))
    code, out = await cli("probe", "-c", str(path), "support")
    assert code == 1
    assert out.startswith("support  FAILED  provider support:"), out
    assert "not-the-key-94af01" not in out
    left = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert left == ["callmon.yaml"]  # no store, no journal


def test_the_clock_offset_is_read_from_the_date_header() -> None:
    import email.utils
    import time

    ahead = email.utils.formatdate(time.time() + 120, usegmt=True)
    offset = _clock_offset({"date": ahead})
    assert offset is not None
    assert _clock(offset) == "clock 120 s ahead of ours"
    assert _clock(-37.2) == "clock 37 s behind ours"
    assert _clock(0.6) == "clock within 1 s of ours"
    assert _clock_offset({"date": "not a date"}) is None
