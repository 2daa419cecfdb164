"""Who may change things through the API and the page: the configured `api_token`, compared in
constant time, and a budget of wrong tokens per client address (`Guesses`)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable


class ApiError(Exception):
    """An answer other than success: its status and the message of its JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Guesses:
    """Wrong tokens, per client address: an address may be wrong `burst` times at once, then
    once every `every` seconds; past that its changes are refused (429) without the token being
    looked at, so that guessing it takes ages. The addresses remembered are bounded."""

    def __init__(
        self,
        burst: int = 5,
        every: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        size: int = 10_000,
    ) -> None:
        self._burst, self._every, self._clock, self._size = burst, every, clock, size
        self._levels: dict[str, tuple[float, float]] = {}
        """Per address: the guesses it has left, and when that was reckoned."""

    def _level(self, client: str) -> float:
        level, since = self._levels.get(client, (float(self._burst), self._clock()))
        return min(float(self._burst), level + (self._clock() - since) / self._every)

    def wait(self, client: str) -> float:
        """Seconds before `client` may try a token again (0: now)."""
        return max(0.0, (1.0 - self._level(client)) * self._every)

    def wrong(self, client: str) -> None:
        """`client` gave a wrong token."""
        level = self._level(client) - 1.0
        self._levels.pop(client, None)  # the newest last: the oldest are forgotten first
        self._levels[client] = (level, self._clock())
        if len(self._levels) > self._size:
            del self._levels[next(iter(self._levels))]


def authorize(token: bytes | None, given: str | None, guesses: Guesses, client: str) -> None:
    """Let a change through when `given` is the configured token (compared in constant time),
    unless `client` has guessed wrong too often lately."""
    if token is None:
        raise ApiError(403, "the API is read-only: set api_token in the config to change")
    wait = guesses.wait(client)
    if wait > 0:
        raise ApiError(429, f"too many wrong tokens from this address; try again in {wait:.0f} s")
    if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), token):
        guesses.wrong(client)
        raise ApiError(401, "a change needs Authorization: Bearer with the api_token")
