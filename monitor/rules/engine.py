"""Time-aware rule evaluation, pure: events (or a clock tick), rule state and `now` in; alerts and
state changes out.

An event that matches a rule passes, in order: its schedule gate (`during`/`outside`), a `for`
timer (the rule then fires from `tick` once the state has held that long), its `threshold`, its
`throttle`, the backlog summary (after a provider outage), its `group`, and its `quiet` hours.
`resolve` sends a follow-up when the subject leaves the state. Nothing here does I/O: the
pipeline stores `Outcome.changes` with `Outcome.alerts` in one transaction, then `apply`s them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

import msgspec

from monitor.model import Alert, Event, EventKind, Intercom, Severity
from monitor.rules.match import Rule, by_key
from monitor.rules.schedule import Schedule, from_timetable
from monitor.rules.silence import Silencer
from monitor.rules.state import RuleState, StateKey, Step
from monitor.rules.templates import RenderError, Template, localtime

TIMETABLE = "intercom-timetable"
SUMMARY_LINES = 50


@dataclass
class Outcome:
    """What one step decided: alerts to queue, state to store, rules that fired."""

    alerts: list[Alert] = field(default_factory=list)
    changes: dict[StateKey, Any] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(rule, problem) of each template that failed to render (a fallback text went out)."""

    def __bool__(self) -> bool:
        return bool(self.alerts or self.changes)


def _render(run: _Run, rule: Rule, template: Template, context: Any, what: str) -> str:
    """A rendered template; one that fails is reported in the outcome and replaced by a text
    that says so, so that the alert itself still goes out."""
    try:
        return template.render(context).strip()
    except RenderError as exc:
        run.out.errors.append((rule.name, f"{what}: {exc}"))
        if what.endswith("title"):
            return f"{rule.name} (its {what} could not be rendered)"
        return f"(the {what} of rule {rule.name} could not be rendered: {exc})"


def subject(event: Event) -> str:
    """What an event is about: a call, a door, or the provider itself."""
    if event.call is not None:
        return f"{event.provider}/call/{event.call.id}"
    if event.intercom is not None:
        return f"{event.provider}/door/{event.intercom.id}"
    return event.provider


def encode_event(event: Event) -> str:
    """An event as JSON for the store (without `call.raw`, which can be large)."""
    if event.call is not None and event.call.raw:
        event = msgspec.structs.replace(event, call=msgspec.structs.replace(event.call, raw={}))
    return msgspec.json.encode(event).decode()


def decode_event(text: str) -> Event:
    """The inverse of `encode_event`."""
    return msgspec.json.decode(text, type=Event)


class _Run:
    """One step's working set: the state step, the outcome, now, and per-event field views."""

    def __init__(self, state: RuleState, now: datetime, backlog: bool = False) -> None:
        self.step: Step = state.step()
        self.out = Outcome()
        self.now = now
        self.backlog = backlog
        self.held: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._views: dict[int, Mapping[str, Any]] = {}

    def view(self, event: Event) -> Mapping[str, Any]:
        key = id(event)
        if key not in self._views:
            self._views[key] = event.as_dict()
        return self._views[key]


