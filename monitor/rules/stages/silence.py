"""Silences (`callmon silence add`, the API, the page): an alert of a silenced rule whose event
fields match goes no further until the silence ends. Kept in the store, not in rule files. An
event past the silences counts as its rule firing (`callmon_rule_fired_total`), whether a
throttle then holds its alert back or not."""

from __future__ import annotations

from typing import Any

from monitor.rules.match import Rule
from monitor.rules.stages.base import Passage, Reason, Stop

name = "silence"
Fields = None


def applies(rule: Rule) -> bool:
    return True


def passes(run: Any, passage: Passage) -> Stop | None:
    rule = passage.rule
    if run.silencer and (silence := run.silencer.match(rule.name, passage.event, run.now)):
        run.out.silenced.append(rule.name)
        detail = f"silence {silence.id}" + (f": {silence.comment}" if silence.comment else "")
        return (SILENCED, detail, None)
    run.out.fired.append(rule.name)
    return None


SILENCED = Reason.SILENCED
