"""Rule files (YAML) → compiled `Rule`s, with every error at its `file:line:col`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor import yamldoc
from monitor.rules.compile import Context, compile_rule
from monitor.rules.match import Rule
from monitor.rules.schema import RuleFile
from monitor.yamldoc import Document, SourceError, SourceErrors, validation_errors

__all__ = ["Context", "load_document", "load_rules", "rule_files"]

RULE_SUFFIXES = (".yaml", ".yml")


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
