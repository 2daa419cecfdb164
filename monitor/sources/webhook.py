"""What a provider's push (webhook) looks like to callmon, whatever the API: the request as
received, the provider's verdict on it, and the settings of its `webhook:` key.

A provider module that accepts pushes declares a `WebhookSpec` in its plugin: its settings and
an `accept` function that authenticates a request and checks its shape, returning the text to
keep for the leader (or a `Reply` to give at once, such as a subscription handshake), or raising
`Refused`. It never touches the store or the tracker: applying a kept push is the client's
`pushed`, run by the leader.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import msgspec
from pydantic import SecretStr

from monitor.sources.settings import Strict
from monitor.text.redaction import forms

T = TypeVar("T")
MAX_BODY = 64 * 1024
"""The largest push accepted (413 beyond)."""


class WebhookSettings(Strict):
    """The keys under a provider's `webhook:`."""

    SECRETS: ClassVar[tuple[str, ...]] = ()
    """The keys that hold secrets: each may be given as `KEY_file` instead."""

    def secrets(self) -> Iterator[str]:
        for name in self.SECRETS:
            value = getattr(self, name, None)
            if isinstance(value, SecretStr) and value.get_secret_value():
                yield from forms(value.get_secret_value())


class Refused(Exception):
    """A push refused: its HTTP status, the outcome counted, and why (nothing secret)."""

    def __init__(self, status: int, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.outcome = outcome


def unauthorized(reason: str) -> Refused:
    return Refused(401, "unauthorized", reason)


def malformed(reason: str) -> Refused:
    return Refused(400, "invalid", reason)


def decode(body: bytes, shape: type[T], what: str) -> T:
    """The body as `shape`, or a 400 that says it is not `what` (nesting too deep included)."""
    try:
        return msgspec.json.decode(body, type=shape)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise malformed(f"not {what}: {exc}") from None
    except RecursionError:
        raise malformed(f"not {what}: nested too deeply") from None


class NotYet(Exception):
    """A kept push whose call the API cannot show yet (a record published late): the leader
    tries it again for a while, and polling reads the call in any case."""


@dataclass(frozen=True)
class Received:
    """One push request as it arrived."""

    headers: Mapping[str, str]
    """Case-insensitive."""
    query: Mapping[str, str]
    body: bytes
    at: float = field(default_factory=time.time)
    """When it arrived (seconds since the epoch): a signed time is checked against it."""


@dataclass(frozen=True)
class Reply:
    """An answer given at once, with nothing kept (a handshake, an event that says nothing)."""

    status: int
    body: Any
    outcome: str


Accept = Callable[[Any, Received], "str | Reply"]
"""`(the provider's webhook settings, the request) → the text to keep, or a Reply`; raises
`Refused`."""


@dataclass(frozen=True)
class WebhookSpec:
    """What a provider type declares to take pushes."""

    settings: type[WebhookSettings]
    accept: Accept
