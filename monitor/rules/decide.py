"""A matching event's way to an alert: the schedule gate, `threshold`, silences, `throttle`,
then the alert itself, held for a backlog summary, a group or quiet hours, or sent."""

from __future__ import annotations

from typing import Any

from monitor.model import Event, EventKind, StateKey
from monitor.rules import batches, windows
from monitor.rules.match import Rule
from monitor.rules.render import render_event
from monitor.rules.run import (
    BELOW,
    FIRED,
    OUTSIDE,
    SILENCED,
    THROTTLED,
    Run,
    Verdict,
    subject,
)
from monitor.rules.state import Firing, Item
from monitor.rules.templates import localtime


def passes_gate(run: Run, rule: Rule, event: Event) -> bool:
    """Whether the event is inside the rule's `during` (or outside its `outside`) schedule."""
    name = rule.during or rule.outside
    if name is None:
        return True
    schedule = run.schedule(name, event)
    if schedule is None:
        return True  # a door whose timetable is unknown: rather alert than stay silent
    inside = schedule.active(event.at)
    return inside if rule.during else not inside


def fire(run: Run, rule: Rule, event: Event) -> None:
    """Take the event through the rule's stages to an alert, or stop where one holds it; the
    verdict says which."""
    verdicts = run.out.verdicts
    if (rule.during or rule.outside) and not passes_gate(run, rule, event):
        where = f"outside its {rule.during}" if rule.during else f"inside its {rule.outside}"
        verdicts.append(Verdict(event, rule.name, OUTSIDE, f"{where} schedule"))
        return
    extra: dict[str, Any] | None = None
    if rule.threshold is not None:
        count, reached = windows.threshold(run, rule, event)
        if not reached:
            verdicts.append(Verdict(event, rule.name, BELOW, f"{count}{rule.threshold.text}"))
            return
        extra = {"count": count}
    if run.silencer and (silence := run.silencer.match(rule.name, event, run.now)) is not None:
        run.out.silenced.append(rule.name)
        detail = f"silence {silence.id}" + (f": {silence.comment}" if silence.comment else "")
        verdicts.append(Verdict(event, rule.name, SILENCED, detail))
        return
    run.out.fired.append(rule.name)
    held_back, since = 0, run.now
    if rule.throttle is not None:
        passed = windows.throttle(run, rule, event)
        if passed is None:
            verdicts.append(Verdict(event, rule.name, THROTTLED, rule.throttle.text))
            return
        held_back, since = passed
    item = alert_item(run, rule, event, extra)
    if held_back:
        note = f"({held_back} more like this held back since {localtime(since, run.zone)})"
        item.body = f"{item.body}\n{note}" if item.body else note
    if rule.resolve:
        run.step.put(StateKey(rule.name, "firing", subject(event)), Firing(item.title))
    if run.backlog and event.kind is EventKind.TRANSITION:
        run.held.setdefault(rule.name, []).append(item)
        how = "held for the summary of the provider's backlog"
    elif rule.group is not None:
        how = batches.group(run, rule, event, item)
    else:
        at = event.at if event.at.tzinfo is not None else None
        how = batches.deliver(run, rule, item, at)
    verdicts.append(Verdict(event, rule.name, FIRED, how, item.key))


def _subject(event: Event) -> str:
    call = event.call
    return f"{event.provider}/call/{call.id}" if call is not None else subject(event)


def alert_item(run: Run, rule: Rule, event: Event, extra: dict[str, Any] | None) -> Item:
    """The rule's alert about this event, rendered, keyed by rule, subject and step."""
    fields = {**rule.fields, **extra} if extra else rule.fields
    at = event.at.timestamp()
    step = f"{event.from_state or 'none'}>{event.to_state}"
    if event.kind is not EventKind.TRANSITION:
        step += f"@{at:.3f}"
    title_fill, body_fill = rule.fills
    body = rule.body
    return Item(
        f"{rule.name}|{event.kind}|{_subject(event)}|{step}",
        render_event(run, rule, rule.title, title_fill, event, fields, "title"),
        render_event(run, rule, body, body_fill, event, fields, "body")
        if body.dynamic
        else body.text,
        at,
        event.provider,
        rule.fields["severity"],
    )
