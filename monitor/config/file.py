"""Reading a config file: YAML with positions → `${VAR}` interpolation, `*_file` secrets and
relative paths → pydantic validation (`monitor.config`). Every error is a `SourceError` that names
`file:line:col` and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from monitor.config import Config, secret_keys
from monitor.text import yamldoc
from monitor.text.yamldoc import Document, Loc, SourceError, SourceErrors, validation_errors

MAX_BYTES = 16 * 1024 * 1024
"""The largest config file read: a fleet of 10,000 accounts is about 1.5 MiB."""
MAX_VALUES = 2_000_000
"""The most values a config may hold (a provider is about 15): a bound, as for rule files, on
what aliases expand to."""
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


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
    """Replace `token_file: PATH` (and the like) in each provider, in its `webhook:` and at the
    top (`api_token_file`, `store_file`), by the file's contents; a notifier's `urls_file` by
    its lines."""
    errors: list[SourceError] = []
    if isinstance(doc.data, dict):  # the API token, and a store URL that holds a password
        errors += _read_secrets(doc, base_dir, doc.data, (), keys=("api_token", "store"))
    notifiers = doc.data.get("notifiers") if isinstance(doc.data, dict) else None
    for name, notifier in notifiers.items() if isinstance(notifiers, dict) else ():
        if isinstance(notifier, dict) and "urls_file" in notifier:
            errors += _read_urls(doc, base_dir, notifier, ("notifiers", name))
    for i, provider in enumerate(_providers(doc.data)):
        if not isinstance(provider, dict):
            continue
        errors += _read_secrets(doc, base_dir, provider, ("providers", i))
        webhook = provider.get("webhook")
        if isinstance(webhook, dict):
            errors += _read_secrets(doc, base_dir, webhook, ("providers", i, "webhook"))
    return errors


def _read_secrets(
    doc: Document,
    base_dir: Path,
    mapping: dict[str, Any],
    at: tuple[str | int, ...],
    keys: tuple[str, ...] | None = None,
) -> list[SourceError]:
    errors: list[SourceError] = []
    for key in secret_keys() if keys is None else keys:
        file_key = f"{key}_file"
        if file_key not in mapping:
            continue
        loc = (*at, file_key)
        if key in mapping:
            errors.append(doc.error(loc, f"give either {key} or {file_key}, not both", key=True))
            continue
        path = Path(base_dir, str(mapping[file_key]))
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            errors.append(doc.error(loc, f"cannot read {file_key} {str(path)!r}: {exc.strerror}"))
            continue
        _replace_key(mapping, file_key, key, secret)
    return errors


def _read_urls(
    doc: Document, base_dir: Path, notifier: dict[str, Any], at: tuple[str | int, ...]
) -> list[SourceError]:
    """`urls_file: PATH`: one apprise URL per line (blank lines and `#` comments skipped)."""
    loc = (*at, "urls_file")
    if "urls" in notifier:
        return [doc.error(loc, "give either urls or urls_file, not both", key=True)]
    path = Path(base_dir, str(notifier["urls_file"]))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        return [doc.error(loc, f"cannot read urls_file {str(path)!r}: {exc.strerror}")]
    urls = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not urls:
        return [doc.error(loc, f"urls_file {str(path)!r} holds no URL (one per line)")]
    _replace_key(notifier, "urls_file", "urls", urls)
    return []


def _replace_key(mapping: Any, old: str, new: str, value: Any) -> None:
    """Rename `old` to `new` with a new value, keeping the key's recorded position."""
    if isinstance(mapping, CommentedMap):
        pos = mapping.lc.data.get(old)
        mapping[new] = value
        if pos is not None:
            mapping.lc.data[new] = pos
    else:
        mapping[new] = value
    del mapping[old]


def document(path: str | Path) -> Document:
    """A config file read and parsed, within the config's bounds (`MAX_BYTES`, `MAX_VALUES`)."""
    return yamldoc.load(path, MAX_BYTES, MAX_VALUES)


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file; raise `SourceErrors` listing every problem."""
    return from_document(document(path), Path(path).parent, environ)


STATE_DIR = "CALLMON_STATE_DIR"
"""The environment variable naming the folder of a relative SQLite store (set by the container
image to its state volume, so that a config mounted read-only needs no absolute store path)."""


def store_dir(base_dir: Path, environ: Mapping[str, str]) -> Path:
    """Where a relative SQLite store lives: `$CALLMON_STATE_DIR` when set, else the config's
    folder."""
    state_dir = environ.get(STATE_DIR, "")
    return Path(state_dir) if state_dir else base_dir


def resolve_paths(doc: Document, base_dir: Path, environ: Mapping[str, str]) -> None:
    """Make every relative path in the config relative to its folder, never to the current
    directory: each provider's `verify_tls` CA bundle, and the SQLite store (relative to
    `$CALLMON_STATE_DIR` instead where that is set); secret files and rule paths are resolved
    where they are read."""
    data = doc.data
    store = data.get("store")
    if isinstance(store, str) and store.startswith("sqlite:///") and store != "sqlite:///":
        path = store[len("sqlite:///") :]
        if not path.startswith("/"):
            data["store"] = f"sqlite:///{(store_dir(base_dir, environ) / path).absolute()}"
    for provider in _providers(data):
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
    environ = os.environ if environ is None else environ
    errors = interpolate(doc, environ)
    errors += read_secret_files(doc, base_dir)
    resolve_paths(doc, base_dir, environ)
    names_seen: dict[str, int] = {}
    for i, p in enumerate(_providers(doc.data)):
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
        default = (store_dir(base_dir, environ) / store[len("sqlite:///") :]).absolute()
        store = f"sqlite:///{default}"  # the default, likewise
    return config.model_copy(update={"rules": rules, "store": store})


def _providers(data: Any) -> list[Any]:
    """The `providers` list of a parsed config, or nothing when it is not a list (validation
    then says what is wrong with it, at its position)."""
    providers = data.get("providers") if isinstance(data, dict) else None
    return providers if isinstance(providers, list) else []
