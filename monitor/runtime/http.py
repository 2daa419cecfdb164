"""The HTTP surface of a daemon, put together: the probes and metrics, the JSON API and the
status page (sharing one budget of wrong tokens per address, and the notifiers' test messages),
and `POST /hooks/NAME` for the providers with a `webhook:` (on every replica)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor import sources
from monitor.config import Config
from monitor.delivery.trial import Tried, send_trial, trial_message
from monitor.serve.api import Api
from monitor.serve.auth import Guesses
from monitor.serve.hooks import Hooks
from monitor.serve.page import StatusPage
from monitor.serve.trials import Trial, Trials
from monitor.serve.web import PushHandler, Readiness, build_app
from monitor.store import Store
from monitor.telemetry import Telemetry


def http_app(
    config: Config,
    registry: CollectorRegistry,
    readiness: Readiness,
    telemetry: Telemetry,
    *,
    store: Callable[[], Store | None],
    rules: Callable[[], Collection[str]],
    overview: Callable[[], Mapping[str, Any]],
    wake_intake: Callable[[], None],
) -> web.Application:
    """The application `listen` serves."""
    token = config.api_token.get_secret_value() if config.api_token else None
    guesses = Guesses()
    providers = [p.name for p in config.providers]
    trials = Trials({name: _trial(config, name) for name in config.notifiers})
    api = Api(
        store, token, rules, status=overview, guesses=guesses, providers=providers, trials=trials
    )
    page = StatusPage(
        store,
        token,
        rules,
        overview,
        registry,
        config.zone,
        guesses=guesses,
        providers=providers,
        trials=trials,
    )
    hooks = _hooks(config, store, telemetry, wake_intake)
    return build_app(registry, readiness, hooks, [*api.routes(), *page.routes()])


def _trial(config: Config, name: str) -> Trial:
    """The test message of notifier `name`, through each of its URLs."""
    notifier = config.notifiers[name]

    async def run() -> list[Tried]:
        title, body = trial_message(name)
        urls = [url.get_secret_value() for url in notifier.urls]
        return await send_trial(
            urls, title, body, per_url=notifier.timeout, external_url=config.external_url
        )

    return run


def _hooks(
    config: Config,
    store: Callable[[], Store | None],
    telemetry: Telemetry,
    wake_intake: Callable[[], None],
) -> PushHandler | None:
    takes = {}
    for settings in config.providers:
        spec = sources.PLUGINS[settings.type].webhook
        if spec is not None and getattr(settings, "webhook", None) is not None:
            takes[settings.name] = (settings, spec)
    if not takes:
        return None
    return Hooks(takes, store, telemetry, wake_intake).handle
