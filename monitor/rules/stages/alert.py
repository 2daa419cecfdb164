"""The alert: the last stage, always reached by an event no stage stopped. The rule's alert is
rendered, `resolve:` remembers it as firing, and it goes out: held for the summary of a
provider's backlog, added to its `group`, held for `quiet` hours, or sent."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from monitor.model import Event, EventKind, StateKey
from monitor.rules import batches
from monitor.rules.match import Rule
from monitor.rules.render import render_event
from monitor.rules.run import subject
from monitor.rules.stages.base import Passage, Reason, Stop
from monitor.rules.state import Firing, Item
from monitor.rules.templates import duration

name = "alert"
Fields = None


def applies(rule: Rule) -> bool:
    return True


def passes(run: Any, passage: Passage) -> Stop | None:
    rule, event = passage.rule, passage.event
    item = alert_item(run, rule, event, passage.context)
    if passage.since is not None:  # a reminder: the state still holds
        held = duration(round(event.at.timestamp() - passage.since))
        item.title = f"Still: {item.title} (for {held})"
    if passage.notes:
        note = "\n".join(passage.notes)
        item.body = f"{item.body}\n{note}" if item.body else note
    if rule.resolve and passage.since is None:  # a reminder resolves with its first alert
        run.step.put(StateKey(rule.name, "firing", subject(event)), Firing(item.title))
    if run.backlog and event.kind is EventKind.TRANSITION:
        run.held.setdefault(rule.name, []).append(item)
        how = "held for the summary of the provider's backlog"
    elif rule.group is not None:
        how = batches.group(run, rule, event, item)
    else:
        at = event.at if event.at.tzinfo is not None else None
        how = batches.deliver(run, rule, item, at)
    return (FIRED, how, item.key)


def _subject(event: Event) -> str:
    call = event.call
    return f"{event.provider}/call/{call.id}" if call is not None else subject(event)


def _part(text: str) -> str:
    """`text` as one segment of a URL's path: as it is when it is letters and digits (nearly
    every call id and provider name; `quote` costs more than the rest of the alert's key)."""
    return text if text.isascii() and text.isalnum() else quote(text, "")


_LAST: list[Any] = [None, None]
"""The last event `_about` was asked about and its answer: an event that fires several rules
is keyed once."""


def _about(event: Event) -> tuple[str, str | None, float]:
    """What every alert about `event` shares: the end of its key (kind, subject, step), the
    path of the call's story, the event's time."""
    if _LAST[0] is event:
        found: tuple[str, str | None, float] = _LAST[1]
        return found
    call = event.call
    story = None if call is None else f"calls/{_part(event.provider)}/{_part(call.id)}"
    at = event.at.timestamp()
    step = f"{event.from_state or 'none'}>{event.to_state}"
    if event.kind is not EventKind.TRANSITION:
        step += f"@{at:.3f}"
    found = (f"|{event.kind}|{_subject(event)}|{step}", story, at)
    _LAST[0], _LAST[1] = event, found
    return found


def alert_item(run: Any, rule: Rule, event: Event, extra: dict[str, Any] | None) -> Item:
    """The rule's alert about this event, rendered, keyed by rule, subject and step; about a
    call, it links to the call's story (`story_url` in templates, with an `external_url`)."""
    key, story, at = _about(event)
    fields = {**rule.fields, **extra} if extra else rule.fields
    if story is not None and run.external_url is not None:
        fields = {**fields, "story_url": f"{run.external_url}/{story}"}
    title_fill, body_fill = rule.fills
    body = rule.body
    return Item(
        rule.name + key,
        render_event(run, rule, rule.title, title_fill, event, fields, "title"),
        render_event(run, rule, body, body_fill, event, fields, "body")
        if body.dynamic
        else body.text,
        at,
        event.provider,
        rule.fields["severity"],
        story,
    )


FIRED = Reason.FIRED
