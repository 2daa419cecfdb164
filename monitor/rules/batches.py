"""Several alerts as one message: `group` (collected for a while, or until full), `quiet` hours
(held, one digest when they end) and the backlog summary after a provider outage."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from monitor.model import Event, StateKey
from monitor.rules.match import Rule, by_key
from monitor.rules.render import render, send
from monitor.rules.run import Run
from monitor.rules.state import Batch, Item
from monitor.rules.templates import localtime

SUMMARY_LINES = 50


def group(run: Run, rule: Rule, event: Event, item: Item) -> str:
    """Add the alert to its group; a full group goes out at once. Says which happened."""
    spec = rule.group
    assert spec is not None
    key = StateKey(rule.name, "group", by_key(spec.by, event))
    state = run.step.get(key, Batch) or Batch(run.now.timestamp() + spec.seconds, [])
    items = [*state.items, item]
    if len(items) >= spec.count:
        run.step.delete(key)
        return "grouped; the full group " + deliver(run, rule, summary(run, rule, items, "group"))
    run.step.put(key, Batch(state.due, items))
    return f"grouped: {len(items)} waiting, sent together within {spec.seconds:g} s"


def deliver(run: Run, rule: Rule, item: Item, event_at: datetime | None = None) -> str:
    """Send now, or hold for the digest while the rule's quiet hours are on. Says which.
    (`event_at`: the item's time as a datetime, when the caller has it.)"""
    if rule.quiet is not None:
        schedule = run.schedules.get(rule.quiet)
        end = schedule.end_after(run.now) if schedule else None
        if end is not None:
            key = StateKey(rule.name, "quiet", "")
            state = run.step.get(key, Batch) or Batch(end.timestamp(), [])
            run.step.put(key, Batch(state.due, [*state.items, item]))
            return f"held for quiet hours ({rule.quiet}) until {end.isoformat()}"
    send(run, rule, item, event_at)
    return "sent"


def flush_due(run: Run, rules: dict[str, Rule], stamp: float) -> None:
    """Send the groups whose wait is over and the digests whose quiet hours ended."""
    for kind in ("group", "quiet"):
        for key, state in list(run.step.of_kind(kind)):
            rule = rules.get(key.rule)
            if rule is None or not isinstance(state, Batch) or state.due > stamp:
                continue
            run.step.delete(key)
            message = summary(run, rule, state.items, kind)
            if kind == "group":
                deliver(run, rule, message)
            else:
                send(run, rule, message)


def flush_backlog(run: Run, rules: dict[str, Rule]) -> None:
    """One summary per rule of the call alerts a provider's outage piled up."""
    for name, items in run.held.items():
        rule = rules[name]
        deliver(run, rule, summary(run, rule, items, "backlog", items[0].provider))


def summary(
    run: Run, rule: Rule, items: list[Item], reason: str, provider: str | None = None
) -> Item:
    """One message standing for several alerts (a group, a digest, a backlog)."""
    if len(items) == 1 and reason in ("group", "backlog"):
        return items[0]
    count = len(items)
    if rule.summary_title is not None or rule.summary_body is not None:
        context = {
            "count": count,
            "alerts": [msgspec.structs.asdict(i) for i in items],
            "rule": rule.name,
            "reason": reason,
            "schedule": rule.quiet,
            "provider": provider,
        }
    if rule.summary_title is not None:
        title = render(run, rule, rule.summary_title, context, "summary title")
    else:
        title = _default_title(rule, items, reason, provider)
    if rule.summary_body is not None:
        body = render(run, rule, rule.summary_body, context, "summary body")
    else:
        body = _default_body(run, items)
    return Item(
        key=f"{rule.name}|{reason}|{items[0].key}|{count}",
        title=title,
        body=body,
        at=items[-1].at,
        provider=provider,
        severity=str(rule.severity),
    )


def _default_title(rule: Rule, items: list[Item], reason: str, provider: str | None) -> str:
    count = len(items)
    titles = {i.title for i in items}
    title = (
        f"{count} × {items[0].title}" if len(titles) == 1 else f"{count} alerts from {rule.name}"
    )
    if reason == "quiet":
        title += f" (held during {rule.quiet})"
    elif reason == "backlog":
        title += f" (while {provider} was unreachable)"
    return title


def _default_body(run: Run, items: list[Item]) -> str:
    lines = [
        f"- {localtime(datetime.fromtimestamp(i.at, UTC), run.zone, '%d %b %H:%M')} {i.title}"
        for i in items[:SUMMARY_LINES]
    ]
    if len(items) > SUMMARY_LINES:
        lines.append(f"… and {len(items) - SUMMARY_LINES} more")
    return "\n".join(lines)