class Engine:
    """The rules in force, their state, and the schedules they refer to."""

    def __init__(
        self,
        rules: Sequence[Rule],
        schedules: Mapping[str, Schedule] | None = None,
        *,
        zone: tzinfo = UTC,
        state: RuleState | None = None,
    ) -> None:
        self.schedules = dict(schedules or {})
        self.zone = zone
        self.state = state or RuleState()
        self.timetables: dict[tuple[str, int], Schedule] = {}
        self.silencer = Silencer()
        self.set_rules(rules)

    # --- configuration

    def set_rules(self, rules: Sequence[Rule]) -> dict[StateKey, Any]:
        """Put new rules in force; returns the changes that drop the state of removed rules.

        A rule whose fingerprint is unchanged keeps its timers, windows and buffers.
        """
        old = {r.name: r.fingerprint for r in getattr(self, "rules", ())}
        self.rules = list(rules)
        self.by_name = {r.name: r for r in self.rules}
        self._index: dict[tuple[str, str | None], list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for kind in rule.kinds:
                for to in rule.to_states or (None,):
                    self._index[(kind, to)].append(rule)
        self._candidates: dict[tuple[str, str], list[Rule]] = {}
        self._watchers = [r for r in self.rules if r.hold_for or r.resolve]
        keep = {r.name for r in self.rules if old.get(r.name, r.fingerprint) == r.fingerprint}
        return self.state.forget_rules(keep)

    def update_timetables(self, provider: str, doors: Iterable[Intercom]) -> None:
        """Remember each door's own timetable, for `during: intercom-timetable`."""
        for door in doors:
            if door.timetable:
                schedule = from_timetable(door.timetable, self.zone)
                if schedule is not None:
                    self.timetables[(provider, door.id)] = schedule

    # --- the two entry points

    def process(self, events: Iterable[Event], now: datetime, *, backlog: bool = False) -> Outcome:
        """Evaluate events. With `backlog`, call alerts of each rule become one summary."""
        run = _Run(self.state, now, backlog)
        for event in events:
            self._leave(run, event)
            for rule in self._rules_for(event):
                if rule.matches(event):
                    self._enter(run, rule, event)
        for name, items in run.held.items():
            rule = self.by_name[name]
            provider = items[0]["provider"]
            self._deliver(run, rule, self._summary(run, rule, items, "backlog", provider))
        run.out.changes = run.step.changes
        return run.out

    def tick(
        self,
        now: datetime,
        down: frozenset[str] = frozenset(),
        polled: Mapping[str, float] | None = None,
    ) -> Outcome:
        """Fire due timers, flush due groups and digests.

        A timer about a call or a door fires only once its provider has answered a poll made
        after the timer was due (`polled`: provider → time of its last successful poll, when
        known), and never while the provider is `down`: only then is it known that the call is
        still ringing, or the door still offline. Timers about provider health need no poll.
        """
        run = _Run(self.state, now)
        stamp = now.timestamp()
        for key, value in list(run.step.of_kind("timer")):
            rule = self.by_name.get(key.rule)
            if rule is None or value["due"] > stamp:
                continue
            event = decode_event(value["event"])
            if event.kind is not EventKind.PROVIDER:
                if event.provider in down:
                    continue  # source health first: decide once the provider answers again
                if polled is not None and polled.get(event.provider, 0.0) < value["due"]:
                    continue  # not yet seen after the deadline: it may have changed meanwhile
            run.step.delete(key)
            fired = Event(
                kind=EventKind.TIMER,
                provider=event.provider,
                provider_type=event.provider_type,
                from_state=event.to_state,
                to_state=event.to_state,
                at=datetime.fromtimestamp(value["due"], UTC),
                call=event.call,
                intercom=event.intercom,
                reason=event.reason,
            )
            self._fire(run, rule, fired)
        for key, value in list(run.step.of_kind("group")):
            rule = self.by_name.get(key.rule)
            if rule is not None and value["due"] <= stamp:
                run.step.delete(key)
                self._deliver(run, rule, self._summary(run, rule, value["items"], "group"))
        for key, value in list(run.step.of_kind("quiet")):
            rule = self.by_name.get(key.rule)
            if rule is not None and value["due"] <= stamp:
                run.step.delete(key)
                summary = self._summary(run, rule, value["items"], "quiet")
                self._send(run, rule, summary)
        for key, value in list(run.step.of_kind("threshold")):
            rule = self.by_name.get(key.rule)
            if rule is None or rule.threshold is None:
                continue
            if not value["times"] or value["times"][-1] <= stamp - rule.threshold.seconds:
                run.step.delete(key)  # the window emptied: forget the key
        run.out.changes = run.step.changes
        return run.out

    def apply(self, outcome: Outcome) -> None:
        """Make a committed outcome's state changes the engine's state."""
        self.state.apply(outcome.changes)

    def next_due(self) -> float | None:
        """The earliest time something waits for (a timer, a group, a digest), or None."""
        dues = [
            v["due"] for k, v in self.state.entries.items() if k.kind in ("timer", "group", "quiet")
        ]
        return min(dues) if dues else None

    # --- matching

    def _rules_for(self, event: Event) -> list[Rule]:
        key = (str(event.kind), event.to_state)
        found = self._candidates.get(key)
        if found is None:
            chosen = {id(r) for r in self._index.get(key, ())}
            chosen |= {id(r) for r in self._index.get((key[0], None), ())}
            found = [r for r in self.rules if id(r) in chosen]
            self._candidates[key] = found
        return found

    def _leave(self, run: _Run, event: Event) -> None:
        """Cancel timers and send resolutions for a subject that left a watched state."""
        if not self._watchers or event.kind is EventKind.TIMER:
            return
        who = subject(event)
        for rule in self._watchers:
            if rule.states is None or event.to_state in rule.states:
                continue
            run.step.delete(StateKey(rule.name, "timer", who))
            firing = StateKey(rule.name, "firing", who)
            held = run.step.get(firing)
            if held is not None and rule.resolve:
                run.step.delete(firing)
                item = {
                    "key": f"{rule.name}|resolve|{who}|{event.at.timestamp():.3f}",
                    "title": f"Resolved: {held['title']}",
                    "body": f"{event.to_state} at {localtime(event.at, self.zone)}",
                    "at": event.at.timestamp(),
                    "provider": event.provider,
                    "severity": Severity.INFO.value,
                }
                self._deliver(run, rule, item)

    def _enter(self, run: _Run, rule: Rule, event: Event) -> None:
        if rule.hold_for is None:
            self._fire(run, rule, event)
            return
        key = StateKey(rule.name, "timer", subject(event))
        if run.step.get(key) is None:
            due = event.at.timestamp() + rule.hold_for
            run.step.put(key, {"due": due, "event": encode_event(event)})

    # --- the stages

    def _gate(self, rule: Rule, event: Event) -> bool:
        name = rule.during or rule.outside
        if name is None:
            return True
        schedule = self._schedule(name, event)
        if schedule is None:
            return True  # a door whose timetable is unknown: rather alert than stay silent
        inside = schedule.active(event.at)
        return inside if rule.during else not inside

    def _schedule(self, name: str, event: Event) -> Schedule | None:
        if name != TIMETABLE:
            return self.schedules.get(name)
        door = event.intercom or (event.call.intercom if event.call else None)
        if door is None:
            return None
        if door.timetable:
            return from_timetable(door.timetable, self.zone)
        return self.timetables.get((event.provider, door.id))

    def _fire(self, run: _Run, rule: Rule, event: Event) -> None:
        if not self._gate(rule, event):
            return
        extra: dict[str, Any] = {}
        if rule.threshold is not None:
            count = self._threshold(run, rule, event)
            if count is None:
                return
            extra["count"] = count
        if self.silencer and self.silencer.match(rule.name, event, run.now) is not None:
            run.out.silenced.append(rule.name)
            return
        run.out.fired.append(rule.name)
        held_back, since = 0, run.now
        if rule.throttle is not None:
            passed = self._throttle(run, rule, event)
            if passed is None:
                return
            held_back, since = passed
        who = subject(event)
        context = {
            **run.view(event),
            "rule": rule.name,
            "severity": str(rule.severity),
            "for": rule.hold_for,
            **extra,
        }
        step = f"{event.from_state or 'none'}>{event.to_state}"
        if event.kind is not EventKind.TRANSITION:
            step += f"@{event.at.timestamp():.3f}"
        item = {
            "key": f"{rule.name}|{event.kind}|{who}|{step}",
            "title": _render(run, rule, rule.title, context, "title"),
            "body": _render(run, rule, rule.body, context, "body"),
            "at": event.at.timestamp(),
            "provider": event.provider,
            "severity": str(rule.severity),
        }
        if held_back:
            note = f"({held_back} more like this held back since {localtime(since, self.zone)})"
            item["body"] = f"{item['body']}\n{note}" if item["body"] else note
        if rule.resolve:
            run.step.put(StateKey(rule.name, "firing", who), {"title": item["title"]})
        if run.backlog and event.kind is EventKind.TRANSITION:
            run.held[rule.name].append(item)
            return
        if rule.group is not None:
            self._group(run, rule, event, item)
            return
        self._deliver(run, rule, item)

    def _threshold(self, run: _Run, rule: Rule, event: Event) -> int | None:
        """The count in the window when this event reaches the threshold, else None."""
        spec = rule.threshold
        assert spec is not None
        key = StateKey(rule.name, "threshold", by_key(spec.by, event))
        state = run.step.get(key) or {"times": [], "fired": False}
        at = event.at.timestamp()
        times = [t for t in state["times"] if t > at - spec.seconds]
        times.append(at)
        times = times[-max(spec.count, 1) * 4 :]
        reached = len(times) >= spec.count
        fire = reached and not state["fired"]
        run.step.put(key, {"times": times, "fired": reached})
        return len(times) if fire else None

    def _throttle(self, run: _Run, rule: Rule, event: Event) -> tuple[int, datetime] | None:
        """None when the alert is held back (and counted); else how many were held back
        before it, and since when."""
        spec = rule.throttle
        assert spec is not None
        key = StateKey(rule.name, "throttle", by_key(spec.by, event))
        state = run.step.get(key)
        now = run.now.timestamp()
        if state is not None and now - state["last"] < spec.seconds:
            run.step.put(key, {**state, "suppressed": state["suppressed"] + 1})
            return None
        run.step.put(key, {"last": now, "suppressed": 0})
        if not state:
            return 0, run.now
        return state["suppressed"], datetime.fromtimestamp(state["last"], UTC)

    def _group(self, run: _Run, rule: Rule, event: Event, item: dict[str, Any]) -> None:
        spec = rule.group
        assert spec is not None
        key = StateKey(rule.name, "group", by_key(spec.by, event))
        state = run.step.get(key) or {"due": run.now.timestamp() + spec.seconds, "items": []}
        items = [*state["items"], item]
        if len(items) >= spec.count:
            run.step.delete(key)
            self._deliver(run, rule, self._summary(run, rule, items, "group"))
        else:
            run.step.put(key, {"due": state["due"], "items": items})

    def _deliver(self, run: _Run, rule: Rule, item: dict[str, Any]) -> None:
        """Send now, or hold for the digest when the rule's quiet hours are on."""
        if rule.quiet is not None:
            schedule = self.schedules.get(rule.quiet)
            end = schedule.end_after(run.now) if schedule else None
            if end is not None:
                key = StateKey(rule.name, "quiet", "")
                state = run.step.get(key) or {"due": end.timestamp(), "items": []}
                run.step.put(key, {"due": state["due"], "items": [*state["items"], item]})
                return
        self._send(run, rule, item)

    def _send(self, run: _Run, rule: Rule, item: dict[str, Any]) -> None:
        for notifier in rule.notify:
            run.out.alerts.append(
                Alert(
                    key=f"{item['key']}|{notifier}",
                    rule=rule.name,
                    notifier=notifier,
                    severity=Severity(item.get("severity", rule.severity)),
                    title=item["title"],
                    body=item["body"],
                    created_at=run.now,
                    event_at=datetime.fromtimestamp(item["at"], UTC),
                )
            )

    def _summary(
        self,
        run: _Run,
        rule: Rule,
        items: list[dict[str, Any]],
        reason: str,
        provider: str | None = None,
    ) -> dict[str, Any]:
        """One message standing for several alerts (a group, a digest, a backlog)."""
        if len(items) == 1 and reason in ("group", "backlog"):
            return items[0]
        count = len(items)
        context = {
            "count": count,
            "alerts": items,
            "rule": rule.name,
            "reason": reason,
            "schedule": rule.quiet,
            "provider": provider,
        }
        if rule.summary_title is not None:
            title = _render(run, rule, rule.summary_title, context, "summary title")
        else:
            titles = {i["title"] for i in items}
            title = (
                f"{count} × {items[0]['title']}"
                if len(titles) == 1
                else (f"{count} alerts from {rule.name}")
            )
            if reason == "quiet":
                title += f" (held during {rule.quiet})"
            elif reason == "backlog":
                title += f" (while {provider} was unreachable)"
        if rule.summary_body is not None:
            body = _render(run, rule, rule.summary_body, context, "summary body")
        else:
            lines = [
                f"- {localtime(datetime.fromtimestamp(i['at'], UTC), self.zone, '%d %b %H:%M')} "
                f"{i['title']}"
                for i in items[:SUMMARY_LINES]
            ]
            if count > SUMMARY_LINES:
                lines.append(f"… and {count - SUMMARY_LINES} more")
            body = "\n".join(lines)
        return {
            "key": f"{rule.name}|{reason}|{items[0]['key']}|{count}",
            "title": title,
            "body": body,
            "at": items[-1]["at"],
            "provider": provider,
            "severity": str(rule.severity),
        }
