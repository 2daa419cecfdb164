"""What every command shares: exit codes, the one-sentence failure, finding and loading the
config (and registering its secrets for redaction), and opening the daemon's store."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from monitor.config import Config
from monitor.config.file import document, from_document
from monitor.telemetry import logs
from monitor.text.yamldoc import SourceErrors

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

Subparsers = Any  # argparse's _SubParsersAction is private
T = TypeVar("T")


class Failure(Exception):
    """A one-sentence reason to exit: 1 unless said otherwise."""

    def __init__(self, message: str, *, code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.code = code


def with_config(parser: argparse.ArgumentParser) -> None:
    """The `-c/--config` option of every command that reads the config (given after the
    command; `callmon -c FILE COMMAND` works too: the root parser has it as well)."""
    parser.add_argument(
        "-c", "--config", default=argparse.SUPPRESS, help="config file (default: $CALLMON_CONFIG)"
    )


def config_path(arg: str | None) -> Path:
    """The config file from `-c`, else `$CALLMON_CONFIG`, else ./callmon.yaml."""
    chosen = arg or os.environ.get("CALLMON_CONFIG") or "callmon.yaml"
    path = Path(chosen)
    if not path.exists():
        raise Failure(f"{chosen}: config file not found (pass -c FILE or set CALLMON_CONFIG)")
    return path


def load(arg: str | None) -> Config:
    """Load and validate the config and its notifier URLs; register secrets for redaction."""
    config, check_urls = load_checking_urls_later(arg)
    check_urls()
    return config


def load_checking_urls_later(arg: str | None) -> tuple[Config, Callable[[], None]]:
    """Load and validate the config, registering its secrets for redaction; and the check of
    its notifier URLs, which raises `SourceErrors` naming each URL apprise does not understand.
    The daemon runs that check once it is ready: apprise takes a fifth of a second to find its
    plugins, which is most of a start-up."""
    path = config_path(arg)
    doc = document(path)
    config = from_document(doc, path.parent)
    logs.redactor.update(config.secrets())

    def check_urls() -> None:
        from monitor.delivery.sender import check_url

        errors = []
        for name, notifier in config.notifiers.items():
            for i, url in enumerate(notifier.urls):
                problem = check_url(url.get_secret_value())
                if problem:
                    where = ("notifiers", name, "urls", i)
                    errors.append(doc.error(where, f"notifiers.{name}.urls[{i}]: {problem}"))
        if errors:
            raise SourceErrors(errors)

    return config, check_urls


def using_store(config: Config, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work` with the daemon's existing store (never a new, empty one), then close it."""
    from monitor.store import open_store

    async def run() -> T:
        store = await open_store(config.store, create=False)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def started() -> None:
    """Start-up is over: collect garbage again, past what start-up made (see `monitor.__main__`)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def warn(message: str) -> None:
    print(message, file=sys.stderr)
