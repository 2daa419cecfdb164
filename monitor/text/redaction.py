"""Secrets out of every text that leaves the process: logs, notifications, the outbox, probes.

A secret leaks in more shapes than the one it was configured in: inside a Basic credential
(`base64(user:password)`), URL-encoded in a query string, JSON-escaped in an error body that echoes
the request. `forms` lists the shapes of one secret, `basic_forms` those of a credential pair, and
`Redactor` masks all of them at once, longest first.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"
MIN_LENGTH = 4
"""Shorter values are not masked: masking every `ab` in a log would hide more than it protects."""


def forms(secret: str) -> Iterator[str]:
    """The shapes one secret may take in a text: itself, URL-encoded, JSON-escaped, base64."""
    if len(secret) < MIN_LENGTH:
        return
    yield secret
    yield quote(secret, safe="")
    yield quote_plus(secret)
    yield json.dumps(secret)[1:-1]
    yield base64.b64encode(secret.encode()).decode("ascii").rstrip("=")


def basic_forms(user: str, password: str) -> Iterator[str]:
    """The shapes of an HTTP Basic credential `user:password` (the header's value and its
    base64 part), beside those of the password itself."""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    yield pair
    yield pair.rstrip("=")
    yield from forms(password)


def url_forms(url: str) -> Iterator[str]:
    """The secret parts of a notifier URL (apprise's URLs carry tokens as the user, password,
    path segments or query values), beside the URL itself."""
    yield from forms(url)
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return
    if password:
        yield from forms(unquote(password))
        if user:
            yield from basic_forms(unquote(user), unquote(password))
    candidates = [user or "", *parts.path.split("/"), *re.split(r"[&=]", parts.query)]
    for part in candidates:
        token = unquote(part)
        # A token looks random: long enough, with a digit or a capital letter in it.
        if len(token) >= 8 and re.search(r"[0-9A-Z]", token):
            yield from forms(token)


class Redactor:
    """Replaces every known secret, in every known shape, by `***`. Also a structlog processor."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._pattern: re.Pattern[str] | None = None
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Replace the set of texts to mask (longest first, so overlaps mask fully)."""
        ordered = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        """`text` with every secret masked."""
        return self._pattern.sub(MASK, text) if self._pattern else text

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self._pattern is None:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.redact(value)
            elif value is not None and not isinstance(value, int | float | bool):
                text = str(value)
                masked = self.redact(text)
                if masked != text:
                    event[key] = masked
        return event


redactor = Redactor()
"""The process's redactor: the daemon and the tools load the config's secrets into it."""
