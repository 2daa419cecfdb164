"""The bounds of the template sandbox, and the checks that hold them: how large a string, a list,
a number, a range or an output may get, and whether an operation or a filter's arguments would
exceed them. `certain_violations` finds the constant expressions bound to exceed, so that `check`
refuses them with their line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sized
from typing import Any

from jinja2 import nodes

MAX_SIZE = 10_000
"""The longest string, list or number of digits any one operation may produce."""
MAX_RANGE = 1000
"""The most items `range` may produce."""
MAX_OUTPUT = 16_384
"""The longest rendered text, in characters."""
MAX_SECONDS = 0.1
"""The longest a render may take."""
MAX_INT_BITS = 4096


class BoundExceeded(Exception):
    """A template asked for more than the sandbox allows."""


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def check_size(size: float, what: str) -> None:
    if size > MAX_SIZE:
        raise BoundExceeded(f"{what} would be {size:.3g} long (at most {MAX_SIZE})")


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Raise `BoundExceeded` when `left <operator> right` would be too large to make."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            length = _size(seq)
            if length is not None and isinstance(times, int):
                check_size(length * times, "a repeated sequence")
        if isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length())
    elif operator == "+":
        a, b = _size(left), _size(right)
        if a is not None and b is not None:
            check_size(a + b, "a joined sequence")
    elif operator == "**":
        if isinstance(left, int | float) and isinstance(right, int | float):
            base = abs(float(left))
            if base > 1 and right > 0:
                _check_bits(right * math.log2(base))
    elif operator == "%" and isinstance(left, str):
        check_format(left, right)


def _check_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise BoundExceeded(f"a number of about {bits:.3g} bits (at most {MAX_INT_BITS})")


_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?|\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


def check_format(text: str, args: Any = None) -> None:
    """Refuse a `%` or `{:…}` format whose width or precision would make a huge string."""
    for match in _WIDTH.finditer(text):
        for part in match.groups():
            if part == "*":
                raise BoundExceeded("a format width taken from an argument (*)")
            if part is not None and int(part) > MAX_SIZE:
                raise BoundExceeded(f"a format width of {part} (at most {MAX_SIZE})")


def bounded_range(*args: int) -> range:
    """`range`, at most `MAX_RANGE` items."""
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise BoundExceeded(f"a range of {len(found)} items (at most {MAX_RANGE})")
    return found


def width(value: Any) -> None:
    if isinstance(value, int) and value > MAX_SIZE:
        raise BoundExceeded(f"a width of {value} (at most {MAX_SIZE})")
    if isinstance(value, str):
        check_size(len(value), "an indent")


def joined_size(items: Any, separator: str = "") -> int:
    if not isinstance(items, Sized):
        items = list(items)
    check_size(len(items), "a joined list")
    return sum(len(str(item)) for item in items) + len(separator) * max(0, len(items) - 1)


def replaced_size(text: Any, old: Any, new: Any, count: int | None = None) -> int:
    text, old, new = str(text), str(old), str(new)
    hits = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def guard(name: str, filter_: Callable[..., Any]) -> Callable[..., Any]:
    """A filter with its size arguments checked before it runs."""

    # Filters that take Jinja's context, environment or eval context get it first.
    skip = 1 if getattr(filter_, "jinja_pass_arg", None) is not None else 0

    def guarded(*args: Any, **kwargs: Any) -> Any:
        value, rest = args[skip], args[skip + 1 :]
        if name in ("center", "indent", "wordwrap", "batch", "slice"):
            for arg in (*rest, *kwargs.values()):
                width(arg)
        elif name == "format":
            check_format(str(value))
        elif name == "replace":
            check_size(replaced_size(value, *rest[:3]), "a replaced string")
        elif name == "join":
            separator = rest[0] if rest else kwargs.get("d", "")
            check_size(joined_size(value, str(separator)), "a joined string")
        elif name == "tojson":
            indent = rest[0] if rest else kwargs.get("indent")
            if isinstance(indent, int) and indent > 8:
                raise BoundExceeded(f"a JSON indent of {indent} (at most 8)")
        return filter_(*args, **kwargs)

    guarded.__name__ = getattr(filter_, "__name__", name)
    guarded.__dict__.update(getattr(filter_, "__dict__", {}))  # keeps `jinja_pass_arg`
    return guarded


GUARDED_FILTERS = ("center", "indent", "wordwrap", "batch", "slice", "format", "replace", "join")
WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def certain_violations(tree: nodes.Template) -> Iterator[tuple[int, str]]:
    """(line, problem) of each constant expression bound to exceed the sandbox's bounds."""
    for node in tree.find_all((nodes.BinExpr, nodes.Filter, nodes.Call)):
        try:
            _const(node)
        except BoundExceeded as exc:
            yield node.lineno, str(exc)
        except _NotConst:
            continue


class _NotConst(Exception):
    pass


_BINOPS: dict[type[nodes.BinExpr], tuple[str, Callable[[Any, Any], Any]]] = {
    nodes.Mul: ("*", lambda a, b: a * b),
    nodes.Add: ("+", lambda a, b: a + b),
    nodes.Pow: ("**", lambda a, b: a**b),
    nodes.Mod: ("%", lambda a, b: a % b),
    nodes.Sub: ("-", lambda a, b: a - b),
}


def _const(node: nodes.Node) -> Any:
    """The value of a constant expression, evaluated within the bounds (or `_NotConst`)."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        return [_const(item) for item in node.items]
    if isinstance(node, nodes.Neg):
        return -_const(node.node)
    if isinstance(node, nodes.BinExpr) and type(node) in _BINOPS:
        operator, apply = _BINOPS[type(node)]
        left, right = _const(node.left), _const(node.right)
        check_binop(operator, left, right)
        try:
            return apply(left, right)
        except (TypeError, ValueError, ArithmeticError):
            raise _NotConst from None
    if isinstance(node, nodes.Filter) and node.name in (*GUARDED_FILTERS, "tojson"):
        value = _const(node.node) if node.node is not None else None
        args = [_const(arg) for arg in node.args]
        guard(node.name, lambda *a, **k: None)(value, *args)  # checked without a context
        raise _NotConst  # its value is not needed
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.node.name == "range":
            bounded_range(*[_const(arg) for arg in node.args])
        raise _NotConst
    raise _NotConst
