"""Alert titles and bodies: Jinja2 in a sandbox, with a few helpers for calls."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(Exception):
    """A template that does not compile, with the 1-based line inside the template."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


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
        env = ImmutableSandboxedEnvironment(
            undefined=ChainableUndefined, autoescape=False, trim_blocks=True
        )
        env.filters["localtime"] = lambda value, fmt="%Y-%m-%d %H:%M:%S %Z": localtime(
            value, zone, fmt
        )
        env.filters["duration"] = duration
        env.filters["mask_number"] = mask_number
        self._env = env

    def compile(self, source: str) -> Template:
        """Compile `source`; raise `TemplateError` naming the line on a syntax error."""
        if "{" not in source:
            return Template(None, source)  # plain text: no need to run Jinja for it
        try:
            return Template(self._env.from_string(source))
        except TemplateSyntaxError as exc:
            raise TemplateError(exc.message or "invalid template", exc.lineno or 1) from None


class Template:
    """A compiled template; rendering never raises."""

    __slots__ = ("_template", "_text")

    def __init__(self, template: Any, text: str = "") -> None:
        self._template = template
        self._text = text

    def render(self, context: Mapping[str, Any]) -> str:
        """The rendered text, or a note of what went wrong in place of it."""
        if self._template is None:
            return self._text
        try:
            return str(self._template.render(context))
        except Exception as exc:  # a sandbox violation or a filter's TypeError
            return f"(template error: {type(exc).__name__}: {exc})"[:300]
