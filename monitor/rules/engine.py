"""Time-aware rule evaluation, pure: events (or a clock tick), rule state, what is in force
(silences, door timetables) and `now` in; alerts and state changes out.

An event that matches a rule passes, in order: its schedule gate (`during`/`outside`), a `for`
timer (the rule then fires from `tick` once the state has held that long), its `threshold`,
silences, its `throttle`, the backlog summary (after a provider outage), its `group`, and its
`quiet` hours (see `decide`). `resolve` sends a follow-up when the subject leaves the state
(`timers`). Nothing here does I/O: the pipeline stores `Outcome.changes` with `Outcome.alerts`
in one transaction, then `apply`s them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo

from monitor.model import Event
from monitor.rules import batches, codegen, stages, timers
from monitor.rules.match import Rule
from monitor.rules.matching import Shortlist
from monitor.rules.run import Considered, Outcome, Run, Timetables, Verdict
from monitor.rules.schedule import Schedule
from monitor.rules.silence import Silencer
from monitor.rules.stages import Reason
from monitor.rules.stages.alert import alert_item
from monitor.rules.state import Batch, RuleState, Timer

NO_SILENCES = Silencer()


class Engine:
    """The rules in force, their state, and the schedules they refer to."""

    def __init__(
        self,
        rules: Sequence[Rule],
        schedules: Mapping[str, Schedule] | None = None,
        *,
        zone: tzinfo = UTC,
        state: RuleState | None = None,
        external_url: str | None = None,
    ) -> None:
        self.schedules = dict(schedules or {})
        self.zone = zone
        self.external_url = external_url
        """Where people reach the page: templates' `story_url` is under it."""
        self.state = state or RuleState()
        self.rules: list[Rule] = []
        self._put_in_force(rules)

    # --- configuration

    def set_rules(self, rules: Sequence[Rule]) -> Outcome:
        """Put new rules in force; the outcome drops the state of removed or changed rules.

        A rule whose fingerprint is unchanged keeps its timers, windows and batches.
        """
        old = {r.name: r.fingerprint for r in self.rules}
        self._put_in_force(rules)
        keep = {r.name for r in self.rules if old.get(r.name, r.fingerprint) == r.fingerprint}
        return Outcome(changes=self.state.forget_rules(keep))

    def orphans(self) -> Outcome:
        """The outcome that drops the stored state of rules not in force (removed while callmon
        was down, say)."""
        return Outcome(changes=self.state.forget_rules({r.name for r in self.rules}))

    def _put_in_force(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self.by_name = {r.name: r for r in self.rules}
        self._index: dict[tuple[str, str | None], list[Rule]] = defaultdict(list)
        for rule in self.rules:
            for kind in rule.kinds:
                for to in rule.to_states or (None,):
                    self._index[(kind, to)].append(rule)
        self._candidates: dict[tuple[str, str | None], Shortlist] = {}
        self._watchers = [r for r in self.rules if r.hold_for or r.resolve]
        """Rules that keep something about a subject while it stays in their state."""

    def _run(
        self, now: datetime, silencer: Silencer, timetables: Timetables, backlog: bool = False
    ) -> Run:
        return Run(
            self.state.step(),
            now,
            self.zone,
            self.schedules,
            timetables,
            silencer,
            backlog,
            external_url=self.external_url,
        )

    # --- the two entry points

    def process(
        self,
        events: Iterable[Event],
        now: datetime,
        *,
        backlog: bool = False,
        silencer: Silencer = NO_SILENCES,
        timetables: Timetables | None = None,
    ) -> Outcome:
        """Evaluate events. With `backlog`, call alerts of each rule become one summary.

        Each matching rule's verdict on each event is in `Outcome.verdicts`; the candidates an
        event did not match are kept by reference in `Outcome.considered`, and say why only when
        asked (`Outcome.misses`): recording costs the rules nothing measurable.
        """
        verdicts: list[Verdict] = []
        considered: list[Considered] = []
        work = []
        for event in events:
            shortlist = self._shortlist(event.kind, event.to_state)
            candidates = shortlist.candidates
            matched = shortlist.match(event)
            if len(matched) < len(candidates):
                considered.append((event, candidates, matched))
            work.append((event, matched))
        if not self._watchers and not any(rules for _, rules in work):
            return Outcome(considered=considered)  # the common case: nothing matched
        run = self._run(now, silencer, timetables or {}, backlog)
        run.out.verdicts, run.out.considered = verdicts, considered
        watchers = self._watchers
        for event, rules in work:
            if watchers:
                timers.leave(run, watchers, event)
            for rule in rules:
                if rule.hold_for is None:
                    stages.fire(run, rule, event)
                else:
                    timers.start(run, rule, event)
                    waiting = f"for: {rule.hold_for:g} s must pass in this state"
                    verdicts.append(Verdict(event, rule.name, Reason.WAITING, waiting))
        if run.held:
            batches.flush_backlog(run, self.by_name)
        run.out.changes = run.step.changes
        return run.out

    def tick(
        self,
        now: datetime,
        down: Container[str] = frozenset(),
        polled: Mapping[str, float] | None = None,
        *,
        silencer: Silencer = NO_SILENCES,
        timetables: Timetables | None = None,
    ) -> Outcome:
        """Fire due timers, flush due groups and digests, forget emptied windows (see
        `timers.fire_due` for when a timer about a call may fire)."""
        run = self._run(now, silencer, timetables or {})
        run.down, run.polled = down, polled
        timers.fire_due(run, self.by_name, down, polled)
        batches.flush_due(run, self.by_name, now.timestamp())
        stages.tick(run, self.by_name)
        run.out.changes = run.step.changes
        return run.out

    def apply(self, outcome: Outcome) -> None:
        """Make a committed outcome's state changes the engine's state."""
        self.state.apply(outcome.changes)

    def preview(self, rule: Rule, event: Event) -> tuple[str, str, list[str]]:
        """The title and body `rule` sends about `event`, whatever its gates, and any template
        errors (`callmon notify test --rule`); the engine's state is left as it is."""
        run = self._run(event.at, NO_SILENCES, {})
        item = alert_item(run, rule, event, None)
        return item.title, item.body, [error for _, error in run.out.errors]

    def next_due(self) -> float | None:
        """The earliest time something waits for (a timer, a group, a digest), or None."""
        dues = [v.due for v in self.state.entries.values() if isinstance(v, Timer | Batch)]
        return min(dues) if dues else None

    # --- matching

    def generated(self) -> list[tuple[str, str]]:
        """(what, source) of every function generated for the rules in force: each candidate
        set's matcher, each `where` field's getter, each template filled from fields alone."""
        found: list[tuple[str, str]] = []
        for (kind, to), _ in sorted(self._index.items(), key=lambda item: str(item[0])):
            shortlist = self._shortlist(kind, to)
            for label, made in shortlist.generated():
                found.append((f"match {kind} → {to or 'any state'}{label}", made))
        for rule in self.rules:
            for path, (get, _) in zip(rule.where_paths, rule.where, strict=True):
                found.append((f"{rule.name}: read {path}", codegen.source(get) or ""))
            for part, fill in zip(("title", "body"), rule.fills, strict=True):
                if fill is not None:
                    found.append((f"{rule.name}: fill its {part}", codegen.source(fill) or ""))
        return [(what, made) for what, made in found if made]

    def _shortlist(self, kind: str, to: str | None) -> Shortlist:
        """The candidate rules of an event of this kind entering this state."""
        key = (kind, to)
        found = self._candidates.get(key)
        if found is None:
            chosen = {id(r) for r in self._index.get(key, ())}
            chosen |= {id(r) for r in self._index.get((key[0], None), ())}
            found = Shortlist([r for r in self.rules if id(r) in chosen])
            self._candidates[key] = found
        return found
