"""The shared HTTP helper: how long a rate limit asks to wait, and what is retried in a poll."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.sources.base import AuthError, RateLimited, ServerError, Unreachable
from monitor.sources.http import HttpClient, retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "Fri, 15 Jan 2027 08:00:30 GMT"}, 30.0),
        ({"x-ratelimit-reset": str(int((NOW + 12.5) * 1000))}, 12.5),  # epoch milliseconds
        ({"x-ratelimit-reset": str(int(NOW + 3))}, 3.0),  # epoch seconds
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    gmt = "GMT" in headers.get("retry-after", "")
    now = datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp() if gmt else NOW
    found = retry_after(headers, now=now)
    if seconds is None:
        assert found is None
    else:
        assert found == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("error", "attempt", "delay"),
    [
        (Unreachable("x"), 0, 0.25),
        (Unreachable("x"), 1, 1.0),
        (Unreachable("x"), 2, None),
        (ServerError("x", status=503), 0, 0.25),
        (ServerError("x", status=500), 0, None),
        (RateLimited("x", status=429, retry_after=2.0), 0, 2.0),
        (RateLimited("x", status=429, retry_after=2.0), 1, None),
        (RateLimited("x", status=429, retry_after=60.0), 0, None),
        (AuthError("x", status=401), 0, None),
    ],
)
def test_what_is_retried_within_a_poll(error: Exception, attempt: int, delay: float | None) -> None:
    client = HttpClient.__new__(HttpClient)
    assert client.retry_delay(error, attempt) == delay  # type: ignore[arg-type]
