"""The config file (SPEC "Config file") → frozen, validated settings.

Loading goes: YAML with positions → `${VAR}` interpolation and `*_file` secrets → pydantic
validation. Every error is a `SourceError` that names `file:line:col` and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from ruamel.yaml.comments import CommentedMap

from monitor import yamldoc
from monitor.redaction import basic_forms, forms, url_forms
from monitor.yamldoc import Document, Loc, SourceError, SourceErrors, validation_errors

DEFAULT_STORE = "sqlite:///callmon-state.db"
DEFAULT_LISTEN = "0.0.0.0:9464"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_SECRET_KEYS = ("token", "api_token", "api_secret", "password")


def parse_duration(value: Any) -> float:
    """Seconds from `500ms`, `5s`, `10m`, `1h`, `1d` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 5s, 10m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"invalid duration {value!r}: write it as 500ms, 5s, 10m or 1h")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration: 500ms, 5s, 10m, 1h, 1d, or seconds",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderBase(_Model):
    """Settings every provider shares."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    base_url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    poll_interval: Duration = 5.0
    timeout: Duration = 10.0
    max_backoff: Duration = 60.0
    verify_tls: bool | str = True
    retention: Duration = 7 * 86400.0
    max_requests_per_second: float | None = Field(default=None, gt=0)
    max_pages: int | None = Field(default=None, ge=1, le=10000)
    """List pages one poll reads at most; a larger backlog is read by the next polls."""
    max_response_size: Size = 32 * 1024 * 1024
    """A larger response fails its poll (a page is about 1 MiB at the most)."""

    DEFAULT_RPS: ClassVar[float] = 10.0
    DEFAULT_PAGES: ClassVar[int] = 40

    @field_validator("verify_tls")
    @classmethod
    def _ca_bundle_exists(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not Path(value).is_file():
            raise ValueError(f"CA bundle {value!r} is not a readable file")
        return value

    @property
    def page_budget(self) -> int:
        """List pages one poll may read."""
        return self.max_pages or self.DEFAULT_PAGES

    @property
    def request_budget(self) -> float:
        """Requests per second this provider may make (its API's documented limit by default)."""
        return self.max_requests_per_second or self.DEFAULT_RPS

    def secrets(self) -> Iterator[str]:
        """Every secret value this provider holds, in every shape it may leak in."""
        for name in _SECRET_KEYS:
            value = getattr(self, name, None)
            if isinstance(value, SecretStr) and value.get_secret_value():
                yield from forms(value.get_secret_value())


class VmsIntercomProvider(ProviderBase):
    """The AIPIX VMS intercom API."""

    type: Literal["vms-intercom"]
    token: SecretStr | None = None
    login: str | None = None
    """With `password`: callmon asks `/api/v1/token` for a token, and again when it expires."""
    password: SecretStr | None = None
    session_id: str | None = None
    client: Literal["ios-cctv", "android-cctv", "thick-legal", "web"] = "web"
    device_id: str = "callmon"
    intercoms: tuple[int, ...] | None = None
    max_doors: int = Field(default=200, ge=1, le=100_000)
    """Without `intercoms`: the most doors (seen in calls) whose status is watched."""
    status_interval: Duration | None = None
    per_page: int = Field(default=25, ge=1, le=100)
    naive_timezone: str = "UTC"

    @field_validator("naive_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    def secrets(self) -> Iterator[str]:
        yield from super().secrets()
        if self.login and self.password:
            yield from basic_forms(self.login, self.password.get_secret_value())

    @model_validator(mode="after")
    def _credentials(self) -> VmsIntercomProvider:
        if self.token is None and (self.login is None or self.password is None):
            raise ValueError("give a token, or a login and a password")
        return self


class BirdProvider(ProviderBase):
    """Bird channel calls."""

    type: Literal["bird"]
    token: SecretStr
    workspace_id: str = Field(min_length=1)
    channel_id: str = Field(min_length=1)
    auth_scheme: Literal["AccessKey", "Bearer"] = "AccessKey"
    limit: int = Field(default=100, ge=1, le=1000)
    overlap: Duration = 300.0
    lookback: Duration = 3600.0

    DEFAULT_PAGES: ClassVar[int] = 200


class CinnoxProvider(ProviderBase):
    """The CINNOX call-log."""

    type: Literal["cinnox"]
    token: SecretStr
    app_id: str = Field(min_length=1)
    limit: int = Field(default=500, ge=1, le=500)
    lookback: Duration = 1800.0

    DEFAULT_RPS: ClassVar[float] = 5.0
    DEFAULT_PAGES: ClassVar[int] = 200


class BandwidthProvider(ProviderBase):
    """Bandwidth (Catapult v1) calls."""

    type: Literal["bandwidth"]
    user_id: str = Field(min_length=1)
    api_token: SecretStr
    api_secret: SecretStr
    size: int = Field(default=100, ge=1, le=1000)
    overlap: Duration = 300.0
    lookback: Duration = 3600.0
    hangup_causes: bool = True

    DEFAULT_RPS: ClassVar[float] = 1.0
    DEFAULT_PAGES: ClassVar[int] = 100

    def secrets(self) -> Iterator[str]:
        yield from super().secrets()
        yield from basic_forms(
            self.api_token.get_secret_value(), self.api_secret.get_secret_value()
        )


ProviderConfig = Annotated[
    VmsIntercomProvider | BirdProvider | CinnoxProvider | BandwidthProvider,
    Field(discriminator="type"),
]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}


def parse_size(value: Any) -> int:
    """Bytes from `64KiB`, `32MiB`, `1GB` or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64KiB or 32MiB")
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"invalid size {value!r}: write it as 64KiB, 32MiB or 1GB")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB)?$"},
                {"type": "integer", "exclusiveMinimum": 0},
            ],
            "description": "a size in bytes, or written as 64KiB, 32MiB, 1GB",
        }
    ),
]


def parse_rate(value: Any) -> float:
    """Messages per second from `1/s`, `30/m`, `100/h` or a bare number (per second)."""
    if isinstance(value, bool):
        raise ValueError("expected a rate such as 1/s or 30/m")
    if isinstance(value, int | float):
        rate = float(value)
    else:
        match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$", str(value))
        if not match:
            raise ValueError(f"invalid rate {value!r}: write it as 1/s, 30/m or 100/h")
        rate = float(match.group(1)) / _UNITS[match.group(2)]
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {value!r}")
    return rate


Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?/(s|m|h)$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "messages per second, or written as 1/s, 30/m, 100/h",
        }
    ),
]


class NotifierConfig(_Model):
    """A named notification target: one or more apprise URLs."""

    urls: tuple[SecretStr, ...] = Field(min_length=1)
    timeout: Duration = 10.0
    max_age: Duration = 86400.0
    """Undelivered this long, a message is dead-lettered (kept, counted, never sent)."""
    retry_max: Duration = 30.0
    """Retries back off from 1 s, doubling, up to this."""
    rate_limit: Rate | None = None
    """At most this many messages per second to each URL."""


class Schedule(_Model):
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
        return None if value is None else _check_zone(value)


class Config(_Model):
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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if re.match(r"^postgres(ql)?://", value):
            raise ValueError(
                "a PostgreSQL store is not available in this release; use sqlite:///PATH"
            )
        if not re.match(r"^(sqlite:///.+|sqlite://)$", value):
            raise ValueError("store must be a SQLite URL such as sqlite:///callmon-state.db")
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
        for notifier in self.notifiers.values():
            for url in notifier.urls:
                found.update(url_forms(url.get_secret_value()))
        return {s for s in found if len(s) >= 4}

    def listen_address(self) -> tuple[str, int]:
        """`listen` as (host, port)."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return value


def interpolate(doc: Document, environ: Mapping[str, str]) -> list[SourceError]:
    """Expand `${VAR}` and `${VAR:-default}` in every string, in place; return the errors."""
    errors: list[SourceError] = []

    def expand(value: str, loc: Loc) -> str:
        def one(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in environ and environ[name] != "":
                return environ[name]
            if default is not None:
                return default
            errors.append(doc.error(loc, f"environment variable {name} is not set"))
            return ""

        return _ENV.sub(one, value)

    def walk(node: Any, loc: tuple[str | int, ...]) -> None:
        items: Any = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in list(items):
            if isinstance(v, str) and "$" in v:
                node[k] = expand(v, (*loc, k))
            elif isinstance(v, dict | list):
                walk(v, (*loc, k))

    if isinstance(doc.data, dict | list):
        walk(doc.data, ())
    return errors


def read_secret_files(doc: Document, base_dir: Path) -> list[SourceError]:
    """Replace `token_file: PATH` (and the like) in each provider by the file's contents."""
    errors: list[SourceError] = []
    providers = doc.data.get("providers") if isinstance(doc.data, dict) else None
    if not isinstance(providers, list):
        return errors
    for i, provider in enumerate(providers):
        if not isinstance(provider, dict):
            continue
        for key in _SECRET_KEYS:
            file_key = f"{key}_file"
            if file_key not in provider:
                continue
            loc = ("providers", i, file_key)
            if key in provider:
                errors.append(
                    doc.error(loc, f"give either {key} or {file_key}, not both", key=True)
                )
                continue
            path = Path(base_dir, str(provider[file_key]))
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                errors.append(
                    doc.error(loc, f"cannot read {file_key} {str(path)!r}: {exc.strerror}")
                )
                continue
            _replace_key(provider, file_key, key, secret)
    return errors


def _replace_key(mapping: Any, old: str, new: str, value: str) -> None:
    """Rename `old` to `new` with a new value, keeping the key's recorded position."""
    if isinstance(mapping, CommentedMap):
        pos = mapping.lc.data.get(old)
        mapping[new] = value
        if pos is not None:
            mapping.lc.data[new] = pos
    else:
        mapping[new] = value
    del mapping[old]


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file; raise `SourceErrors` listing every problem."""
    doc = yamldoc.load(path)
    return from_document(doc, Path(path).parent, environ)


def resolve_paths(doc: Document, base_dir: Path) -> None:
    """Make every relative path in the config relative to its folder, never to the current
    directory: the SQLite store and each provider's `verify_tls` CA bundle (secret files and
    rule paths are resolved where they are read)."""
    data = doc.data
    store = data.get("store")
    if isinstance(store, str) and store.startswith("sqlite:///") and store != "sqlite:///":
        path = store[len("sqlite:///") :]
        if not path.startswith("/"):
            data["store"] = f"sqlite:///{(base_dir / path).absolute()}"
    for provider in data.get("providers") or []:
        if isinstance(provider, dict):
            ca = provider.get("verify_tls")
            if isinstance(ca, str) and ca and not Path(ca).is_absolute():
                provider["verify_tls"] = str(base_dir / ca)


def from_document(
    doc: Document, base_dir: Path, environ: Mapping[str, str] | None = None
) -> Config:
    """Validate a parsed config document; relative paths in it are relative to `base_dir`."""
    if doc.data is None:
        doc = Document(doc.path, CommentedMap())
    if not isinstance(doc.data, dict):
        raise SourceErrors([doc.error((), "the config must be a mapping of keys to values")])
    errors = interpolate(doc, os.environ if environ is None else environ)
    errors += read_secret_files(doc, base_dir)
    resolve_paths(doc, base_dir)
    names_seen: dict[str, int] = {}
    for i, p in enumerate(doc.data.get("providers") or []):
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            if p["name"] in names_seen:
                errors.append(
                    doc.error(("providers", i, "name"), f"duplicate provider name {p['name']!r}")
                )
            names_seen[p["name"]] = i
    if errors:
        raise SourceErrors(errors)
    try:
        config = Config.model_validate(yamldoc.plain(doc.data))
    except ValidationError as exc:
        raise SourceErrors(validation_errors(doc, exc)) from None
    rules = tuple(str(base_dir / p) for p in config.rules)
    store = config.store
    if "store" not in doc.data and store.startswith("sqlite:///"):
        default = (base_dir / store[len("sqlite:///") :]).absolute()
        store = f"sqlite:///{default}"  # the default, likewise
    return config.model_copy(update={"rules": rules, "store": store})
