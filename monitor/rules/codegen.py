"""The one place callmon generates Python: a function from its source lines and the names it
uses, compiled once. Each generated function keeps its source (`source`), so that what runs can
be read (`callmon rules code` prints it). Used only where `bench/codegen_bench.py` shows it at
least twice as fast as closures."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def function(name: str, lines: list[str], names: Mapping[str, Any]) -> Callable[..., Any]:
    """`def NAME` from `lines`, with `names` its globals."""
    source = "\n".join(lines) + "\n"
    scope = dict(names)
    exec(compile(source, f"<callmon {name}>", "exec"), scope)
    made: Callable[..., Any] = scope[name]
    made.__callmon_source__ = source  # type: ignore[attr-defined]
    return made


def source(made: Callable[..., Any]) -> str | None:
    """The source a generated function was made from (None for any other)."""
    return getattr(made, "__callmon_source__", None)
