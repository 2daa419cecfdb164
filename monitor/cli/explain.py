"""`callmon explain PROVIDER CALL_ID`: a call's story from the decision record: each state
callmon saw (when, and by poll or push), every rule's decision on it and why, and what became of
each alert's delivery."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import tzinfo

from monitor.cli.common import EXIT_OK, Failure, Subparsers, load, using_store, with_config
from monitor.model import moment
from monitor.store import Decision, OutboxItem
from monitor.telemetry import logs


def add_parsers(sub: Subparsers) -> None:
    explain = sub.add_parser("explain", help="the story of one call: what callmon saw and decided")
    explain.add_argument("provider", metavar="PROVIDER", help="the provider's name in the config")
    explain.add_argument("call_id", metavar="CALL_ID", help="the call's id at that provider")
    with_config(explain)
    explain.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    config = load(args.config)
    decisions, deliveries = using_store(
        config, lambda store: store.story(args.provider, args.call_id)
    )
    if not decisions:
        raise Failure(
            f"callmon explain: no record of call {args.call_id!r} at {args.provider!r} "
            f"(decisions are kept for {config.decisions_retention / 86400:g} days)"
        )
    for line in story(args.provider, args.call_id, decisions, deliveries, config.zone):
        print(logs.redactor.redact(line))
    return EXIT_OK


def story(
    provider: str,
    call_id: str,
    decisions: Sequence[Decision],
    deliveries: Mapping[str, Sequence[OutboxItem]],
    zone: tzinfo,
) -> list[str]:
    """The lines of a call's story, oldest first."""
    lines = [f"{provider} call {call_id}"]
    width = max((len(d.rule) for d in decisions if d.rule), default=0)
    for d in decisions:
        if d.rule is None:
            step = f"{d.from_state} → {d.to_state}" if d.from_state else f"first seen {d.to_state}"
            lines.append(f"{_when(d.at, zone)}  {step}  (by {d.via})")
            continue
        because = f": {d.detail}" if d.detail else ""
        lines.append(f"    {d.rule:<{width}}  {d.verdict}{because}")
        for item in deliveries.get(d.alert or "", ()):
            lines.append(f"    {'':<{width}}    {_delivery(item, zone)}")
            for tried in item.tries:
                error = f" — {tried.error}" if tried.error else ""
                lines.append(
                    f"    {'':<{width}}        {_when(tried.at, zone)} {tried.outcome}{error}"
                )
    return lines


def _delivery(item: OutboxItem, zone: tzinfo) -> str:
    tries = f"{item.attempts} attempt{'s' if item.attempts != 1 else ''}"
    said = {"sent": "delivered", "pending": "waiting", "dead": "given up (dead-lettered)"}
    text = f"→ {item.notifier} #{item.target}: {said.get(item.status, item.status)} after {tries}"
    if item.last_error:
        text += f"; last error: {item.last_error}"
    return text + f" (decided {_when(item.created_at, zone)})"


def _when(ts: float, zone: tzinfo) -> str:
    return moment(ts, zone).strftime("%Y-%m-%d %H:%M:%S %Z")
