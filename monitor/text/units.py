"""The units people write in config and rule files: durations (`5s`, `10m`), sizes (`32MiB`),
rates (`30/m`) and timezones, each as a pydantic type that reports a clear error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, WithJsonSchema


@dataclass(frozen=True)
class _Unit:
    """A quantity written as a number and a suffix: what each suffix multiplies by."""

    name: str
    suffixes: Mapping[str | None, float]
    examples: str
    separator: str = r"\s*"
    maximum: tuple[float, str] | None = None
    """The largest quantity, and how it is written."""

    @property
    def pattern(self) -> str:
        names = "|".join(re.escape(s) for s in self.suffixes if s)
        optional = "?" if None in self.suffixes else ""
        return rf"^\s*(\d+(?:\.\d+)?){self.separator}({names}){optional}\s*$"

    def parse(self, value: Any) -> float:
        """The quantity in the base unit; a `ValueError` that says how to write one."""
        if isinstance(value, bool):
            raise ValueError(f"expected a {self.name} such as {self.examples}")
        if isinstance(value, int | float):
            number = float(value)
        else:
            match = re.match(self.pattern, str(value))
            if not match:
                raise ValueError(f"invalid {self.name} {value!r}: write it as {self.examples}")
            number = float(match.group(1)) * self.suffixes[match.group(2)]
        if number <= 0:
            raise ValueError(f"{self.name} must be positive, got {value!r}")
        if self.maximum is not None and number > self.maximum[0]:
            raise ValueError(f"a {self.name} is at most {self.maximum[1]}, got {value!r}")
        return number

    def schema(self, description: str, *, integer: bool = False) -> WithJsonSchema:
        """How editors see the type: the written form, or a positive number."""
        number: dict[str, Any] = {
            "type": "integer" if integer else "number",
            "exclusiveMinimum": 0,
        }
        if self.maximum is not None:
            number["maximum"] = self.maximum[0]
        written = {"type": "string", "pattern": self.pattern}
        return WithJsonSchema({"anyOf": [written, number], "description": description})


MAX_DURATION = 366 * 86400.0
"""Every duration a user can type (a silence, a rule's window, a retention) is at most a year:
beyond, it is a typo, and one that overflows the clocks it is added to."""
_DURATION = _Unit(
    "duration",
    {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0},
    "500ms, 5s, 10m or 1h",
    maximum=(MAX_DURATION, "366d (a year)"),
)
_SIZE = _Unit(
    "size",
    {None: 1, "B": 1, "KB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 1024**2, "GB": 1e9, "GiB": 1024**3},
    "64KiB, 32MiB or 1GB",
)
_RATE = _Unit("rate", {"s": 1.0, "m": 1 / 60, "h": 1 / 3600}, "1/s, 30/m or 100/h", r"\s*/\s*")


def parse_duration(value: Any) -> float:
    """Seconds from `500ms`, `5s`, `10m`, `1h`, `1d` or a bare number of seconds."""
    return _DURATION.parse(value)


def parse_size(value: Any) -> int:
    """Bytes from `64KiB`, `32MiB`, `1GB` or a bare number of bytes."""
    return int(_SIZE.parse(value))


def parse_rate(value: Any) -> float:
    """Messages per second from `1/s`, `30/m`, `100/h` or a bare number (per second)."""
    return _RATE.parse(value)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    _DURATION.schema("a duration: 500ms, 5s, 10m, 1h, 1d, or seconds"),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    _SIZE.schema("a size in bytes, or written as 64KiB, 32MiB, 1GB", integer=True),
]
Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    _RATE.schema("messages per second, or written as 1/s, 30/m, 100/h"),
]


def check_zone(value: str) -> str:
    """`value` when it names an IANA timezone; else a `ValueError` that says how to write one."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return value
