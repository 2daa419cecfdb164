"""Silences (`callmon silence add`, the API, the page): an alert of a silenced rule whose event
fields match goes no further until the silence ends. Kept in the store, not in rule files."""

from __future__ import annotations

from typing import Any

from monitor.rules.match import Rule
from monitor.rules.stages.base import Passage, Reason, Stop

name = "silence"
Fields = None


def applies(rule: Rule) -> bool:
    return True


def passes(run: Any, passage: Passage) -> Stop | None:
    if not run.silencer:
        return None
    rule = passage.rule
    silence = run.silencer.match(rule.name, passage.event, run.now)
    if silence is None:
        return None
    run.out.silenced.append(rule.name)
    detail = f"silence {silence.id}" + (f": {silence.comment}" if silence.comment else "")
    return Stop(Reason.SILENCED, detail)
