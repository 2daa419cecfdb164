"""Counted: every event that got past the silences is counted as its rule firing
(`callmon_rule_fired_total`), whether a throttle then holds its alert back or not."""

from __future__ import annotations

from typing import Any

from monitor.rules.match import Rule
from monitor.rules.stages.base import Passage, Stop

name = "counted"
Fields = None


def applies(rule: Rule) -> bool:
    return True


def passes(run: Any, passage: Passage) -> Stop | None:
    run.out.fired.append(passage.rule.name)
    return None
