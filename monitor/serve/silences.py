"""A silence as people ask for it (the API's JSON, the page's form): each field checked, a 400
naming the one that is wrong."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from monitor.model import Silence
from monitor.rules.silence import parse_matcher
from monitor.serve.auth import ApiError
from monitor.text.units import parse_duration


def new_silence(body: Mapping[str, Any], rules: Collection[str], now: float) -> Silence:
    """A silence from `{rule, match, for, comment}` (the API's body, the page's form), its id 0
    until stored; a bad field is an `ApiError` (400) naming it."""
    rule = body.get("rule")
    if not isinstance(rule, str) or not rule:
        raise ApiError(400, "rule: the name of the rule to silence is required")
    if rule not in rules:
        raise ApiError(400, f"rule: unknown rule {rule[:100]!r}")
    match = body.get("match") or {}
    if not isinstance(match, dict):
        raise ApiError(400, 'match: an object of field to value: {"call.intercom.id": "1"}')
    try:
        matchers = tuple(parse_matcher(f"{field}={value}") for field, value in match.items())
        seconds = parse_duration(str(body.get("for", "")))
    except ValueError as exc:
        raise ApiError(400, str(exc).replace("--match", "match")) from None
    comment = body.get("comment", "")
    if not isinstance(comment, str):
        raise ApiError(400, "comment: text")
    return Silence(0, rule, matchers, now, now + seconds, comment[:500])


def silence_number(text: str) -> int:
    """A silence's id from a URL; a 400 unless it is a number an id can be."""
    try:
        number = int(text)
    except ValueError:
        raise ApiError(400, "a silence id is a number") from None
    if not 0 < number < 2**63:
        raise ApiError(400, "a silence id is a positive number below 2**63")
    return number
