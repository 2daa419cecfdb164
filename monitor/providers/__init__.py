"""Call-history API clients, one module each, chosen by the config's `type`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from monitor.config import ProviderBase
from monitor.providers.bandwidth import Bandwidth
from monitor.providers.base import Provider
from monitor.providers.bird import Bird
from monitor.providers.cinnox import Cinnox
from monitor.providers.http import RequestObserver
from monitor.providers.vms_intercom import VmsIntercom

CLIENTS: dict[str, Callable[..., Any]] = {
    VmsIntercom.type: VmsIntercom,
    Bird.type: Bird,
    Cinnox.type: Cinnox,
    Bandwidth.type: Bandwidth,
}


def build(
    settings: ProviderBase, session: aiohttp.ClientSession, observe: RequestObserver | None = None
) -> Provider:
    """The client for one configured provider."""
    client: Provider = CLIENTS[settings.type](settings, session, observe)  # type: ignore[attr-defined]
    return client
