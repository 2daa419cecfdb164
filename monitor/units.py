"""The units people write in config and rule files: durations (`5s`, `10m`), sizes (`32MiB`),
rates (`30/m`) and timezones, each as a pydantic type that reports a clear error."""

from __future__ import annotations

import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from `500ms`, `5s`, `10m`, `1h`, `1d` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 5s, 10m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"invalid duration {value!r}: write it as 500ms, 5s, 10m or 1h")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration: 500ms, 5s, 10m, 1h, 1d, or seconds",
        }
    ),
]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}


def parse_size(value: Any) -> int:
    """Bytes from `64KiB`, `32MiB`, `1GB` or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64KiB or 32MiB")
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"invalid size {value!r}: write it as 64KiB, 32MiB or 1GB")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return size


Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB)?$"},
                {"type": "integer", "exclusiveMinimum": 0},
            ],
            "description": "a size in bytes, or written as 64KiB, 32MiB, 1GB",
        }
    ),
]


def parse_rate(value: Any) -> float:
    """Messages per second from `1/s`, `30/m`, `100/h` or a bare number (per second)."""
    if isinstance(value, bool):
        raise ValueError("expected a rate such as 1/s or 30/m")
    if isinstance(value, int | float):
        rate = float(value)
    else:
        match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$", str(value))
        if not match:
            raise ValueError(f"invalid rate {value!r}: write it as 1/s, 30/m or 100/h")
        rate = float(match.group(1)) / _UNITS[match.group(2)]
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {value!r}")
    return rate


Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?/(s|m|h)$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "messages per second, or written as 1/s, 30/m, 100/h",
        }
    ),
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
