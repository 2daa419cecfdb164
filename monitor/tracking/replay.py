"""`callmon rules test`: recorded events through the same engine as the daemon, on a simulated
clock, so timers, thresholds, throttles, groups and digests behave exactly as they would live."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.model import EventKind
from monitor.rules.engine import Engine
from monitor.rules.run import Outcome
from monitor.tracking.recorder import Recorded

SETTLE = timedelta(days=2)
"""After the last event the clock runs on until nothing waits, or this long at most."""


@dataclass(frozen=True, order=True)
class Fired:
    """One alert the rules would send: when, which rule, its title (and its notifiers)."""

    at: datetime
    rule: str
    title: str
    notifiers: tuple[str, ...] = ()

    def line(self) -> str:
        stamp = self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{stamp}  {self.rule}  {self.title}"


def replay(
    engine: Engine, recorded: Iterable[Recorded], *, until: datetime | None = None
) -> list[Fired]:
    """Run every event through `engine` at its own time, ticking the clock in between."""
    fired: list[Fired] = []
    down: set[str] = set()
    last: datetime | None = None

    def take(outcome: Outcome, now: datetime) -> None:
        engine.apply(outcome)
        by_key: dict[str, Fired] = {}
        for alert in outcome.alerts:
            key = alert.key.rsplit("|", 1)[0]
            seen = by_key.get(key)
            notifiers = (*seen.notifiers, alert.notifier) if seen else (alert.notifier,)
            by_key[key] = Fired(now, alert.rule, alert.title, notifiers)
        fired.extend(by_key.values())

    def tick_until(moment: datetime) -> None:
        while (due := engine.next_due()) is not None and due <= moment.timestamp():
            now = datetime.fromtimestamp(due, UTC)
            outcome = engine.tick(now, frozenset(down))
            if not outcome:
                break  # due but held (its provider is down): wait for the next event
            take(outcome, now)

    for item in sorted(recorded, key=lambda r: r.event.at):
        event = item.event
        tick_until(event.at)
        if event.kind is EventKind.PROVIDER:
            (down.add if event.to_state == "down" else down.discard)(event.provider)
        take(engine.process([event], event.at, backlog=item.backlog), event.at)
        last = event.at
    if last is not None:
        tick_until(until or last + SETTLE)
    return fired


def compare(fired: Sequence[Fired], expected: Sequence[dict[str, str]]) -> list[str]:
    """The differences between what fired and what was expected, one line each."""
    got = [(f.rule, f.title, f.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) for f in fired]
    problems = []
    for i in range(max(len(got), len(expected))):
        if i >= len(got):
            problems.append(f"missing #{i + 1}: {expected[i]}")
            continue
        rule, title, at = got[i]
        if i >= len(expected):
            problems.append(f"unexpected #{i + 1}: {at} {rule} {title!r}")
            continue
        want = expected[i]
        wrong = [
            f"{k} {v!r} != {want[k]!r}"
            for k, v in (("rule", rule), ("title", title), ("at", at))
            if k in want and str(want[k]) != v
        ]
        if wrong:
            problems.append(f"#{i + 1} ({rule} at {at}): " + "; ".join(wrong))
    return problems
