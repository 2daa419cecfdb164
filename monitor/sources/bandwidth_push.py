"""Bandwidth's callbacks (pushes): the credentials the application's callback URL carries, the
v1 and v2 call events, and the canonical state each reports, as the poll would read the call
then. Part of the `bandwidth` provider (`monitor.sources.bandwidth`)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator
from typing import ClassVar

import msgspec
from pydantic import Field, SecretStr

from monitor.model import CallState
from monitor.sources.webhook import Received, Reply, WebhookSettings, decode, unauthorized
from monitor.text.redaction import basic_forms


class BandwidthWebhook(WebhookSettings):
    """The credentials put in the application's callback URL (`https://USER:PASSWORD@…`): Bandwidth
    sends them as HTTP Basic; it signs nothing."""

    username: str = Field(min_length=1)
    password: SecretStr = Field(min_length=1)

    SECRETS: ClassVar[tuple[str, ...]] = ("password",)

    def secrets(self) -> Iterator[str]:
        yield from super().secrets()
        yield from basic_forms(self.username, self.password.get_secret_value())


class Pushed(msgspec.Struct):
    """A callback event, v1 (`time`, `callState`) or v2 (`eventTime`, `startTime`, …)."""

    eventType: str
    callId: str
    callState: str | None = None
    time: str | None = None
    eventTime: str | None = None
    startTime: str | None = None
    answerTime: str | None = None
    endTime: str | None = None
    cause: str | None = None
    direction: str | None = None
    to: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")


PUSH_TIMES = ("startTime", "answerTime", "endTime")
CALL_EVENTS = frozenset({"incomingcall", "answer", "hangup", "timeout", "initiate", "disconnect"})
"""The events about a call's state (v1 and v2); others (playback, DTMF, …) are ignored."""
BUSY = frozenset({"USER_BUSY", "CALL_REJECTED", "busy", "rejected"})
UNANSWERED = frozenset({"NO_ANSWER", "ORIGINATOR_CANCEL", "timeout", "cancel"})


def pushed_state(event: Pushed) -> CallState:
    """The canonical state a callback event reports, as the poll would read the call then."""
    kind, cause = event.eventType, event.cause or ""
    if kind in ("incomingcall", "initiate"):
        return CallState.RINGING
    if kind == "answer":
        return CallState.ANSWERED
    if kind == "timeout" or cause in UNANSWERED:
        return CallState.MISSED
    if cause in BUSY or event.callState == "rejected":
        return CallState.REJECTED
    if cause in ("NORMAL_CLEARING", "hangup"):
        answered = kind == "hangup" or event.answerTime is not None
        return CallState.ENDED if answered else CallState.MISSED
    return CallState.FAILED


def accept(settings: BandwidthWebhook, got: Received) -> str | Reply:
    """HTTP Basic with the configured credentials (compared in constant time), then the shape
    of a call event; events about anything else are answered and ignored."""
    scheme, _, encoded = got.headers.get("Authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        user, password = "", ""
    wanted = settings.password.get_secret_value()
    ok_user = hmac.compare_digest(user.encode(), settings.username.encode())
    ok_password = hmac.compare_digest(password.encode(), wanted.encode())
    if scheme.lower() != "basic" or not (ok_user and ok_password):
        raise unauthorized("bandwidth push without the callback's credentials")
    event = decode(got.body, Pushed, "a Bandwidth call event")
    if event.eventType not in CALL_EVENTS:
        return Reply(200, {"status": "ignored"}, "ignored")
    return got.body.decode()
