"""`callmon outbox list|retry|purge [--notifier N] [--dead]`: what waits to be delivered, and
what was given up on."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from monitor.cli.common import EXIT_OK, Subparsers, load, using_store, with_config


def add_parsers(sub: Subparsers) -> None:
    outbox = sub.add_parser("outbox", help="undelivered and dead-lettered notifications")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True, metavar="COMMAND")
    for name, help_text in (
        ("list", "show waiting (or, with --dead, dead-lettered) notifications"),
        ("retry", "send waiting ones now (or, with --dead, bring dead-lettered ones back)"),
        ("purge", "delete waiting (or, with --dead, dead-lettered) notifications"),
    ):
        command = outbox_sub.add_parser(name, help=help_text)
        command.add_argument("--notifier", help="only this notifier")
        command.add_argument("--dead", action="store_true", help="the dead-lettered ones")
        with_config(command)
        command.set_defaults(func=cmd_outbox)


def cmd_outbox(args: argparse.Namespace) -> int:
    async def act(store: Any) -> list[str]:
        if args.outbox_command == "list":
            items = await store.outbox_select(dead=args.dead, notifier=args.notifier)
            return [
                f"{i.id}\t{i.notifier}#{i.target}\t"
                f"{datetime.fromtimestamp(i.created_at, UTC):%Y-%m-%d %H:%M:%SZ}\t"
                f"{i.rule}\t{i.title}\tattempts={i.attempts}\t{i.last_error or ''}"
                for i in items
            ]
        if args.outbox_command == "retry":
            count = await store.outbox_retry(dead=args.dead, notifier=args.notifier)
            return [f"{count} notifications due now"]
        count = await store.outbox_purge(dead=args.dead, notifier=args.notifier)
        return [f"{count} notifications deleted"]

    for line in using_store(load(args.config), act):
        print(line)
    return EXIT_OK
