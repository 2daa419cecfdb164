"""Call-history API clients, one module each, and the registry of provider types.

Adding a provider is one new module (its settings, its client, its state mapping, and a `PLUGIN`
that declares them) plus one line in `PLUGINS` below; the config's provider union, `check`'s
provider types and states, and the client factory all read the registry
(`tests/test_registry.py` walks it).
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from monitor.sources import bandwidth, bird, cinnox, vms_intercom
from monitor.sources.base import Provider
from monitor.sources.http import RequestObserver
from monitor.sources.plugin import Plugin
from monitor.sources.settings import ProviderSettings

PLUGINS: dict[str, Plugin] = {}
"""Every provider type callmon knows, by its `type`."""
_listeners: list[Callable[[], None]] = []


def register(plugin: Plugin) -> None:
    """Make a provider type known: the config, `check`, `init`, polling and the daemon take it
    (a module of callmon's does at import; a test or an extension may too)."""
    PLUGINS[plugin.kind] = plugin
    for listener in _listeners:
        listener()


def on_register(listener: Callable[[], None]) -> None:
    """Call `listener` whenever a provider type is registered (the config rebuilds its union)."""
    _listeners.append(listener)


for _plugin in (vms_intercom.PLUGIN, bird.PLUGIN, cinnox.PLUGIN, bandwidth.PLUGIN):
    register(_plugin)


def build(
    settings: ProviderSettings,
    session: aiohttp.ClientSession,
    observe: RequestObserver | None = None,
) -> Provider:
    """The client for one configured provider."""
    client: Provider = PLUGINS[settings.type].client(settings, session, observe)
    return client
