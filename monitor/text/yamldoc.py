"""YAML documents that remember where each value came from, so errors can say `file:line:col`."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

Loc = Sequence[str | int]


class SourceError(Exception):
    """An error in a user's file, at a 1-based line and column."""

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.path = path
        self.line = line
        self.col = col
        self.message = message


class SourceErrors(Exception):
    """Several errors found in one pass; each one is a `SourceError`."""

    def __init__(self, errors: Sequence[SourceError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class Document:
    """Parsed YAML (plain dicts, lists and scalars underneath) plus a way to locate any path."""

    path: str
    data: Any

    def locate(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """The 1-based (line, col) of the value at `loc`, or of its key when `key` is true.

        When the path does not exist (a missing field), the nearest existing parent is used.
        """
        node: Any = self.data
        line, col = 1, 1
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                pos = node.lc.key(part) if (key and last) else node.lc.value(part)
                line, col = pos[0] + 1, pos[1] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                pos = node.lc.item(part)
                line, col = pos[0] + 1, pos[1] + 1
                node = node[part]
            else:
                if isinstance(node, CommentedMap | CommentedSeq) and i == 0:
                    line, col = node.lc.line + 1, node.lc.col + 1
                break
        return line, col

    def error(self, loc: Loc, message: str, *, key: bool = False) -> SourceError:
        """A `SourceError` pointing at `loc`."""
        line, col = self.locate(loc, key=key)
        return SourceError(self.path, line, col, message)


MAX_BYTES = 1024 * 1024
"""The largest rule file read (a parse takes seconds per MiB)."""
MAX_DEPTH = 50
"""The deepest nesting of mappings and lists accepted."""
MAX_VALUES = 100_000
"""The most values a document may hold once its aliases are expanded (billion laughs)."""


def _check_bounds(text: str, path: str, max_values: int) -> None:
    """Walk the YAML event stream (no recursion, nothing built) and refuse a document nested
    too deeply or whose aliases expand past `max_values`, at the position where it happens."""
    depth = values = 0
    sizes: dict[str, int] = {}
    open_nodes: list[tuple[str | None, int]] = []
    for event in YAML(typ="rt").parse(text):
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _at(path, event, f"nested deeper than {MAX_DEPTH} levels")
            open_nodes.append((event.anchor, values))
            values += 1
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            depth -= 1
            anchor, start = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = values - start
        elif isinstance(event, ScalarEvent):
            values += 1
            _check_text(path, event)
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            values += sizes.get(event.anchor or "", 1)
        if values > max_values:
            raise _at(path, event, f"aliases expand to more than {max_values} values")


def _check_text(path: str, event: ScalarEvent) -> None:
    """An escape such as `"\\ud800"` makes a surrogate, which no UTF-8 text (a log line, an
    alert, the store) can hold: refuse it here, where its position is known. YAML, unlike JSON,
    does not join a pair of them, so the error shows the `\\U` escape to write instead."""
    value = event.value
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        pair = value[exc.start : exc.start + 2]
        try:
            char = pair.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            code = f"\\u{ord(pair[0]):04x}"
            message = f"{code} is half of a surrogate pair, not a character"
        else:
            message = f"write \\U{ord(char):08x} (or the character itself), not a surrogate pair"
        raise _at(path, event, message) from None


def _at(path: str, event: Event, message: str) -> SourceError:
    mark = event.start_mark
    return SourceError(path, mark.line + 1, mark.column + 1, f"invalid YAML: {message}")


def parse(text: str, path: str, max_values: int = MAX_VALUES) -> Document:
    """Parse YAML text; a syntax error becomes a `SourceError` at the offending position, and
    so does a document past the bounds (`MAX_DEPTH`, `max_values`)."""
    yaml = YAML(typ="rt")
    try:
        _check_bounds(text, path, max_values)
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SourceError(path, line, col, f"invalid YAML: {problem}") from None
    except YAMLError as exc:
        raise SourceError(path, 1, 1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SourceError(path, 1, 1, "invalid YAML: nested too deeply") from None
    return Document(path, data)


def load(path: str | Path, limit: int = MAX_BYTES, max_values: int = MAX_VALUES) -> Document:
    """Read and parse a YAML file of `limit` bytes and `max_values` values at most; an
    unreadable file is a `SourceError` at 1:1."""
    return parse(read_text(path, limit), str(path), max_values)


def read_text(path: str | Path, limit: int = MAX_BYTES) -> str:
    """A regular file's text, `limit` bytes at most: anything else (a FIFO, which would block
    the reader, a device such as /dev/zero, which never ends) is a `SourceError` at 1:1."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SourceError(name, 1, 1, "not a regular file")
            data = file.read(limit + 1)
    except OSError as exc:
        raise SourceError(name, 1, 1, f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SourceError(name, 1, 1, f"file is larger than {limit // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(name, 1, 1, "file is not UTF-8 text") from None


def plain(value: Any) -> Any:
    """A deep copy of parsed YAML as built-in dicts, lists and scalars."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def validation_errors(doc: Document, exc: ValidationError, prefix: Loc = ()) -> list[SourceError]:
    """pydantic's errors as `SourceError`s located in the YAML document."""
    errors = []
    for err in exc.errors(include_url=False):
        loc = _data_loc(doc.data, (*prefix, *err["loc"]))
        kind = err["type"]
        if kind == "extra_forbidden":
            where = _dotted(loc[:-1])
            message = f"unknown key {loc[-1]!r}" + (f" in {where}" if where else "")
            errors.append(doc.error(loc, message, key=True))
        elif kind == "missing":
            errors.append(doc.error(loc[:-1], f"{_dotted(loc)}: required key is missing"))
        else:
            message = err["msg"].removeprefix("Value error, ")
            if kind in ("literal_error", "enum"):
                message = f"must be {message.removeprefix('Input should be ')}"
            elif kind == "union_tag_invalid":
                ctx = err.get("ctx", {})
                message = (
                    f"unknown type {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags')})"
                )
                loc = (*loc, "type")
            elif kind == "union_tag_not_found":
                message = "type is missing"
            errors.append(doc.error(loc, f"{_dotted(loc)}: {message}"))
    return errors


def _data_loc(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop path parts pydantic adds that are not in the data (a union's tag)."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict):
            if part in node:
                out.append(part)
                node = node[part]
            elif last or not isinstance(part, str) or part in ("type",):
                out.append(part)
                node = None
            # else: a discriminator tag in pydantic's path, not a key in the data
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        else:
            out.append(part)
            node = None
    return tuple(out)


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
