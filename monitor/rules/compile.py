"""One validated rule (`RuleSpec`) → a compiled `Rule`: names checked against the config, `where`
compiled into closures, templates compiled and checked; every problem found at its position."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from monitor.model import EventKind
from monitor.rules import stages
from monitor.rules.checks import unknown_fields
from monitor.rules.fields import Getter, Predicate, compile_field, compile_test, template_reader
from monitor.rules.match import KeyedWindow, Rule, RuleError
from monitor.rules.matching import index_keys
from monitor.rules.run import TIMETABLE
from monitor.rules.schema import RuleSpec, When
from monitor.rules.templates import Template, TemplateError, Templates
from monitor.text.yamldoc import Document, Loc, SourceError, SourceErrors

KNOWN_STATES = frozenset(
    {"ringing", "answered", "ended", "missed", "rejected", "failed"}
    | {"online", "offline", "up", "down"}
)
TIMER_KIND = (
    "kind: timer cannot be matched (a timer fires only for the rule that set it); "
    "write for: DURATION on a rule with state: instead"
)


@dataclass(frozen=True)
class Context:
    """What rules are checked against: the config's notifiers and providers."""

    notifiers: Collection[str] | None
    """Known notifier names; None checks none (`rules test` without a config)."""
    providers: Collection[str] | None
    provider_types: Collection[str] | None = None
    """Known provider types; None checks none."""
    templates: Templates = field(default_factory=Templates)
    schedules: Collection[str] | None = ()
    """The config's schedule names; None when there is no config (`rules test` without `-c`):
    a rule naming one then says the config is needed."""


def compile_rule(spec: RuleSpec, doc: Document, loc: Loc, context: Context) -> Rule:
    """One validated rule → `Rule`; semantic errors (unknown names, bad regex) are collected
    and raised together as `SourceErrors`."""
    return _Compiler(spec, doc, tuple(loc), context).rule()


