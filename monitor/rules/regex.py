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
    known: dict[str, bool] = {}

    def search(text: str) -> bool:
        # The same few values come again and again (a door's title, a line's number): each
        # short one is searched once (a bounded memory, emptied when full).
        found = known.get(text)
        if found is None:
            data = text.encode("utf-8", "replace")
            found = bool(match(_SEARCH, data, 0, len(data))[0][0] >= 0)
            if len(text) <= MEMO_LENGTH:
                if len(known) >= MEMO_SIZE:
                    known.clear()
                known[text] = found
        return found

    return search


MEMO_SIZE = 4096
"""Values whose result each regex remembers (at most `MEMO_LENGTH` characters each)."""
MEMO_LENGTH = 256


def _explain(detail: str) -> str:
    if "invalid perl operator" in detail or "invalid escape sequence: \\" in detail:
        return (
            f"{detail} (look-around and backreferences need a backtracking engine, which "
            "callmon does not run: it could freeze on a hostile caller id)"
        )
    return detail
