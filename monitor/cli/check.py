"""`callmon check`: the config and every rule file, with warnings for rules that can never
match the providers configured."""

from __future__ import annotations

import argparse
import sys

from monitor.cli.common import EXIT_OK, Subparsers, load, with_config


def add_parsers(sub: Subparsers) -> None:
    check = sub.add_parser("check", help="validate the config and every rule file")
    with_config(check)
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.rules.checks import never_matching
    from monitor.runtime.build import load_config_rules, provider_traits

    config = load(args.config)
    rules = load_config_rules(config)
    providers = {p.name: p.type for p in config.providers}
    warnings = list(never_matching(rules, providers, provider_traits()))
    for never in warnings:
        rule = never.rule
        print(
            f"{rule.source}:{rule.line}:{rule.col}: warning: rule {rule.name!r} can never "
            f"match: {never.reason}",
            file=sys.stderr,
        )
    print(
        f"ok: {len(config.providers)} providers, {len(config.notifiers)} notifiers, "
        f"{len(rules)} rules" + (f", {len(warnings)} warnings" if warnings else "")
    )
    return EXIT_OK
