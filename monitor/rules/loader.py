"""Rule files (YAML) → compiled `Rule`s, with every error at its `file:line:col`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.rules.compile import Context, compile_rule
from monitor.rules.match import Rule
from monitor.rules.schema import RuleFile
from monitor.text import yamldoc
from monitor.text.yamldoc import Document, SourceError, SourceErrors, validation_errors

__all__ = ["Context", "load_document", "load_rules", "rule_files"]

RULE_SUFFIXES = (".yaml", ".yml")
MAX_FILES = 1000
"""The most rule files loaded at once (a folder that grows past it is an error, not a freeze)."""
MAX_TOTAL = 4 * 1024 * 1024
"""The most bytes of rule files loaded at once (each file is at most `yamldoc.MAX_BYTES`)."""


def rule_files(paths: Iterable[Path]) -> list[Path]:
    """Every rule file named, or found (sorted) in the folders named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES))
        else:
            found.append(path)
    return found


def _too_much(paths: Iterable[Path], files: list[Path]) -> SourceError | None:
    """What makes the rule files too many or too large to load, or None."""
    where = str(next(iter(paths), "rules"))
    if len(files) > MAX_FILES:
        return SourceError(where, 1, 1, f"{len(files)} rule files: at most {MAX_FILES} are loaded")
    total = 0
    for path in files:
        try:
            total += path.stat().st_size
        except OSError:
            continue  # said at its own turn
    if total > MAX_TOTAL:
        return SourceError(
            where, 1, 1, f"rule files of {total // 1024} KiB: at most {MAX_TOTAL // 1024} KiB"
        )
    return None


def load_rules(paths: Iterable[Path], context: Context) -> list[Rule]:
    """Load and compile every rule file; raise `SourceErrors` listing every problem found."""
    rules: list[Rule] = []
    errors: list[SourceError] = []
    names: dict[str, str] = {}
    paths = list(paths)
    files = rule_files(paths)
    if (problem := _too_much(paths, files)) is not None:
        raise SourceErrors([problem])
    for path in files:
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
