"""Events per second through 50 rules (the time-aware engine, one event per step).

Run: `.venv/bin/python bench/rules_bench.py`. Prints figures; asserts nothing.
"""

from __future__ import annotations

import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.model import Call, CallState, Event, EventKind, Intercom
from monitor.rules.engine import Engine
from monitor.rules.loader import Context, load_rules

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DOORS = [Intercom(i, f"Door {i}") for i in range(200)]


def typical_rules() -> str:
    """50 rules as a site with many doors and lines writes them: each about one door or line."""
    rules = []
    for i in range(50):
        kind = i % 5
        if kind == 0:
            when = f"{{to: missed, where: {{call.intercom.id: {i}}}}}"
        elif kind == 1:
            title = f"{{call.intercom.title: {{regex: '^Door {i}$'}}}}"
            when = f"{{provider: p{i % 4}, to: missed, where: {title}}}"
        elif kind == 2:
            where = f"{{call.intercom.id: {i}, call.talk_seconds: {{gt: 300}}}}"
            when = f"{{to: ended, where: {where}}}"
        elif kind == 3:
            when = f"{{to: ringing, where: {{call.intercom.id: {i}}}}}"
            when += ", threshold: {count: 5, within: 2m, by: [call.intercom.id]}"
        else:
            where = f"{{call.intercom.id: {i}}}"
            when = f"{{provider_type: bird, to: [rejected, failed], where: {where}}}"
        rules.append(
            f"  - {{name: rule-{i}, when: {when}, notify: [chat], "
            f"title: 'Door {{{{ call.intercom.title }}}}'}}"
        )
    return "rules:\n" + "\n".join(rules) + "\n"


def busy_rules() -> str:
    """50 broad rules: nearly every event fires two of them (the worst case: rendering)."""
    rules = []
    for i in range(10):
        rules.append(
            f"  - {{name: missed-{i}, when: {{to: missed, where: "
            f"{{call.intercom.title: {{regex: 'Door {i}$'}}}}}}, notify: [chat], "
            f"title: 'Missed at {{{{ call.intercom.title }}}}'}}"
        )
        rules.append(
            f"  - {{name: long-{i}, when: {{to: ended, where: "
            f"{{call.talk_seconds: {{gt: {60 * i}}}}}}}, notify: [chat]}}"
        )
        rules.append(
            f"  - {{name: provider-{i}, when: {{provider: p{i % 4}, "
            f"to: [missed, rejected]}}, notify: [chat]}}"
        )
        rules.append(
            f"  - {{name: burst-{i}, when: {{to: missed}}, threshold: {{count: {5 + i}, "
            f"within: 10m, by: [call.intercom.id]}}, notify: [chat]}}"
        )
        rules.append(
            f"  - {{name: throttled-{i}, when: {{to: answered, provider_type: bird}}, "
            f"throttle: {{every: 15m, by: [call.intercom.id]}}, notify: [chat]}}"
        )
    return "rules:\n" + "\n".join(rules) + "\n"


def events(n: int) -> list[Event]:
    out = []
    states = [
        ("ringing", None),
        ("answered", "ringing"),
        ("ended", "answered"),
        ("missed", "ringing"),
    ]
    for i in range(n):
        to, frm = states[i % 4]
        at = T0 + timedelta(seconds=i)
        call = Call(
            id=str(i),
            state=CallState(to),
            raw_status=to,
            created_at=at,
            answered_at=at,
            ended_at=at + timedelta(seconds=i % 600),
            intercom=DOORS[i % len(DOORS)],
        )
        out.append(
            Event(
                kind=EventKind.TRANSITION,
                provider=f"p{i % 4}",
                provider_type="vms-intercom" if i % 2 else "bird",
                from_state=frm,
                to_state=to,
                at=at,
                call=call,
            )
        )
    return out


def measure(label: str, text: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "rules.yaml")
        path.write_text(text)
        rules = load_rules([path], Context(notifiers=["chat"], providers=["p0", "p1", "p2", "p3"]))
    engine = Engine(rules)
    batch = events(100_000)
    start = time.perf_counter()
    alerts = 0
    for event in batch:
        outcome = engine.process([event], event.at)
        engine.apply(outcome)
        alerts += len(outcome.alerts)
    seconds = time.perf_counter() - start
    print(
        f"  {label:32s} {len(batch) / seconds:>9,.0f} events/s "
        f"({seconds / len(batch) * 1e6:5.2f} µs/event, {alerts / len(batch):.2f} alerts/event)"
    )
    return len(batch) / seconds


