"""A rule that cannot be compiled: what is wrong, and where in the rule file."""

from __future__ import annotations

from collections.abc import Sequence


class RuleError(ValueError):
    """A rule that cannot be compiled; `loc` is the path of the offending value in the rule."""

    def __init__(self, message: str, loc: Sequence[str | int], *, at_key: bool = False) -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.at_key = at_key
