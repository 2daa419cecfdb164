"""Call-history API clients, one module each, chosen by the config's `type`."""

from __future__ import annotations

import aiohttp

from monitor.config import ProviderBase, VmsIntercomProvider
from monitor.providers.base import Provider, RequestObserver
from monitor.providers.vms_intercom import VmsIntercom


def build(
    settings: ProviderBase, session: aiohttp.ClientSession, observe: RequestObserver | None = None
) -> Provider:
    """The client for one configured provider."""
    if isinstance(settings, VmsIntercomProvider):
        return VmsIntercom(settings, session, observe)
    raise ValueError(f"provider {settings.name}: unsupported type")
