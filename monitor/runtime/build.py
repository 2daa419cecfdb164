"""The parts a config implies that the daemon and the tools both need: the rules it names, what
they are checked against, its schedules, and the one `Engine` the daemon, `rules test`, `rules
code` and replays alike evaluate them with."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import structlog

from monitor.config import Config
from monitor.rules.checks import ProviderTraits
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules
from monitor.rules.match import Rule
from monitor.rules.schedule import Schedule, from_config
from monitor.rules.state import RuleState
from monitor.rules.templates import Templates
from monitor.sources import PLUGINS
from monitor.telemetry import Telemetry
from monitor.text.yamldoc import SourceErrors

log = structlog.get_logger("monitor.runtime.daemon")


def rules_context(config: Config) -> Context:
    """What rule files are checked against for this config."""
    return provider_context(
        notifiers=list(config.notifiers),
        providers=[p.name for p in config.providers],
        templates=Templates(config.zone),
        schedules=list(config.schedules),
    )


def provider_context(**names: Any) -> Context:
    """A rules `Context` that knows every registered provider type, besides `names`."""
    return Context(provider_types=list(PLUGINS), **names)


def provider_traits() -> dict[str, ProviderTraits]:
    """What each registered provider type can report, for `check`'s warnings."""
    return {
        kind: ProviderTraits(
            frozenset(s.value for s in plugin.states), plugin.doors, plugin.final_only
        )
        for kind, plugin in PLUGINS.items()
    }


def build_schedules(config: Config) -> dict[str, Schedule]:
    """The config's named schedules, each in its own timezone or the config's."""
    return {
        name: from_config(
            name, s.days, s.from_, s.to, ZoneInfo(s.timezone) if s.timezone else config.zone
        )
        for name, s in config.schedules.items()
    }


def load_config_rules(config: Config) -> list[Rule]:
    """The rules the config names, compiled; raises `SourceErrors`."""
    return load_rules(config.rule_paths(), rules_context(config))


def build_engine(
    rules: list[Rule], config: Config | None = None, state: RuleState | None = None
) -> Engine:
    """The engine of `rules` with the config's schedules and timezone (none without a config),
    from `state` (the stored rule state) or empty."""
    if config is None:
        return Engine(rules, state=state)
    return Engine(
        rules,
        build_schedules(config),
        zone=config.zone,
        state=state,
        external_url=config.external_url,
    )


async def reload_rules(config: Config, telemetry: Telemetry) -> list[Rule] | None:
    """The config's rule files read again off the event loop, counted in
    `callmon_rule_reloads_total`; None when they were rejected (logged: the rules in force
    stay), whatever a broken file raises."""
    try:
        rules = await anyio.to_thread.run_sync(load_config_rules, config)
    except SourceErrors as exc:
        telemetry.rule_reloads.labels("failure").inc()
        for each in exc.errors:
            log.error("rule reload rejected; previous rules stay in force", error=str(each))
        return None
    except Exception as exc:
        telemetry.rule_reloads.labels("failure").inc()
        said = f"{type(exc).__name__}: {exc}"[:300]
        log.error("rule reload rejected; previous rules stay in force", error=said, exc_info=True)
        return None
    telemetry.rule_reloads.labels("success").inc()
    return rules
