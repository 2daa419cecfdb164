"""The config file's settings (SPEC "Config file"), validated and frozen.

`monitor.config.file` reads a file into these; the units people write (`5s`, `32MiB`, `30/m`) are
in `monitor.text.units`, and each provider's own settings in its module (`monitor.sources`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator

from monitor.sources import PLUGINS, on_register
from monitor.sources.settings import ProviderSettings, Strict
from monitor.text.redaction import forms, url_forms
from monitor.text.units import Duration, Rate, check_zone

DEFAULT_STORE = "sqlite:///callmon-state.db"
DEFAULT_LISTEN = "0.0.0.0:9464"


def _provider_union() -> Any:
    """Every registered provider's settings, told apart by `type` (a single type needs no
    union)."""
    kinds = tuple(p.settings for p in PLUGINS.values())
    if len(kinds) == 1:
        return kinds[0]
    return Annotated[Union[kinds], Field(discriminator="type")]  # noqa: UP007


if TYPE_CHECKING:
    ProviderConfig = ProviderSettings
else:
    ProviderConfig = _provider_union()


def secret_keys() -> tuple[str, ...]:
    """Every provider (or `webhook:`) key that holds a secret (each may be given as `KEY_file`),
    of the provider types registered now."""
    return tuple(
        sorted(
            {k for p in PLUGINS.values() for k in p.settings.SECRETS}
            | {k for p in PLUGINS.values() if p.webhook for k in p.webhook.settings.SECRETS}
        )
    )


class NotifierConfig(Strict):
    """A named notification target: one or more apprise URLs."""

    urls: tuple[SecretStr, ...] = Field(min_length=1)
    timeout: Duration = 10.0
    max_age: Duration = 86400.0
    """Undelivered this long, a message is dead-lettered (kept, counted, never sent)."""
    retry_max: Duration = 30.0
    """Retries back off from 1 s, doubling, up to this."""
    rate_limit: Rate | None = None
    """At most this many messages per second to each URL."""


class Schedule(Strict):
    """Weekdays and a daily time window in a timezone."""

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = (
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    )
    from_: str = Field(alias="from", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    to: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)


class Config(Strict):
    """The whole validated config."""

    store: str = DEFAULT_STORE
    listen: str = Field(default=DEFAULT_LISTEN, pattern=r"^(\[[0-9a-fA-F:]+\]|[^\s:]*):\d{1,5}$")
    timezone: str = "UTC"
    rules: tuple[str, ...] = ("./rules",)
    providers: tuple[ProviderConfig, ...] = ()
    notifiers: Mapping[str, NotifierConfig] = Field(default_factory=dict)
    schedules: Mapping[str, Schedule] = Field(default_factory=dict)
    shutdown_grace: Duration = 10.0
    """On SIGTERM, how long due notifications get to go out before callmon exits."""
    unhealthy_exit_after: Duration = 60.0
    """A store failing (or a loop hung) this long makes callmon exit with status 3, so that the
    orchestrator restarts it."""
    api_token: SecretStr | None = None
    """Lets `/api/v1/…` change silences and retry the outbox (`Authorization: Bearer`); without
    it the API is read-only."""
    decisions_retention: Duration = 7 * 86400.0
    """How long the decision record (`callmon explain`) keeps what callmon saw and decided."""
    lease_ttl: Duration = Field(default=15.0, ge=1.0, le=3600.0)
    """With a PostgreSQL store: how long a replica's leadership lasts without renewal, so how
    soon a standby takes over from a leader that died."""
    provider_series: int = Field(default=100, ge=0, le=1_000_000)
    """Providers (in config order) with metric series of their own besides `provider_up` and
    the last success: the rest are summed under `provider="other"`."""
    external_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    """Where people reach this callmon's page: every notification ends with a link to the call's
    story under it, and `callmon probe` prints webhook URLs under it."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("external_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value is not None else None

    @field_validator("api_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("at least 16 characters (it guards changes through the API)")
        return value

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not re.match(r"^(sqlite:///.+|sqlite://|postgres(ql)?://\S*)$", value):
            raise ValueError(
                "store must be a SQLite URL such as sqlite:///callmon-state.db or a PostgreSQL "
                "URL such as postgresql://callmon@db/callmon"
            )
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The config's timezone."""
        return ZoneInfo(self.timezone)

    def rule_paths(self) -> list[Path]:
        """Rule files and folders (relative ones were resolved against the config's folder)."""
        return [Path(p) for p in self.rules]

    def secrets(self) -> set[str]:
        """Every secret in the config, in every shape it may leak in: provider credentials
        (with their Basic encodings) and notifier URLs (with the tokens inside them)."""
        found = {s for p in self.providers for s in p.secrets()}
        if self.api_token is not None:
            found.update(forms(self.api_token.get_secret_value()))
        password = urlsplit(self.store).password
        if password:
            found.update((password, quote(password), unquote(password)))
        for notifier in self.notifiers.values():
            for url in notifier.urls:
                found.update(url_forms(url.get_secret_value()))
        return {s for s in found if len(s) >= 4}

    def listen_address(self) -> tuple[str, int]:
        """`listen` as (host, port)."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


def _plugins_changed() -> None:
    """A provider type was registered: the config's provider union takes it in."""
    global ProviderConfig
    ProviderConfig = _provider_union()
    Config.model_rebuild(force=True)


on_register(_plugins_changed)
