"""What every provider is: the small protocol, its errors, and the one HTTP helper they share.

A provider turns one API's responses into `Call` objects. The poller (monitor/poller.py) owns
timing, backoff, health and telemetry; the helper here owns the deadline of each request and the
one decision of whether a failed request is worth repeating within the same poll.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import msgspec
import structlog

from monitor.model import Call, PollResult
from monitor.sources.records import Skips, describe

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
        """Ids of tracked calls that are not final yet, the oldest call first."""
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

    async def pushed(self, body: str) -> list[Call]:
        """The calls a kept push (the text its webhook's `accept` kept) tells of; raises on a
        push that cannot be read (`NoPushes` for a type that takes none)."""
        ...


class NoPushes(ProviderError):
    """A push reached a provider type that takes none (its config lost `webhook:`)."""


CLOCK_SLACK = timedelta(seconds=60)
"""Added to a time window's end, so a provider whose clock runs ahead loses no call."""


class Rechecks:
    """Which open calls the list no longer shows are fetched by id in a poll: at most `budget`,
    those re-checked longest ago first (never-checked ones first, oldest call first), so that a
    pile of open calls is worked through over several polls while every poll stays short."""

    def __init__(self, budget: int) -> None:
        self.budget = max(1, budget)
        self._round = 0
        self._checked: dict[str, int] = {}
        """Each call's last re-check, as the number of the poll that made it."""

    def pick(self, candidates: list[str]) -> tuple[list[str], int]:
        """This poll's calls to fetch, out of `candidates` (oldest call first), and how many
        wait for a later poll."""
        self._round += 1
        checked = self._checked
        if len(checked) > 2 * len(candidates) + self.budget:
            wanted = set(candidates)
            self._checked = checked = {c: n for c, n in checked.items() if c in wanted}
        order = sorted(candidates, key=lambda c: checked.get(c, 0))  # stable: oldest first
        chosen = order[: self.budget]
        for call_id in chosen:
            checked[call_id] = self._round
        return chosen, len(order) - len(chosen)


async def follow_open_calls(
    view: TrackedView,
    seen: set[str],
    fetch: Callable[[str], Awaitable[bytes | msgspec.Raw | None]],
    decode: Callable[[bytes], Call],
    result: PollResult,
    skips: Skips,
    rechecks: Rechecks,
) -> None:
    """Fetch by id (`fetch` gives the record's bytes, None for a 404) the calls still in
    progress that the list did not show, as many as `rechecks` allows this poll; the number
    left for later polls goes to `result.rechecks_waiting`.

    A call the API no longer knows goes to `result.gone`; one whose record cannot be read, or
    whose request alone fails (a 5xx, a 4xx, a broken body), is skipped and reported once, and
    the rest of the poll goes on. A failure that is the provider's as a whole (credentials,
    rate limit, unreachable) fails the poll.
    """
    chosen, result.rechecks_waiting = rechecks.pick([c for c in view.open_calls() if c not in seen])
    for call_id in chosen:
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
    structlog.get_logger("monitor.sources").warning(
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
