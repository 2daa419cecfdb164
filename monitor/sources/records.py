"""One record of an API → a `Call`: the vocabulary every provider's decoder speaks, and the
rule that an unreadable record is skipped alone (reported once, counted) while the poll goes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

import msgspec
import structlog

from monitor.model import TERMINAL_STATES, Call, CallState, Intercom, PollResult


class Skips:
    """Records one provider could not read: each is logged and counted once, not on every poll
    that serves it again (a bounded memory of what was reported)."""

    MEMORY = 4096

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._reported: dict[bytes, None] = {}

    def skip(self, what: bytes | str, problem: str, result: PollResult) -> None:
        """Report a record (its raw bytes, or an id) that is skipped because of `problem`."""
        data = what.encode() if isinstance(what, str) else bytes(what)
        digest = hashlib.blake2b(data, digest_size=12).digest()
        if digest in self._reported:
            return
        if len(self._reported) >= self.MEMORY:
            del self._reported[next(iter(self._reported))]
        self._reported[digest] = None
        result.skipped += 1
        structlog.get_logger("monitor.sources").warning(
            "record skipped", provider=self.provider, problem=problem[:300]
        )

    def read(
        self, decode: Callable[[bytes], Call], raw: bytes | msgspec.Raw, result: PollResult
    ) -> Call | None:
        """`decode(raw)`, or None when the record cannot be read: whatever one record makes the
        decoder raise (a wrong type, an unknown status, a date out of range, nesting too deep)
        skips that record alone. A record is known again by its id and its problem (its bytes
        change: a VMS record embeds the time it was served)."""
        try:
            return decode(raw)
        except Exception as exc:
            problem = describe(exc)
            self.skip(f"{_identity(raw)}|{problem}", problem, result)
            return None


class _Ident(msgspec.Struct):
    id: Any = None
    hid: Any = None


def _identity(raw: bytes | msgspec.Raw) -> str:
    """A record's own id (`id`, or CINNOX's `hid`), or its bytes when it has none."""
    try:
        ident = msgspec.json.decode(raw, type=_Ident)
    except (msgspec.DecodeError, RecursionError):
        ident = _Ident()
    found = ident.id if ident.id is not None else ident.hid
    if isinstance(found, str | int) and not isinstance(found, bool):
        return f"id:{found}"
    return bytes(raw).hex()[:4096]


def describe(exc: BaseException) -> str:
    """One line naming what was wrong with a record, its field when the error says it."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError | msgspec.DecodeError):
        return text
    return f"{type(exc).__name__}: {text}"


class LazyJson(Mapping[str, Any]):
    """A JSON object decoded only when a template first reads it (`call.raw`)."""

    __slots__ = ("_data", "_raw")

    def __init__(self, raw: bytes | msgspec.Raw) -> None:
        self._raw = raw
        self._data: dict[str, Any] | None = None

    def _decoded(self) -> dict[str, Any]:
        if self._data is None:
            value = msgspec.json.decode(self._raw)
            self._data = value if isinstance(value, dict) else {"value": value}
            self._raw = b""
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())


def parse_time(value: str | None, zone: tzinfo = UTC, field: str = "time") -> datetime | None:
    """An ISO 8601 timestamp as aware UTC; one without an offset is taken to be in `zone`.

    A malformed or unrepresentable one (`0001-01-01T00:00:00+01:00`) is a `ValueError` naming
    `field`.
    """
    if not value:
        return None
    try:
        if zone is UTC and len(value) == 19:  # `2022-02-04 15:53:04`: the fast, common case
            return datetime.fromisoformat(value + "+00:00")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{field}: invalid timestamp {value[:40]!r}") from None


def statuses(**by_state: tuple[str, ...]) -> dict[str, CallState]:
    """An API's statuses → canonical states, written as PROVIDERS.md's table reads: each
    canonical state (by name) with the statuses that mean it."""
    return {status: CallState(state) for state, names in by_state.items() for status in names}


def known_state(states: Mapping[str, CallState], value: str, field: str) -> CallState:
    """The canonical state of an API's status; a `ValueError` naming the field when unmapped."""
    state = states.get(value)
    if state is None:
        raise ValueError(f"{field}: unknown value {value[:40]!r}")
    return state


def call_times(
    names: tuple[str, str, str],
    created: str | None,
    answered: str | None,
    ended: str | None,
    zone: tzinfo = UTC,
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """A record's (created, answered, ended) timestamps; `names` are the API's field names, for
    the error of a malformed one."""
    return (
        parse_time(created, zone, names[0]),
        parse_time(answered, zone, names[1]),
        parse_time(ended, zone, names[2]),
    )


def new_call(
    raw: bytes | msgspec.Raw,
    *,
    id: str,
    state: CallState,
    raw_status: str,
    times: tuple[datetime | None, datetime | None, datetime | None],
    direction: str | None = None,
    from_number: str | None = None,
    to_number: str | None = None,
    intercom: Intercom | None = None,
    marker: str = "",
) -> Call:
    """A `Call` from a record: `times` are (created, answered, ended), the end kept only for a
    call that is over; the record itself travels along, decoded when a template reads it.
    (Every argument is named here, not passed on as `**fields`: that costs a microsecond a
    call, a third of decoding one.)"""
    created, answered, ended = times
    return Call(
        id,
        state,
        raw_status,
        created,
        answered,
        ended if state in TERMINAL_STATES else None,
        direction,
        from_number,
        to_number,
        intercom,
        marker,
        LazyJson(raw),
    )
