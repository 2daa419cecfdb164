"""Alert titles and bodies: Jinja2 in a sandbox, with a few helpers for calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes

from monitor.rules import codegen
from monitor.rules.bounds import MAX_OUTPUT, certain_violations
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
            return Template(self._env.from_string(tree), fields=_fields_only(tree), tree=tree)
        except TemplateSyntaxError as exc:
            raise TemplateError(exc.message or "invalid template", exc.lineno or 1) from None


Fill = Callable[[Mapping[str, Any]], str]
"""A template that only prints fields, as a function of the context (see `_fields_only`)."""

_SHADOWED = frozenset(dir(dict))
"""Names a dict answers as attributes (`{{ call.items }}` is its method in Jinja): such paths
go through Jinja."""


class _NotAField(Exception):
    """A path that reaches something other than a mapping: Jinja renders that one."""


def _fields_only(tree: nodes.Template) -> Fill | None:
    """Most alert titles (the default one too) are text and `{{ ... }}` of fields, constants
    and `or`: such a template becomes one generated function that fills the fields in, as Jinja
    prints them (a missing or None value prints nothing). None when the template uses anything
    else (a filter, a test, a block): that one renders through Jinja."""
    fill: Fill | None = _generated(tree, "context", _expression)
    return fill


EventFill = Callable[[Any, Mapping[str, Any]], str]
"""A fields-only template filled from an event's attributes and the rule's own fields (`rule`,
`severity`, `for`, `count`): no dict of the whole event is made for it."""
Reader = Callable[[str], Callable[[Any], Any] | None]
"""The reader of a dotted event field (`call.intercom.title`), or None for a name that is not
an event's leaf field (the rule's own fields, or an object like `call`)."""


def _event_fill(tree: nodes.Template, reader: Reader) -> EventFill | None:
    """`_fields_only`, reading each field from the event with `reader`; None when a field
    cannot be read that way."""
    fill: EventFill | None = _generated(
        tree, "event, fields", lambda node, names: _read(node, names, reader)
    )
    return fill


def _generated(
    tree: nodes.Template,
    params: str,
    code_of: Callable[[nodes.Node, dict[str, Any]], str | None],
) -> Any:
    """`def fill(PARAMS)` returning the template's text, each `{{ }}` as `code_of` writes it
    (None from it for any node: no function)."""
    names: dict[str, Any] = {"_step": _step}
    parts: list[str] = []
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        for node in output.nodes:
            n = len(names)
            if isinstance(node, nodes.TemplateData):
                names[f"_t{n}"] = node.data
                parts.append(f"{{_t{n}}}")
            elif (code := code_of(node, names)) is not None:
                parts.append(f"{{'' if (_v{n} := {code}) is None else _v{n}}}")
            else:
                return None
    # Texts are constants and names are identifiers: no quote or brace of the template's own
    # reaches the generated f-string.
    return codegen.function(
        "fill", [f"def fill({params}):", f'    return f"{"".join(parts)}"'], names
    )


def _read(node: nodes.Node, names: dict[str, Any], reader: Reader) -> str | None:
    """Python reading `node` from the event (or the rule's fields), as `_expression` does from
    the context."""
    if isinstance(node, nodes.Or):
        left, right = _read(node.left, names, reader), _read(node.right, names, reader)
        return None if left is None or right is None else f"({left} or {right})"
    if isinstance(node, nodes.Const):
        return _expression(node, names)
    path: list[str] = []
    while isinstance(node, nodes.Getattr):
        path.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    path.append(node.name)
    dotted = ".".join(reversed(path))
    if any(part.startswith("_") or part in _SHADOWED for part in path):
        return None
    read = reader(dotted)
    if read is not None:
        key = f"_r{len(names)}"
        names[key] = read
        return f"{key}(event)"
    if len(path) == 1:
        return f"fields.get({node.name!r})"  # the rule's own, or none at all
    return None


def _expression(node: nodes.Node, names: dict[str, Any]) -> str | None:
    """Python for a name, a dotted path, a constant, or `a or b` of those; None otherwise."""
    if isinstance(node, nodes.Name):
        return None if node.name.startswith("_") else f"context.get({node.name!r})"
    if isinstance(node, nodes.Getattr):
        inner, attr = _expression(node.node, names), node.attr
        if inner is None or attr.startswith("_") or attr in _SHADOWED:
            return None
        return f"_step({inner}, {attr!r})"
    if isinstance(node, nodes.Const) and (node.value is None or type(node.value) in (str, int)):
        key = f"_c{len(names)}"
        names[key] = node.value
        return key
    if isinstance(node, nodes.Or):
        left, right = _expression(node.left, names), _expression(node.right, names)
        return None if left is None or right is None else f"({left} or {right})"
    return None


def _step(value: Any, attr: str) -> Any:
    """`value.attr` as Jinja reads it from a mapping: missing, or on None, is None."""
    if type(value) is dict:
        return value.get(attr)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _NotAField
    return value.get(attr)


class Template:
    """A compiled template: plain text, fields printed into text, or a Jinja template."""

    __slots__ = ("_fields", "_template", "_text", "_tree")

    def __init__(
        self,
        template: Any,
        text: str = "",
        fields: Fill | None = None,
        tree: nodes.Template | None = None,
    ) -> None:
        self._template = template
        self._text = text
        self._fields = fields
        self._tree = tree

    def for_events(self, reader: Reader) -> EventFill | None:
        """This template as an `EventFill`, when it only prints fields `reader` can read."""
        if self._fields is None or self._tree is None:
            return None
        return _event_fill(self._tree, reader)

    def fill(self, fill: EventFill, event: Any, fields: Mapping[str, Any]) -> str:
        """`render` through an `EventFill` of this template (same text, same errors)."""
        try:
            text = fill(event, fields)
        except Exception as exc:
            raise RenderError(f"{type(exc).__name__}: {exc}"[:300]) from None
        if len(text) > MAX_OUTPUT:
            raise RenderError(f"BoundExceeded: output longer than {MAX_OUTPUT} characters")
        return text

    @property
    def dynamic(self) -> bool:
        """Whether rendering depends on the context (False: always `text`)."""
        return self._template is not None

    @property
    def text(self) -> str:
        """The text of a template without any `{`: what it renders to, stripped."""
        return self._text.strip()

    def render(self, context: Mapping[str, Any]) -> str:
        """The rendered text; `RenderError` when the template failed, whatever the cause (a
        bound exceeded, a sandbox violation, a filter's TypeError, a recursion).

        A template that only prints fields is filled in directly: the same text as Jinja's
        (tested side by side), without its context and sandbox costs.
        """
        if self._template is None:
            return self._text
        if self._fields is not None:
            try:
                text = self._fields(context)
            except _NotAField:
                pass
            except Exception as exc:  # a call's record that cannot be decoded, say
                raise RenderError(f"{type(exc).__name__}: {exc}"[:300]) from None
            else:
                if len(text) > MAX_OUTPUT:
                    raise RenderError(f"BoundExceeded: output longer than {MAX_OUTPUT} characters")
                return text
        try:
            return render_bounded(self._template, context)
        except Exception as exc:
            raise RenderError(f"{type(exc).__name__}: {exc}"[:300]) from None
