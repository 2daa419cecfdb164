"""`callmon notify test NOTIFIER [--rule RULE]`: one test message through every URL of a
notifier now, outside the outbox, each URL's outcome printed (secrets hidden)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from monitor.cli.common import EXIT_INVALID, EXIT_OK, Failure, Subparsers, load, with_config
from monitor.config import Config
from monitor.model import Severity
from monitor.telemetry import logs


def add_parsers(sub: Subparsers) -> None:
    notify = sub.add_parser("notify", help="try a notifier")
    notify_sub = notify.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    test = notify_sub.add_parser(
        "test", help="send a test message through every URL of a notifier now"
    )
    test.add_argument("notifier", metavar="NOTIFIER", help="the notifier's name in the config")
    test.add_argument(
        "--rule", metavar="RULE", help="send this rule's alert about a made-up missed call"
    )
    with_config(test)
    test.set_defaults(func=cmd_notify_test)


def cmd_notify_test(args: argparse.Namespace) -> int:
    from monitor.delivery.trial import send_trial, trial_message

    config = load(args.config)
    notifier = config.notifiers.get(args.notifier)
    if notifier is None:
        known = ", ".join(sorted(config.notifiers)) or "none"
        raise Failure(f"no notifier {args.notifier} in the config (it has: {known})")
    title, body = trial_message(args.notifier)
    severity = Severity.INFO
    if args.rule:
        title, body, severity = rule_alert(config, args.rule)
    urls = [url.get_secret_value() for url in notifier.urls]
    tried = asyncio.run(
        send_trial(
            urls,
            title,
            body,
            per_url=notifier.timeout,
            external_url=config.external_url,
            severity=severity,
        )
    )
    for outcome in tried:
        print(logs.redactor.redact(outcome.line()))
    return EXIT_OK if all(t.result.ok for t in tried) else EXIT_INVALID


def rule_alert(config: Config, name: str) -> tuple[str, str, Severity]:
    """The title, body and severity of `name`'s alert about a made-up missed call, marked as a
    test; a template that fails says so in the text, as it would in a real alert."""
    from monitor.rules.sample import missed_call
    from monitor.runtime.build import build_engine, load_config_rules

    rules = {rule.name: rule for rule in load_config_rules(config)}
    rule = rules.get(name)
    if rule is None:
        known = ", ".join(sorted(rules)) or "none"
        raise Failure(f"no rule {name} in the config's rule files (they have: {known})")
    provider, kind = "front-door", "vms-intercom"
    for p in config.providers:
        if rule.providers is not None and p.name not in rule.providers:
            continue
        if rule.provider_types is not None and p.type not in rule.provider_types:
            continue
        provider, kind = p.name, p.type
        break
    engine = build_engine([rule], config)
    title, body, errors = engine.preview(rule, missed_call(provider, kind, datetime.now(UTC)))
    for error in errors:
        print(f"rule {name}: {error}")
    note = "This is a test: the call above is made up."
    return f"[test] {title}", f"{body}\n\n{note}" if body else note, rule.severity
