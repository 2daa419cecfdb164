"""Test messages on demand (the page's Test button, `POST /api/v1/notifiers/NAME/test`): one at
a time per notifier, each URL's outcome with its secrets hidden."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from monitor.delivery.trial import Tried
from monitor.serve.auth import ApiError
from monitor.text.redaction import redactor

Trial = Callable[[], Awaitable[list[Tried]]]
"""Sends a notifier's test message through each of its URLs."""


class Trials:
    """The notifiers that can be tried, and which are being tried now."""

    def __init__(self, trials: Mapping[str, Trial] | None = None) -> None:
        self._trials = dict(trials or {})
        self._running: set[str] = set()

    @property
    def names(self) -> list[str]:
        return sorted(self._trials)

    async def run(self, name: str) -> list[Tried]:
        """Try notifier `name`: 404 for a name not configured, 409 while it is being tried."""
        trial = self._trials.get(name)
        if trial is None:
            known = ", ".join(self.names) or "none"
            raise ApiError(404, f"no notifier {name[:64]!r} (configured: {known})")
        if name in self._running:
            raise ApiError(409, f"a test of {name} is under way")
        self._running.add(name)
        try:
            return await trial()
        finally:
            self._running.discard(name)


def outcome(tried: Tried) -> dict[str, Any]:
    """One URL's outcome as JSON, secrets hidden."""
    r = tried.result
    return {
        "url": tried.number,
        "target": redactor.redact(tried.target),
        "ok": r.ok,
        "outcome": r.reason,
        "detail": redactor.redact(r.detail) if r.detail else None,
    }