DEFAULT_TITLE = "{{ rule }}: {{ provider }} {{ call.id or intercom.id or '' }} {{ to }}"


class Interpreter:
    """The peer: the same rules read as plain dicts and walked for every event, the way
    ElastAlert-style tools evaluate them (each event as a dict, every rule tried, each
    condition interpreted, titles rendered by Jinja2 templates compiled once)."""

    def __init__(self, text: str) -> None:
        import jinja2
        from ruamel.yaml import YAML

        self.rules = YAML(typ="safe").load(text)["rules"]
        env = jinja2.Environment()
        self.titles = {
            r["name"]: env.from_string(r.get("title", DEFAULT_TITLE)) for r in self.rules
        }
        self.windows: dict[tuple[str, str], list[float]] = {}
        self.last: dict[tuple[str, str], float] = {}

    def process(self, event: Event) -> list[dict[str, object]]:
        fields = event.as_dict()
        alerts = []
        for rule in self.rules:
            if not self.matches(rule["when"], fields):
                continue
            at = event.at.timestamp()
            if "threshold" in rule:
                spec = rule["threshold"]
                key = (rule["name"], "|".join(str(get(fields, p)) for p in spec.get("by", [])))
                times = [t for t in self.windows.get(key, []) if t > at - seconds(spec["within"])]
                times.append(at)
                self.windows[key] = times
                if len(times) != spec["count"]:
                    continue
            if "throttle" in rule:
                spec = rule["throttle"]
                key = (rule["name"], "|".join(str(get(fields, p)) for p in spec.get("by", [])))
                if at - self.last.get(key, -1e18) < seconds(spec["every"]):
                    continue
                self.last[key] = at
            title = self.titles[rule["name"]].render(rule=rule["name"], **fields)
            alerts.append({"rule": rule["name"], "title": title, "body": rule.get("body", "")})
        return alerts

    def matches(self, when: dict[str, Any], fields: dict[str, Any]) -> bool:
        for key in ("provider", "provider_type", "to"):
            if key in when:
                wanted = when[key] if isinstance(when[key], list) else [when[key]]
                if fields[key] not in wanted:
                    return False
        return all(test(get(fields, path), spec) for path, spec in when.get("where", {}).items())


def get(fields: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(fields, dict):
            return None
        fields = fields.get(part)
    return fields


def test(value: Any, spec: Any) -> bool:
    if isinstance(spec, list):
        return any(test(value, s) for s in spec)
    if isinstance(spec, dict):
        for op, arg in spec.items():
            if op == "regex":
                ok = value is not None and re.search(arg, str(value)) is not None
            elif op in ("gt", "gte", "lt", "lte"):
                ok = (
                    isinstance(value, int | float)
                    and {
                        "gt": value > arg,
                        "gte": value >= arg,
                        "lt": value < arg,
                        "lte": value <= arg,
                    }[op]
                )
            else:
                ok = False
            if not ok:
                return False
        return True
    return bool(value == spec or str(value) == str(spec))


def seconds(text: str) -> float:
    return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


def measure_naive(label: str, text: str) -> float:
    interpreter = Interpreter(text)
    batch = events(100_000)
    start = time.perf_counter()
    alerts = 0
    for event in batch:
        alerts += len(interpreter.process(event))
    taken = time.perf_counter() - start
    print(
        f"  {label:32s} {len(batch) / taken:>9,.0f} events/s "
        f"({taken / len(batch) * 1e6:5.2f} µs/event, {alerts / len(batch):.2f} alerts/event)"
    )
    return len(batch) / taken


def main() -> None:
    print("rules benchmark: 50 rules, 100,000 transitions, one event per engine step")
    measure("typical (rules about one door)", typical_rules())
    measure_naive("typical, dict-tree interpreter", typical_rules())
    measure("busy (every event fires ~2)", busy_rules())
    measure_naive("busy, dict-tree interpreter", busy_rules())


if __name__ == "__main__":
    main()
