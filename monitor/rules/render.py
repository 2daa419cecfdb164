"""From a decision to an alert: rendering a rule's templates, and the `Alert` for each notifier.

A template that fails to render fails alone: the outcome names it, and a text that says which
rule's template failed stands in for it, so that the alert itself still goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from monitor.model import Alert, Event, Severity
from monitor.rules.match import Rule
from monitor.rules.run import Run
from monitor.rules.state import Item
from monitor.rules.templates import EventFill, RenderError, Template


def render(run: Run, rule: Rule, template: Template, context: Mapping[str, Any], what: str) -> str:
    """A rendered template, stripped; a failure goes to the outcome and a fallback text out."""
    try:
        return template.render(context).strip()
    except RenderError as exc:
        return _failed(run, rule, what, exc)


def render_event(
    run: Run,
    rule: Rule,
    template: Template,
    fill: EventFill | None,
    event: Event,
    fields: Mapping[str, Any],
    what: str,
) -> str:
    """`render` of a rule's template about an event with the rule's `fields`: through its
    `EventFill` when it has one (no dict of the event made), else with the event's fields."""
    try:
        if fill is not None:
            return template.fill(fill, event, fields).strip()
        return template.render({**run.view(event), **fields}).strip()
    except RenderError as exc:
        return _failed(run, rule, what, exc)


def _failed(run: Run, rule: Rule, what: str, exc: RenderError) -> str:
    run.out.errors.append((rule.name, f"{what}: {exc}"))
    if what.endswith("title"):
        return f"{rule.name} (its {what} could not be rendered)"
    return f"(the {what} of rule {rule.name} could not be rendered: {exc})"


SEVERITIES = {severity.value: severity for severity in Severity}


def send(run: Run, rule: Rule, item: Item, event_at: datetime | None = None) -> None:
    """One alert per notifier of the rule, keyed so that the same decision is queued once;
    `event_at` is the item's time, when the caller has it as a datetime already."""
    if event_at is None:
        event_at = datetime.fromtimestamp(item.at, UTC)
    for notifier in rule.notify:
        run.out.alerts.append(
            Alert(
                key=f"{item.key}|{notifier}",
                rule=rule.name,
                notifier=notifier,
                severity=SEVERITIES[item.severity],
                title=item.title,
                body=item.body,
                created_at=run.now,
                event_at=event_at,
                story=item.story,
            )
        )
