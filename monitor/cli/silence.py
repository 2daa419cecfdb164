"""`callmon silence add|list|remove`: silences, kept in the store; a running daemon honours a
new one within a second."""

from __future__ import annotations

import argparse
import time

from monitor.cli.common import EXIT_OK, Failure, Subparsers, load, using_store, warn, with_config
from monitor.text.yamldoc import SourceErrors


def add_parsers(sub: Subparsers) -> None:
    silence = sub.add_parser("silence", help="add, list or remove silences")
    silence_sub = silence.add_subparsers(dest="silence_command", required=True, metavar="COMMAND")
    add = silence_sub.add_parser("add", help="silence a rule's alerts for a while")
    add.add_argument("--rule", required=True, help="the rule to silence")
    add.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="only alerts whose event has this field value (repeatable)",
    )
    add.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", help="how long: 30m, 2h, 1d"
    )
    add.add_argument("--comment", required=True, help="why (shown in silence list)")
    with_config(add)
    add.set_defaults(func=cmd_add)
    listing = silence_sub.add_parser("list", help="silences in force")
    with_config(listing)
    listing.set_defaults(func=cmd_list)
    remove = silence_sub.add_parser("remove", help="end a silence now")
    remove.add_argument("id", type=int)
    with_config(remove)
    remove.set_defaults(func=cmd_remove)


def cmd_add(args: argparse.Namespace) -> int:
    from monitor.rules.silence import parse_matcher
    from monitor.runtime.build import load_config_rules
    from monitor.text.units import parse_duration

    try:
        seconds = parse_duration(args.duration)
        matchers = [parse_matcher(m) for m in args.match]
    except ValueError as exc:
        raise Failure(f"callmon silence add: {exc}") from None
    config = load(args.config)
    try:
        known = {rule.name for rule in load_config_rules(config)}
    except SourceErrors:
        known = None  # the rule files are broken right now: the daemon keeps its old rules
        warn("callmon silence add: rule files do not load; not checking the rule name")
    if known is not None and args.rule not in known:
        raise Failure(f"callmon silence add: unknown rule {args.rule!r}")
    now = time.time()
    silence_id = using_store(
        config,
        lambda store: store.add_silence(args.rule, matchers, now, now + seconds, args.comment),
    )
    print(f"silence {silence_id} added: {args.rule} for {args.duration}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    for silence in using_store(load(args.config), lambda store: store.silences(time.time())):
        print(silence.describe())
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    if not using_store(load(args.config), lambda store: store.remove_silence(args.id)):
        raise Failure(f"callmon silence remove: no silence {args.id}")
    print(f"silence {args.id} removed")
    return EXIT_OK
