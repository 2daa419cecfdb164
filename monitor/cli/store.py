"""`callmon store copy SRC_URL DST_URL`: move a whole store to another backend (SQLite to
PostgreSQL when one machine is outgrown, and back)."""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import unquote, urlsplit

from monitor.cli.common import EXIT_OK, Failure, Subparsers
from monitor.telemetry import logs


def add_parsers(sub: Subparsers) -> None:
    store = sub.add_parser("store", help="the store itself")
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    copy = store_sub.add_parser(
        "copy",
        help="copy calls, cursors, rule state, silences and the outbox to a new, empty store",
    )
    copy.add_argument("source", metavar="SRC_URL", help="e.g. sqlite:///callmon-state.db")
    copy.add_argument("destination", metavar="DST_URL", help="e.g. postgresql://callmon@db/callmon")
    copy.set_defaults(func=cmd_copy)


def cmd_copy(args: argparse.Namespace) -> int:
    from monitor.store import open_store
    from monitor.store.base import display

    for url in (args.source, args.destination):
        password = urlsplit(url).password
        if password:
            logs.redactor.update({password, unquote(password)})
    if args.source == args.destination:
        raise Failure("store copy: the source and the destination are the same store")

    async def copy() -> int:
        source = await open_store(args.source, create=False)
        try:
            destination = await open_store(args.destination)
            try:
                return await destination.copy_from(source)
            finally:
                await destination.close()
        finally:
            await source.close()

    rows = asyncio.run(copy())
    print(f"copied {rows} rows from {display(args.source)} to {display(args.destination)}")
    return EXIT_OK
