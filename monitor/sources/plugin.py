"""What a provider module declares, so that the rest of callmon needs no line of its own for it:
its type name, its settings, its client, the canonical states it reports, whether it reports
door status, how it takes pushes. `monitor.sources.PLUGINS` lists them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.model import CallState
from monitor.sources.settings import ProviderSettings
from monitor.sources.webhook import WebhookSpec

ClientFactory = Callable[..., Any]
"""`(settings, aiohttp session, request observer) → Provider`."""


@dataclass(frozen=True)
class Plugin:
    """One provider type."""

    kind: str
    """Its `type` in the config: `vms-intercom`, `bird`, …"""
    settings: type[ProviderSettings]
    client: ClientFactory
    states: frozenset[CallState]
    """The canonical states its API can report (PROVIDERS.md), for `check`'s warnings."""
    doors: bool = False
    """Whether it reports door (intercom) status: `kind: intercom` rules need it."""
    webhook: WebhookSpec | None = None
    """How it takes pushes, when its API can send them."""
    final_only: bool = False
    """Whether its records exist only once a call is over (each call's event comes from
    nothing): `check` warns of a rule that needs a step from another state."""
    starter: str = ""
    """Its entry in the config `callmon init --provider KIND` writes (YAML, a list item)."""
    starter_rule: str | None = None
    """The rule file `callmon init` writes with it; None: a missed-call rule for its type."""
