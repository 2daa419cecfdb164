"""`regex:` in rules, on RE2: matching takes time linear in the text, whatever the pattern.

Python's `re` backtracks: `^(\\+?\\d+)+$` against thirty digits and an `x` takes minutes and holds
the event loop. RE2 cannot backtrack; the price is that it refuses what only a backtracking engine
can do (backreferences, look-around), which `compile_linear` reports as a rule error. The RE2 object
is called directly: the `re2` module's `re`-compatible wrapper costs several times more per search.
"""

from __future__ import annotations

from collections.abc import Callable

import re2
from re2 import _re2

MAX_PATTERN = 1000
"""The longest pattern accepted, in characters."""
MAX_MEMORY = 1 << 20
"""The memory RE2 may use for one compiled pattern (its default is 8 MiB)."""

_SEARCH = _re2.RE2.Anchor.UNANCHORED


class RegexError(ValueError):
    """A pattern RE2 cannot run: its syntax, a backtracking-only feature, or its size."""


def compile_linear(pattern: str) -> Callable[[str], bool]:
    """A test that says whether `pattern` occurs in a text, in time linear in the text."""
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True
    options.max_mem = MAX_MEMORY
    try:
        compiled = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), options)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args else "invalid"
        raise RegexError(_explain(detail)) from None
    if not compiled.ok():
        error = compiled.error()
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        raise RegexError(_explain(text))
    match = compiled.Match

    def search(text: str) -> bool:
        data = text.encode("utf-8", "replace")
        return bool(match(_SEARCH, data, 0, len(data))[0][0] >= 0)

    return search


def _explain(detail: str) -> str:
    if "invalid perl operator" in detail or "invalid escape sequence: \\" in detail:
        return (
            f"{detail} (look-around and backreferences need a backtracking engine, which "
            "callmon does not run: it could freeze on a hostile caller id)"
        )
    return detail
