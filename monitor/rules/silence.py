"""Silences: `callmon silence add --rule NAME [--match field=value] --for 2h --comment TEXT`.

A silence keeps a rule's alerts (those whose event fields match) from being sent until it
expires. They live in the store, so the CLI adds them and a running daemon honours them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from monitor.model import Event, Silence
from monitor.rules.fields import Getter, compile_field
from monitor.rules.match import RuleError


def parse_matcher(text: str) -> tuple[str, str]:
    """`call.intercom.id=158` → ("call.intercom.id", "158"); a bad field raises ValueError."""
    field, sep, value = text.partition("=")
    if not sep or not field:
        raise ValueError(f"--match {text!r}: write it as field=value")
    try:
        compile_field(field.strip(), ())
    except RuleError as exc:
        raise ValueError(f"--match {text!r}: {exc}") from None
    return field.strip(), value


@dataclass(frozen=True)
class _Compiled:
    silence: Silence
    tests: tuple[tuple[Getter, str], ...]


class Silencer:
    """The silences in force, compiled for matching."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._by_rule: dict[str, list[_Compiled]] = {}
        for silence in silences:
            tests = tuple((compile_field(f, ()), v) for f, v in silence.matchers)
            self._by_rule.setdefault(silence.rule, []).append(_Compiled(silence, tests))

    def __bool__(self) -> bool:
        return bool(self._by_rule)

    def match(self, rule: str, event: Event, now: datetime) -> Silence | None:
        """The silence that covers this rule's alert for this event now, if any."""
        stamp = now.timestamp()
        for entry in self._by_rule.get(rule, ()):
            s = entry.silence
            if not s.starts <= stamp < s.ends:
                continue
            if all(_text(get(event)) == value for get, value in entry.tests):
                return s
        return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)
