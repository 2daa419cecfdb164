"""`callmon rules test|schema` and `callmon config schema`: trying rules offline, and the JSON
Schemas editors read."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.cli.common import EXIT_INVALID, EXIT_OK, Failure, Subparsers, load, with_config
from monitor.text import yamldoc


def add_parsers(sub: Subparsers) -> None:
    rules = sub.add_parser("rules", help="test rules against recorded events; their schema")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    test = rules_sub.add_parser("test", help="replay recorded events through rule files")
    test.add_argument("rules", nargs="+", metavar="RULES", help="rule files or folders")
    test.add_argument("--events", required=True, metavar="FILE.jsonl", help="recorded events")
    test.add_argument("--expect", metavar="FILE.yaml", help="expected alerts: exit 1 on mismatch")
    with_config(test)
    test.set_defaults(func=cmd_rules_test)
    code = rules_sub.add_parser(
        "code", help="print the Python generated for rules (matchers, field readers, templates)"
    )
    code.add_argument("rules", nargs="+", metavar="RULES", help="rule files or folders")
    with_config(code)
    code.set_defaults(func=cmd_rules_code)
    rules_sub.add_parser("schema", help="JSON Schema of rule files").set_defaults(
        func=lambda args: print_schema("rules")
    )
    config = sub.add_parser("config", help="the config file's JSON Schema")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    config_sub.add_parser("schema", help="JSON Schema of the config file").set_defaults(
        func=lambda args: print_schema("config")
    )


def print_schema(which: str) -> int:
    from monitor.config import Config
    from monitor.rules.schema import RuleFile

    model = RuleFile if which == "rules" else Config
    schema = model.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "callmon rule file" if which == "rules" else "callmon config"
    print(json.dumps(schema, indent=2, sort_keys=True))
    return EXIT_OK


def cmd_rules_code(args: argparse.Namespace) -> int:
    """What runs when the rules match an event: each generated function, with what it is for."""
    from monitor.rules.loader import load_rules
    from monitor.runtime.build import build_engine, provider_context, rules_context

    config = load(args.config) if args.config else None
    context = (
        rules_context(config)
        if config
        else provider_context(notifiers=None, providers=None, schedules=None)
    )
    engine = build_engine(load_rules([Path(p) for p in args.rules], context), config)
    for what, source in engine.generated():
        print(f"# {what}\n{source}")
    return EXIT_OK


def cmd_rules_test(args: argparse.Namespace) -> int:
    from monitor.rules.loader import load_rules
    from monitor.runtime.build import build_engine, provider_context, rules_context
    from monitor.tracking.recorder import RecordingError, read
    from monitor.tracking.replay import compare, replay

    config = load(args.config) if args.config else None
    context = (
        rules_context(config)
        if config
        else provider_context(notifiers=None, providers=None, schedules=None)
    )
    rules = load_rules([Path(p) for p in args.rules], context)
    engine = build_engine(rules, config)
    try:
        fired = replay(engine, list(read(args.events)))
    except OSError as exc:
        raise Failure(f"{args.events}: cannot read: {exc.strerror}") from None
    except RecordingError as exc:
        raise Failure(str(exc)) from None
    for item in fired:
        print(item.line())
    if not args.expect:
        print(f"# {len(fired)} alerts from {len(rules)} rules", file=sys.stderr)
        return EXIT_OK
    doc = yamldoc.load(args.expect)
    expected = doc.data.get("alerts") if isinstance(doc.data, dict) else doc.data
    if not isinstance(expected, list) or not all(isinstance(e, dict) for e in expected):
        raise Failure(f"{args.expect}:1:1: expected a list of alerts ({{rule, title, at}})")
    problems = compare(fired, yamldoc.plain(expected))
    for problem in problems:
        print(f"{args.expect}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_INVALID
    print(f"# ok: {len(fired)} alerts as expected", file=sys.stderr)
    return EXIT_OK
