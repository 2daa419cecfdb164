"""Alert titles and bodies: Jinja2 in a sandbox, with a few helpers for calls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError

from monitor.rules.bounds import certain_violations
from monitor.rules.sandbox import BoundedSandbox, render_bounded


class TemplateError(Exception):
    """A template that does not compile, with the 1-based line inside the template."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class RenderError(Exception):
    """A template that failed to render (a bound exceeded, a sandbox violation, a filter's
    error); the message is one line."""


def _blank_none(value: Any) -> Any:
    """`{{ x }}` of a missing value prints nothing, not `None`."""
    return "" if value is None else value


def localtime(value: Any, zone: tzinfo, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """A UTC timestamp shown in the config's timezone."""
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
    return stamp.astimezone(zone).strftime(fmt)


def duration(value: Any) -> str:
    """Seconds as `1h 2m 3s`, `45s`; None as an empty string."""
    if value is None or value == "":
        return ""
    try:
        total = round(float(value))
    except (TypeError, ValueError):
        return str(value)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes:
        parts.append(f"{minutes}m")
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts)


def mask_number(value: Any, keep: int = 4) -> str:
    """A phone number with all but its last `keep` digits hidden."""
    if value is None:
        return ""
    text = str(value)
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    hide = set(digits[: max(0, len(digits) - keep)])
    return "".join("•" if i in hide else ch for i, ch in enumerate(text))


class Templates:
    """The sandboxed environment every rule's templates compile in."""

    def __init__(self, zone: tzinfo = UTC) -> None:
        env = BoundedSandbox(
            undefined=ChainableUndefined, autoescape=False, trim_blocks=True, finalize=_blank_none
        )
        env.filters["localtime"] = lambda value, fmt="%Y-%m-%d %H:%M:%S %Z": localtime(
            value, zone, fmt
        )
        env.filters["duration"] = duration
        env.filters["mask_number"] = mask_number
        self._env = env

    def compile(self, source: str) -> Template:
        """Compile `source`; raise `TemplateError` naming the line on a syntax error, or on an
        expression certain to exceed the sandbox's bounds (`'A' * 10**9`)."""
        if "{" not in source:
            return Template(None, source)  # plain text: no need to run Jinja for it
        try:
            tree = self._env.parse(source)
            for line, problem in certain_violations(tree):
                raise TemplateError(f"exceeds the template bounds: {problem}", line)
            return Template(self._env.from_string(tree))
        except TemplateSyntaxError as exc:
            raise TemplateError(exc.message or "invalid template", exc.lineno or 1) from None


class Template:
    """A compiled template."""

    __slots__ = ("_template", "_text")

    def __init__(self, template: Any, text: str = "") -> None:
        self._template = template
        self._text = text

    def render(self, context: Mapping[str, Any]) -> str:
        """The rendered text; `RenderError` when the template failed, whatever the cause (a
        bound exceeded, a sandbox violation, a filter's TypeError, a recursion)."""
        if self._template is None:
            return self._text
        try:
            return render_bounded(self._template, context)
        except Exception as exc:
            raise RenderError(f"{type(exc).__name__}: {exc}"[:300]) from None
