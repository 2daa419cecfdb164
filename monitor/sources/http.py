"""The one HTTP helper every provider uses: a deadline on each request, the single decision of
whether a failed request is repeated within the poll, and HTTP errors mapped to `ProviderError`s.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from monitor.sources.base import (
    AuthError,
    BadResponse,
    ProviderError,
    RateLimited,
    RequestRejected,
    ServerError,
    Unreachable,
)
from monitor.sources.connection import failure, tls_context
from monitor.sources.settings import ProviderSettings

Params = Mapping[str, Any] | Sequence[tuple[str, str]] | None
"""Query parameters: a mapping, or pairs for repeated keys (`ids[]=1&ids[]=2`)."""

RequestObserver = Callable[[str], None]
"""Called once per HTTP request with its status code, or `error` when none came back."""


@dataclass(frozen=True, slots=True)
class Response:
    """A completed HTTP response: status, headers, body bytes, and its `rel="next"` link."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    next_url: str | None = None


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
        max_body: int = 32 * 1024 * 1024,
    ) -> None:
        self._session = session
        self._provider = provider
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = dict(headers)
        self._observe = observe or (lambda code: None)
        self._ssl = ssl
        self._min_interval = min_interval
        self._max_body = max_body
        self._next_slot = 0.0
        self.requests = 0
        self.keep_last = False
        """Whether to keep `last` (`callmon probe` does; the daemon does not: ten thousand
        providers' last headers would be ten thousand dicts the collector walks)."""
        self.last: Response | None = None
        """With `keep_last`, the last response that came back, whatever its status (`callmon
        probe` reads its status, `Date` and rate-limit headers)."""

    @classmethod
    def for_provider(
        cls,
        settings: ProviderSettings,
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
            max_body=settings.max_response_size,
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

    def set_header(self, name: str, value: str) -> None:
        """Change a header of every later request (a renewed token)."""
        self._headers[name] = value

    async def post_json(self, url: str, body: Mapping[str, Any]) -> Response:
        """POST a JSON body once (logins are not repeated within a poll)."""
        return await self._once("POST", url, None, dict(body))

    async def get_unless_gone(self, url: str) -> bytes | None:
        """GET one record's body; None when the API says it does not exist (404)."""
        try:
            return (await self.get(url)).body
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

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        """The body, read in chunks up to `max_body`: a larger one fails the request before
        it can fill the memory."""
        limit = self._max_body
        if resp.content_length is not None and resp.content_length > limit:
            self._observe(str(resp.status))
            raise self._too_large()
        chunks, total = [], 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            total += len(chunk)
            if total > limit:
                self._observe(str(resp.status))
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> BadResponse:
        size = f"{self._max_body / 1024 / 1024:g} MiB"
        return BadResponse(
            f"provider {self._provider}: response larger than {size} (max_response_size); refused"
        )

    async def _get_once(self, url: str, params: Params) -> Response:
        return await self._once("GET", url, params, None)

    async def _once(
        self, method: str, url: str, params: Params, body: Mapping[str, Any] | None
    ) -> Response:
        """One request under the deadline and the request budget; never follows a redirect."""
        await self._pace()
        self.requests += 1
        name = self._provider
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=body,
                headers=self._headers,
                timeout=self._timeout,
                ssl=self._ssl,
                allow_redirects=False,
            ) as resp:
                data = await self._read(resp)
                headers = {k.lower(): v for k, v in resp.headers.items()}
                link = resp.links.get("next")
                next_url = str(link["url"]) if link else None
        except TimeoutError:
            self._observe("error")
            raise Unreachable(
                f"provider {name}: no response within {self._timeout.total:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            self._observe("error")
            raise Unreachable(f"provider {name}: {failure(exc)}") from None
        finally:
            self._next_slot = time.monotonic() + self._min_interval
        self._observe(str(resp.status))
        if self.keep_last:
            self.last = Response(resp.status, headers, b"", next_url)
        return _check(name, resp.status, headers, data, next_url)


def _check(
    name: str, status: int, headers: Mapping[str, str], body: bytes, next_url: str | None = None
) -> Response:
    """Map an HTTP status to a `Response` or the right `ProviderError`."""
    if 200 <= status < 300:
        return Response(status, headers, body, next_url)
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
            if isinstance(reasons, list) and reasons and reasons[0] != message:
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
