"""What every provider is: the small protocol, its errors, and the one HTTP helper they share.

A provider turns one API's responses into `Call` objects. The poller (monitor/poller.py) owns
timing, backoff, health and telemetry; the helper here owns the deadline of each request and the
one decision of whether a failed request is worth repeating within the same poll.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

import aiohttp
import msgspec

from monitor.config import ProviderBase
from monitor.model import Call, CallState, Intercom


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


@dataclass(frozen=True, slots=True)
class Known:
    """What the tracker already knows about one call."""

    state: CallState
    marker: str


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

    def known(self, call_id: str) -> Known | None:
        """The stored state of a call, or None when it was never seen (or was forgotten)."""
        ...

    def open_calls(self) -> Iterable[str]:
        """Ids of tracked calls that are not final yet."""
        ...

    def changed(self, call: Call) -> bool:
        """Whether a fetched call is news: unknown (and not older history) or changed."""
        ...


@dataclass(slots=True)
class PollResult:
    """What one poll found."""

    calls: list[Call] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    intercoms: list[Intercom] = field(default_factory=list)
    skipped: int = 0
    cursor: dict[str, Any] | None = None
    """The provider's new position, stored with the poll; None leaves it as it was."""


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


Params = Mapping[str, Any] | Sequence[tuple[str, str]] | None
"""Query parameters: a mapping, or pairs for repeated keys (`ids[]=1&ids[]=2`)."""

RequestObserver = Callable[[str], None]
"""Called once per HTTP request with its status code, or `error` when none came back."""


