"""`callmon run --record FILE.jsonl`: every event, one JSON line each, rotated by size.

A line is `{"event": {...}, "backlog": false}`; `callmon rules test` replays these files. The
call's untouched payload travels along (`call.raw`), so templates that read it replay too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from monitor.model import Event
from monitor.text.redaction import redactor

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_BACKUPS = 3


class Recorded(msgspec.Struct):
    """One line of a recording."""

    event: Event
    backlog: bool = False


def _plain(obj: Any) -> Any:
    """msgspec's hook for what it cannot encode itself: the lazily decoded `call.raw`."""
    if hasattr(obj, "keys"):
        return dict(obj)
    raise NotImplementedError(type(obj).__name__)


_ENCODER = msgspec.json.Encoder(enc_hook=_plain)


class Recorder:
    """Appends events to a file; at `max_bytes` it rotates to FILE.1, FILE.2, … (`backups`)."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        redact: Callable[[str], str] = redactor.redact,
    ) -> None:
        self.path = Path(path)
        self._redact = redact
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: IO[bytes] = self.path.open("ab")

    def record(self, event: Event, backlog: bool = False) -> None:
        """Append one event (flushed at once: a crash loses nothing already recorded)."""
        text = _ENCODER.encode(Recorded(event, backlog)).decode()
        line = self._redact(text).encode() + b"\n"  # a record may echo a secret
        if self._file.tell() + len(line) > self.max_bytes and self._file.tell() > 0:
            self._rotate()
        self._file.write(line)
        self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = self.path.open("ab")

    def close(self) -> None:
        self._file.close()


class RecordingError(ValueError):
    """A line of a recording that is not a recorded event."""


def read(path: str | Path) -> Iterator[Recorded]:
    """The events of a recording, in file order; a bad line raises `RecordingError` naming it."""
    decoder = msgspec.json.Decoder(Recorded)
    with Path(path).open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise RecordingError(f"{path}:{number}:1: not a recorded event: {exc}") from None
