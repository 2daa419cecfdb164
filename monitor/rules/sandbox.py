"""The template sandbox: Jinja's immutable sandbox with every size bounded (`bounds`), its
output read as a stream and cut off, and a render interrupted after `MAX_SECONDS`.

Jinja's sandbox keeps a template from reaching Python's internals, not from asking for a billion
characters: `*`, `+`, `**` and `%` go through `bounds.check_binop` (also at compile time, where
Jinja would fold a constant `'A' * 10**9`), `~` through the code generator, the filters and string
methods that take a size through their guards, and `range` is bounded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.rules.bounds import (
    GUARDED_FILTERS,
    MAX_OUTPUT,
    MAX_SECONDS,
    WIDTH_METHODS,
    BoundExceeded,
    bounded_range,
    check_binop,
    check_format,
    check_size,
    guard,
    joined_size,
    replaced_size,
    width,
)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles `a ~ b` into a call that checks the size of what it joins."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every size bounded (see the module's docstring)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name in GUARDED_FILTERS:
            self.filters[name] = guard(name, self.filters[name])
        self.filters["tojson"] = guard("tojson", self.filters["tojson"])
        self.globals["range"] = bounded_range
        for unbounded in ("lipsum", "cycler", "joiner"):
            self.globals.pop(unbounded, None)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps `str.format`
        owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
        if isinstance(owner, str):
            if name in WIDTH_METHODS:
                for arg in (*args, *kwargs.values()):
                    width(arg)
            elif name in ("format", "format_map"):
                check_format(owner)
            elif name == "join":
                check_size(joined_size(args[0] if args else [], owner), "a joined string")
            elif name == "replace":
                check_size(replaced_size(owner, *args[:3]), "a replaced string")
        return super().call(__context, __obj, *args, **kwargs)

    @staticmethod
    def bounded_concat(parts: tuple[Any, ...]) -> str:
        texts = [str(part) for part in parts]
        check_size(sum(map(len, texts)), "a concatenated string")
        return "".join(texts)


def render_bounded(template: Any, context: Any) -> str:
    """Render, stopping at `MAX_OUTPUT` characters and `MAX_SECONDS`."""
    pieces: list[str] = []
    length = 0
    with deadline(MAX_SECONDS):
        for piece in template.generate(context):
            length += len(piece)
            if length > MAX_OUTPUT:
                raise BoundExceeded(f"output longer than {MAX_OUTPUT} characters")
            pieces.append(piece)
    return "".join(pieces)


class RenderTimeout(BoundExceeded):
    """A render that took longer than `MAX_SECONDS`."""


_armed = False
_installed = False


def _interrupt(signum: int, frame: Any) -> None:
    if _armed:
        raise RenderTimeout(f"render took longer than {MAX_SECONDS:g} s")


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (a SIGALRM timer; only in the main thread, where a
    signal can be delivered; elsewhere the size bounds alone apply). The handler is installed
    once and does nothing unless a render is under way: a render costs two `setitimer` calls."""
    global _armed, _installed
    if _armed or threading.current_thread() is not threading.main_thread():
        yield
        return
    if not _installed:
        signal.signal(signal.SIGALRM, _interrupt)
        _installed = True
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