@dataclass(frozen=True, slots=True)
class Response:
    """A completed HTTP response: status, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpClient:
    """Requests for one provider: a deadline on each, bounded retries, errors mapped to types."""

    RETRY_DELAYS = (0.25, 1.0)
    MAX_INLINE_WAIT = 5.0
    """A 429 asking for at most this many seconds is waited out within the poll."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        provider: str,
        timeout: float,
        headers: Mapping[str, str],
        observe: RequestObserver | None = None,
        ssl: Any = True,
        min_interval: float = 0.0,
    ) -> None:
        self._session = session
        self._provider = provider
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = dict(headers)
        self._observe = observe or (lambda code: None)
        self._ssl = ssl
        self._min_interval = min_interval
        self._next_slot = 0.0
        self.requests = 0

    @classmethod
    def for_provider(
        cls,
        settings: ProviderBase,
        session: aiohttp.ClientSession,
        observe: RequestObserver | None,
        headers: Mapping[str, str],
    ) -> HttpClient:
        """The client for one configured provider: its timeout, TLS setting and request budget."""
        return cls(
            session,
            provider=settings.name,
            timeout=settings.timeout,
            headers=headers,
            observe=observe,
            ssl=tls_context(settings.verify_tls),
            min_interval=1.0 / settings.request_budget,
        )

    async def get(self, url: str, params: Params = None) -> Response:
        """GET `url`, retrying within this poll what is worth retrying (`retry_delay`)."""
        attempt = 0
        while True:
            try:
                return await self._get_once(url, params)
            except ProviderError as exc:
                delay = self.retry_delay(exc, attempt)
                if delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)

    async def get_unless_gone(self, url: str) -> Response | None:
        """GET one record; None when the API says it does not exist (404)."""
        try:
            return await self.get(url)
        except RequestRejected as exc:
            if exc.status == 404:
                return None
            raise

    def retry_delay(self, exc: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before repeating a failed request within the same poll, or None.

        Timeouts, connection failures and 502/503/504 are repeated twice; a 429 whose wait is
        short is waited out once. Everything else fails the poll, and the poller backs off.
        """
        if isinstance(exc, RateLimited):
            wait = exc.retry_after if exc.retry_after is not None else 1.0
            return wait if attempt == 0 and wait <= self.MAX_INLINE_WAIT else None
        transient = isinstance(exc, Unreachable) or exc.status in (502, 503, 504)
        if transient and attempt < len(self.RETRY_DELAYS):
            return self.RETRY_DELAYS[attempt]
        return None

    async def _pace(self) -> None:
        """Keep `min_interval` between the end of one request and the start of the next."""
        wait = self._next_slot - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _get_once(self, url: str, params: Params) -> Response:
        await self._pace()
        self.requests += 1
        name = self._provider
        try:
            async with self._session.get(
                url,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
                ssl=self._ssl,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except TimeoutError:
            self._next_slot = time.monotonic() + self._min_interval
            self._observe("error")
            raise Unreachable(
                f"provider {name}: no response within {self._timeout.total:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            self._next_slot = time.monotonic() + self._min_interval
            self._observe("error")
            raise Unreachable(f"provider {name}: request failed ({type(exc).__name__})") from None
        self._next_slot = time.monotonic() + self._min_interval
        self._observe(str(resp.status))
        return _check(name, resp.status, headers, body)


def _check(name: str, status: int, headers: Mapping[str, str], body: bytes) -> Response:
    """Map an HTTP status to a `Response` or the right `ProviderError`."""
    if 200 <= status < 300:
        return Response(status, headers, body)
    detail = _api_message(body)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403, 419):
        raise AuthError(
            f"provider {name}: credentials rejected (HTTP {status}){suffix}", status=status
        )
    if status == 429:
        raise RateLimited(
            f"provider {name}: rate limited (HTTP 429)",
            status=status,
            retry_after=retry_after(headers),
        )
    if status >= 500:
        raise ServerError(
            f"provider {name}: server error (HTTP {status})",
            status=status,
            retry_after=retry_after(headers),
        )
    raise RequestRejected(
        f"provider {name}: request rejected (HTTP {status}){suffix}", status=status
    )


def _api_message(body: bytes) -> str:
    """The API's own error message from a JSON error body, shortened, or an empty string."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = []
    message = data.get("message")
    if isinstance(message, str) and message:
        parts.append(message)
    if "code" in data and data["code"] not in (0, None):
        parts.append(f"code {data['code']}")
    errors = data.get("errors")
    if isinstance(errors, dict):
        for key, reasons in list(errors.items())[:3]:
            if isinstance(reasons, list) and reasons:
                parts.append(f"{key}: {reasons[0]}")
    return "; ".join(str(p) for p in parts)[:300]


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or a date) or `X-RateLimit-Reset` (epoch)."""
    wall = time.time() if now is None else now
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - wall)
    reset = headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        stamp = int(reset.strip())
        seconds = stamp / 1000.0 if stamp > 10**11 else float(stamp)
        return max(0.0, seconds - wall)
    return None


def parse_time(value: str | None, zone: tzinfo = UTC) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC; one without an offset is taken to be in `zone`."""
    if not value:
        return None
    if zone is UTC and len(value) == 19:  # `2022-02-04 15:53:04`: the fast, common case
        return datetime.fromisoformat(value + "+00:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"invalid timestamp {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


CLOCK_SLACK = timedelta(seconds=60)
"""Added to a time window's end, so a provider whose clock runs ahead loses no call."""


async def follow_open_calls(
    view: TrackedView,
    seen: set[str],
    fetch: Callable[[str], Awaitable[Call | None]],
    result: PollResult,
) -> None:
    """Fetch by id each call still in progress that the list did not show; a call the API no
    longer knows goes to `result.gone`."""
    for call_id in view.open_calls():
        if call_id in seen:
            continue
        call = await fetch(call_id)
        if call is None:
            result.gone.append(call_id)
        else:
            result.calls.append(call)


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as the APIs write it: `2024-12-22T02:33:25.633Z`."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def malformed(provider: str, what: str, exc: Exception, body: bytes = b"") -> BadResponse:
    """A `BadResponse` for a page that is not the documented shape."""
    detail = "an HTML page instead of JSON" if body.lstrip()[:1] == b"<" else str(exc)[:200]
    return BadResponse(f"provider {provider}: malformed {what}: {detail}")


def tls_context(verify: bool | str) -> ssl.SSLContext | bool:
    """aiohttp's `ssl` argument for `verify_tls`: True, False, or a CA bundle path."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify
