"""The provider registry: every registered provider type has what the rest of callmon needs, so
that adding a provider is one new module and one line in `monitor.sources.PLUGINS`."""

from __future__ import annotations

import json
from typing import Any, get_args

import aiohttp
import pytest
from pydantic import SecretStr, TypeAdapter

from monitor.cli.rules import print_schema
from monitor.config import Config, ProviderConfig
from monitor.model import CallState
from monitor.runtime.build import provider_context, provider_traits
from monitor.simulator.server import Simulator
from monitor.sources import PLUGINS, build

KINDS = sorted(PLUGINS)


def test_the_four_documented_providers_are_registered() -> None:
    assert KINDS == ["bandwidth", "bird", "cinnox", "vms-intercom"]


def test_the_simulator_serves_every_registered_provider() -> None:
    sim = Simulator(seed=1)
    assert sorted(line.name for line in sim.lines) == KINDS
    assert sorted(p["type"] for p in sim.provider_configs()) == KINDS


@pytest.mark.parametrize("kind", KINDS)
async def test_a_registered_provider_is_complete(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = PLUGINS[kind]
    # Its settings: a `type` literal that names it, secrets that are secret.
    assert get_args(plugin.settings.model_fields["type"].annotation) == (kind,)
    for key in plugin.settings.SECRETS:
        assert plugin.settings.model_fields[key].annotation in (SecretStr, SecretStr | None)
    # The config accepts it (and only through its own settings), with the simulator's entry.
    entry = next(p for p in Simulator(seed=1).provider_configs() if p["type"] == kind)
    settings: Any = TypeAdapter(ProviderConfig).validate_python(entry)
    assert type(settings) is plugin.settings
    config = Config.model_validate({"providers": [entry]})
    assert config.providers[0].type == kind
    assert set(settings.secrets()) <= config.secrets() | {""}
    # Its client builds from those settings and says what it is.
    async with aiohttp.ClientSession() as session:
        client = build(settings, session)
    assert (client.type, client.name) == (kind, entry["name"])
    # The canonical states it reports, for `check`; rules may name its type.
    assert plugin.states
    assert plugin.states <= set(CallState)
    assert provider_traits()[kind].states == {s.value for s in plugin.states}
    assert provider_context(notifiers=None, providers=None).provider_types is not None
    assert kind in (provider_context(notifiers=None, providers=None).provider_types or ())
    # The config's JSON Schema lists it, for editors.
    assert print_schema("config") == 0
    schema = json.loads(capsys.readouterr().out)
    assert kind in json.dumps(schema["$defs"])