class _Compiler:
    """Compiles one rule, collecting every problem with its position."""

    def __init__(self, spec: RuleSpec, doc: Document, loc: tuple[str | int, ...], context: Context):
        self.spec, self.doc, self.loc, self.context = spec, doc, loc, context
        self.errors: list[SourceError] = []

    def error(self, where: Loc, message: str, *, key: bool = False) -> None:
        self.errors.append(self.doc.error((*self.loc, *where), message, key=key))

    def rule(self) -> Rule:
        spec, when = self.spec, self.spec.when
        self._check_names()
        states = self._check_states()
        windows = self._windows()
        where = self._where()
        title, body, summary_title, summary_body = self._templates()
        if self.errors:
            raise SourceErrors(self.errors)
        assert title is not None
        assert body is not None
        line, col = self.doc.locate(self.loc)
        rule = Rule(
            name=spec.name,
            source=self.doc.path,
            kinds=frozenset([when.kind or EventKind.TRANSITION.value]),
            providers=_set(when.provider),
            provider_types=_set(when.provider_type),
            from_states=_from_states(when),
            to_states=_set(states),
            where=where,
            equals=self._equals(where),
            where_paths=tuple(spec.when.where),
            where_text=tuple(
                f"{name}: {json.dumps(test, default=str, separators=(', ', ': '))}"
                for name, test in spec.when.where.items()
            ),
            notify=tuple(spec.notify),
            severity=spec.severity,
            title=title,
            body=body,
            fills=(title.for_events(template_reader), body.for_events(template_reader)),
            hold_for=spec.for_,
            resolve=spec.resolve,
            threshold=windows.get("threshold"),
            throttle=windows.get("throttle"),
            group=windows.get("group"),
            during=spec.during,
            outside=spec.outside,
            quiet=spec.quiet,
            summary_title=summary_title,
            summary_body=summary_body,
            line=line,
            col=col,
            fingerprint=hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16],
            options={
                stage.name: stage.compile(spec)
                for stage in stages.STAGES
                if hasattr(stage, "compile")
            },
        )
        return dataclasses.replace(rule, stages=stages.of(rule))

    def _check_names(self) -> None:
        """Providers, provider types, notifiers and schedules the config knows."""
        spec, when, context = self.spec, self.spec.when, self.context
        for key, values, known in (
            ("provider", when.provider, context.providers),
            ("provider_type", when.provider_type, context.provider_types),
        ):
            if known is None:
                continue
            listed = isinstance(values, list)
            for i, value in enumerate(values if isinstance(values, list) else [values]):
                if value is not None and value not in known:
                    where = ("when", key, i) if listed else ("when", key)
                    self.error(where, f"unknown {key.replace('_', ' ')} {value!r}")
        for i, name in enumerate(spec.notify):
            if context.notifiers is not None and name not in context.notifiers:
                self.error(("notify", i), f"unknown notifier {name!r}")
        for key in ("during", "outside", "quiet"):
            name = getattr(spec, key)
            if context.schedules is None and name is not None and name != TIMETABLE:
                message = (
                    f"rule {spec.name!r} needs schedule {name!r}, which the config defines: "
                    "pass -c CONFIG"
                )
                self.error((key,), message)
                continue
            allowed = [*(context.schedules or ()), *([TIMETABLE] if key != "quiet" else [])]
            if name is not None and name not in allowed:
                known = ", ".join(sorted(allowed)) or "none defined"
                self.error((key,), f"unknown schedule {name!r} (known: {known})")

    def _check_states(self) -> str | list[str] | None:
        """The states the rule enters (`to`) or holds (`state`), checked."""
        spec, when = self.spec, self.spec.when
        for key, states in (("from", when.from_), ("to", when.to)):
            for value in states if isinstance(states, list) else [states]:
                if value not in (None, "none") and value not in KNOWN_STATES:
                    self.error(("when", key), f"unknown state {value!r}")
        if when.kind == EventKind.TIMER.value:
            self.error(("when", "kind"), TIMER_KIND)
        states = when.to if when.to is not None else when.state
        if spec.for_ is not None and states is None:
            self.error(("for",), "for: needs the state it waits on (to: or state:)")
        if when.to is not None and when.state is not None:
            self.error(("when", "state"), "give either to or state, not both")
        return states

    def _windows(self) -> dict[str, KeyedWindow]:
        """`threshold`, `throttle` and `group`, each a keyed window."""
        spec = self.spec
        found: dict[str, KeyedWindow] = {}
        for key, seconds, count, by in (
            ("threshold", *_window(spec.threshold, "within", "count")),
            ("throttle", *_window(spec.throttle, "every", None)),
            ("group", *_window(spec.group, "wait", "max")),
        ):
            if not count:
                continue
            getters = []
            for i, path in enumerate(by):
                try:
                    getters.append(compile_field(path, (*self.loc, key, "by", i)))
                except RuleError as exc:
                    self.errors.append(self.doc.error(exc.loc, str(exc)))
            text = {
                "threshold": f" of {count} within {seconds:g} s",
                "throttle": f"one alert per {seconds:g} s; this one is counted",
            }.get(key, "")
            found[key] = KeyedWindow(seconds, tuple(getters), count, text)
        return found

    def _where(self) -> tuple[tuple[Getter, Predicate], ...]:
        tests: list[tuple[Getter, Predicate]] = []
        for name, test in self.spec.when.where.items():
            at = (*self.loc, "when", "where", name)
            try:
                tests.append((compile_field(name, at), compile_test(test, at)))
            except RuleError as exc:
                key = exc.at_key or exc.loc == at
                self.errors.append(self.doc.error(exc.loc, str(exc), key=key))
        return tuple(tests)

    def _equals(
        self, where: tuple[tuple[Getter, Predicate], ...]
    ) -> tuple[tuple[str, Getter, frozenset[str]], ...]:
        """The `where` fields tested for equality with plain values, for the engine's index."""
        found = []
        for (name, test), (get, _) in zip(self.spec.when.where.items(), where, strict=True):
            keys = index_keys(test)
            if keys is not None:
                found.append((name, get, keys))
        return tuple(found)

    def _templates(self) -> list[Template | None]:
        """Title, body and the summary's title and body, compiled and checked."""
        spec = self.spec
        compiled: list[Template | None] = []
        for where, source in (
            (("title",), spec.title),
            (("body",), spec.body),
            (("summary", "title"), spec.summary.title),
            (("summary", "body"), spec.summary.body),
        ):
            compiled.append(None if source is None else self._template(where, source))
        return compiled

    def _template(self, where: tuple[str, ...], source: str) -> Template | None:
        line, col = self.doc.locate((*self.loc, *where))
        name = ".".join(where)
        try:
            template = self.context.templates.compile(source)
        except TemplateError as exc:
            at = line + exc.line - 1
            self.errors.append(
                SourceError(self.doc.path, at, col, f"{name}: template error: {exc}")
            )
            return None
        for offset, field_name in unknown_fields(source, summary=where[0] == "summary"):
            message = f"{name}: template reads {field_name!r}, which events never have"
            self.errors.append(SourceError(self.doc.path, line + offset - 1, col, message))
        return template


def _window(spec: Any, seconds: str, count: str | None) -> tuple[float, int, list[str]]:
    """(seconds, count, by) of a `threshold`, `throttle` or `group`; (0, 0, []) when absent."""
    if spec is None:
        return 0.0, 0, []
    return getattr(spec, seconds), getattr(spec, count) if count else 1, spec.by


def _set(value: Any) -> frozenset[Any] | None:
    if value is None:
        return None
    return frozenset(value if isinstance(value, list) else [value])


def _from_states(when: When) -> frozenset[str | None] | None:
    """`from:` as a set; `from: null` (or `none`) means a call's first event."""
    if "from_" not in when.model_fields_set:
        return None
    values = when.from_ if isinstance(when.from_, list) else [when.from_]
    return frozenset(None if v in (None, "none") else v for v in values)
