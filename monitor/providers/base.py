"""What every provider is: the small protocol, its errors, and the one HTTP helper they share.

A provider turns one API's responses into `Call` objects. The poller (monitor/poller.py) owns
timing, backoff, health and telemetry; the helper here owns the deadline of each request and the
one decision of whether a failed request is worth repeating within the same poll.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol, TypeVar

import msgspec
import structlog

from monitor.model import Call, CallState, PollResult

T = TypeVar("T")


class ProviderError(Exception):
    """A poll failed. `reason` is a short, bounded label; the message is one clear sentence."""

    reason = "error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class AuthError(ProviderError):
    """The API refused the credentials (401/403)."""

    reason = "unauthorized"


class RateLimited(ProviderError):
    """The API said to slow down (429)."""

    reason = "rate_limited"


class ServerError(ProviderError):
    """The API failed on its side (5xx)."""

    reason = "server_error"


class RequestRejected(ProviderError):
    """The API rejected the request itself (4xx other than auth and rate limits)."""

    reason = "rejected"


class BadResponse(ProviderError):
    """The response was not the documented shape (bad JSON, HTML error page, wrong fields)."""

    reason = "bad_response"


class Unreachable(ProviderError):
    """The request did not complete: timeout, refused or reset connection, DNS failure."""

    reason = "unreachable"


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
        structlog.get_logger("monitor.providers").warning(
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


class TrackedView(Protocol):
    """The tracker's knowledge a provider may read to decide how far to page."""

    @property
    def baselined(self) -> bool:
        """False until the first poll was stored: history needs no deep read then."""
        ...

    @property
    def cursor(self) -> Mapping[str, Any]:
        """The provider's own stored position (a high-water mark, say) from its last poll."""
        ...

    def knows(self, call_id: str) -> bool:
        """Whether the call is tracked (seen before, and not forgotten since)."""
        ...

    def open_calls(self) -> Iterable[str]:
        """Ids of tracked calls that are not final yet."""
        ...

    def changed(self, call: Call) -> bool:
        """Whether a fetched call is news: unknown (and not older history) or changed."""
        ...


class Provider(Protocol):
    """One call-history API."""

    name: str
    type: str

    async def poll(self, view: TrackedView) -> PollResult:
        """Fetch every call that is new or may have changed since the view was taken."""
        ...


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


def parse_times(*fields: tuple[str, str | None], zone: tzinfo = UTC) -> list[datetime | None]:
    """Several timestamps, each given as (field name, text) so that an error names its field."""
    return [parse_time(text, zone, name) for name, text in fields]


def new_call(
    raw: bytes | msgspec.Raw,
    *,
    state: CallState,
    times: Sequence[datetime | None],
    **fields: Any,
) -> Call:
    """A `Call` from a record: `times` are (created, answered, ended), the end kept only for a
    call that is over; the record itself travels along, decoded when a template reads it."""
    created, answered, ended = times
    return Call(
        state=state,
        created_at=created,
        answered_at=answered,
        ended_at=ended if state.terminal else None,
        raw=LazyJson(raw),
        **fields,
    )


CLOCK_SLACK = timedelta(seconds=60)
"""Added to a time window's end, so a provider whose clock runs ahead loses no call."""


async def follow_open_calls(
    view: TrackedView,
    seen: set[str],
    fetch: Callable[[str], Awaitable[bytes | msgspec.Raw | None]],
    decode: Callable[[bytes], Call],
    result: PollResult,
    skips: Skips,
) -> None:
    """Fetch by id (`fetch` gives the record's bytes, None for a 404) each call still in
    progress that the list did not show.

    A call the API no longer knows goes to `result.gone`; one whose record cannot be read, or
    whose request alone fails (a 5xx, a 4xx, a broken body), is skipped and reported once, and
    the rest of the poll goes on. A failure that is the provider's as a whole (credentials,
    rate limit, unreachable) fails the poll.
    """
    for call_id in view.open_calls():
        if call_id in seen:
            continue
        try:
            raw = await fetch(call_id)
        except (RequestRejected, ServerError, BadResponse) as exc:
            skips.skip(f"call {call_id}: {exc}", f"call {call_id}: {exc}", result)
            continue
        if raw is None:
            result.gone.append(call_id)
        elif (call := skips.read(decode, raw, result)) is not None:
            result.calls.append(call)


def not_after(moment: datetime | None, now: datetime, provider: str) -> datetime | None:
    """A high-water mark that never passes the present: a record dated in the future must not
    make every later call look like history."""
    if moment is None or moment <= now + CLOCK_SLACK:
        return moment
    structlog.get_logger("monitor.providers").warning(
        "record dated in the future; the poll window stays at the present",
        provider=provider,
        dated=moment.isoformat(),
    )
    return now


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as the APIs write it: `2024-12-22T02:33:25.633Z`."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def malformed(provider: str, what: str, exc: Exception, body: bytes = b"") -> BadResponse:
    """A `BadResponse` for a page that is not the documented shape."""
    html = body.lstrip()[:1] == b"<"
    detail = "an HTML page instead of JSON" if html else describe(exc)[:200]
    return BadResponse(f"provider {provider}: malformed {what}: {detail}")


def decode_body(provider: str, what: str, body: bytes, shape: type[T]) -> T:
    """A response body as `shape`; anything else (bad JSON, wrong fields, nesting too deep)
    is a `BadResponse` naming the provider and `what`."""
    try:
        return msgspec.json.decode(body, type=shape)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise malformed(provider, what, exc, body) from None
