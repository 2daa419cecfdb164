"""Rule files (YAML) → compiled `Rule`s, with every error at its `file:line:col`."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor import yamldoc
from monitor.model import EventKind
from monitor.rules.checks import unknown_fields
from monitor.rules.match import (
    Getter,
    KeyedWindow,
    Predicate,
    Rule,
    RuleError,
    compile_field,
    compile_test,
)
from monitor.rules.run import TIMETABLE
from monitor.rules.schema import RuleFile, RuleSpec, When
from monitor.rules.templates import Template, TemplateError, Templates
from monitor.yamldoc import Document, SourceError, SourceErrors, validation_errors

RULE_SUFFIXES = (".yaml", ".yml")
KNOWN_STATES = frozenset(
    {
        "ringing",
        "answered",
        "ended",
        "missed",
        "rejected",
        "failed",
        "online",
        "offline",
        "up",
        "down",
    }
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
    schedules: Collection[str] = ()


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Every rule file named, or found (sorted) in the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES))
        else:
            found.append(path)
    return found


def load_rules(paths: Iterable[Path], context: Context) -> list[Rule]:
    """Load and compile every rule file; raise `SourceErrors` listing every problem found."""
    rules: list[Rule] = []
    errors: list[SourceError] = []
    names: dict[str, str] = {}
    for path in rule_files(paths):
        if not path.exists():
            errors.append(SourceError(str(path), 1, 1, "rule file or folder does not exist"))
            continue
        try:
            doc = yamldoc.load(path)
            file_rules = load_document(doc, context)
        except SourceError as exc:
            errors.append(exc)
            continue
        except SourceErrors as exc:
            errors.extend(exc.errors)
            continue
        for i, rule in enumerate(file_rules):
            if rule.name in names:
                errors.append(
                    doc.error(
                        ("rules", i, "name"),
                        f"duplicate rule name {rule.name!r} (also in {names[rule.name]})",
                    )
                )
            names[rule.name] = str(path)
            rules.append(rule)
    if errors:
        raise SourceErrors(errors)
    return rules


def load_document(doc: Document, context: Context) -> list[Rule]:
    """Validate and compile the rules of one parsed file."""
    data: Any = doc.data
    if data is None:
        return []
    if not isinstance(data, dict):
        raise SourceErrors([doc.error((), "a rule file must be a mapping with a `rules:` list")])
    try:
        spec = RuleFile.model_validate(yamldoc.plain(data))
    except ValidationError as exc:
        raise SourceErrors(validation_errors(doc, exc)) from None
    rules, errors = [], []
    for i, rule_spec in enumerate(spec.rules):
        try:
            rules.append(compile_rule(rule_spec, doc, ("rules", i), context))
        except SourceErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise SourceErrors(errors)
    return rules


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


def compile_rule(
    spec: RuleSpec, doc: Document, loc: tuple[str | int, ...], context: Context
) -> Rule:
    """One validated rule → `Rule`; semantic errors (unknown names, bad regex) are collected."""
    errors: list[SourceError] = []
    when = spec.when
    for key, values, known in (
        ("provider", when.provider, context.providers),
        ("provider_type", when.provider_type, context.provider_types),
    ):
        if known is None:
            continue
        for i, value in enumerate(values if isinstance(values, list) else [values]):
            if value is not None and value not in known:
                where = (*loc, "when", key, i) if isinstance(values, list) else (*loc, "when", key)
                errors.append(doc.error(where, f"unknown {key.replace('_', ' ')} {value!r}"))
    for key, states in (("from", when.from_), ("to", when.to)):
        for value in states if isinstance(states, list) else [states]:
            if value not in (None, "none") and value not in KNOWN_STATES:
                errors.append(doc.error((*loc, "when", key), f"unknown state {value!r}"))
    for i, name in enumerate(spec.notify):
        if context.notifiers is not None and name not in context.notifiers:
            errors.append(doc.error((*loc, "notify", i), f"unknown notifier {name!r}"))
    for key in ("during", "outside", "quiet"):
        name = getattr(spec, key)
        allowed = [*context.schedules, *([TIMETABLE] if key != "quiet" else [])]
        if name is not None and name not in allowed:
            known = ", ".join(sorted(allowed)) or "none defined"
            errors.append(doc.error((*loc, key), f"unknown schedule {name!r} (known: {known})"))
    if when.kind == EventKind.TIMER.value:
        errors.append(
            doc.error(
                (*loc, "when", "kind"),
                "kind: timer cannot be matched (a timer fires only for the rule that set it); "
                "write for: DURATION on a rule with state: instead",
            )
        )
    states = when.to if when.to is not None else when.state
    if spec.for_ is not None and states is None:
        errors.append(doc.error((*loc, "for"), "for: needs the state it waits on (to: or state:)"))
    if when.to is not None and when.state is not None:
        errors.append(doc.error((*loc, "when", "state"), "give either to or state, not both"))
    windows: dict[str, KeyedWindow] = {}
    for key, seconds, count, by in (
        (
            "threshold",
            *(
                (spec.threshold.within, spec.threshold.count, spec.threshold.by)
                if spec.threshold
                else (0.0, 0, [])
            ),
        ),
        (
            "throttle",
            *((spec.throttle.every, 1, spec.throttle.by) if spec.throttle else (0.0, 0, [])),
        ),
        (
            "group",
            *((spec.group.wait, spec.group.max, spec.group.by) if spec.group else (0.0, 0, [])),
        ),
    ):
        if not count:
            continue
        getters = []
        for i, path in enumerate(by):
            try:
                getters.append(compile_field(path, (*loc, key, "by", i)))
            except RuleError as exc:
                errors.append(doc.error(exc.loc, str(exc)))
        windows[key] = KeyedWindow(seconds, tuple(getters), count)
    tests: list[tuple[Getter, Predicate]] = []
    for field_name, test_spec in when.where.items():
        floc = (*loc, "when", "where", field_name)
        try:
            tests.append((compile_field(field_name, floc), compile_test(test_spec, floc)))
        except RuleError as exc:
            errors.append(doc.error(exc.loc, str(exc), key=exc.at_key or exc.loc == floc))
    templates: list[Template | None] = []
    for tloc, source in (
        (("title",), spec.title),
        (("body",), spec.body),
        (("summary", "title"), spec.summary.title),
        (("summary", "body"), spec.summary.body),
    ):
        if source is None:
            templates.append(None)
            continue
        line, col = doc.locate((*loc, *tloc))
        name = ".".join(tloc)
        try:
            templates.append(context.templates.compile(source))
        except TemplateError as exc:
            errors.append(
                SourceError(doc.path, line + exc.line - 1, col, f"{name}: template error: {exc}")
            )
            continue
        for offset, field_name in unknown_fields(source, summary=tloc[0] == "summary"):
            errors.append(
                SourceError(
                    doc.path,
                    line + offset - 1,
                    col,
                    f"{name}: template reads {field_name!r}, which events never have",
                )
            )
    if errors:
        raise SourceErrors(errors)
    title, body, summary_title, summary_body = templates
    assert title is not None
    assert body is not None
    return Rule(
        name=spec.name,
        source=doc.path,
        kinds=frozenset([when.kind or EventKind.TRANSITION.value]),
        providers=_set(when.provider),
        provider_types=_set(when.provider_type),
        from_states=_from_states(when),
        to_states=_set(states),
        where=tuple(tests),
        notify=tuple(spec.notify),
        severity=spec.severity,
        title=title,
        body=body,
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
        line=doc.locate(loc)[0],
        col=doc.locate(loc)[1],
        fingerprint=hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16],
    )
