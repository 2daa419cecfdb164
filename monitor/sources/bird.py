"""Bird channel calls: `/workspaces/{ws}/channels/{ch}/calls`, a time window drained page by page.

Each poll asks for calls created since the high-water mark (the newest `createdAt` seen) minus an
overlap, follows `nextPageToken` to the end (the API promises no order), and fetches by id the
calls still in progress that fell out of the window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import ClassVar, Literal

import msgspec
from pydantic import Field, SecretStr

from monitor.model import Call, PollResult
from monitor.sources import records
from monitor.sources.base import (
    TrackedView,
    decode_body,
    follow_open_calls,
)
from monitor.sources.client import ApiClient
from monitor.sources.paging import Drain
from monitor.sources.plugin import Plugin
from monitor.sources.settings import ProviderSettings
from monitor.sources.webhook import (
    Received,
    WebhookSettings,
    WebhookSpec,
    decode,
    malformed,
    unauthorized,
)
from monitor.text.units import Duration

TYPE = "bird"
STATES = records.statuses(
    ringing=("accepted", "scheduled", "starting", "ringing"),
    answered=("ongoing",),
    ended=("completed",),
    missed=("no-answer", "cancelled"),
    rejected=("busy",),
    failed=("failed",),
)
DIRECTIONS = {"incoming": "in", "outgoing": "out"}
TIMES = ("createdAt", "answeredAt", "endedAt")


class BirdWebhook(WebhookSettings):
    """Bird's webhook subscription: its signing key, and the public URL Bird posts to (part of
    what is signed: taken from here, never from the request's `Host`)."""

    signing_key: SecretStr = Field(min_length=1)
    url: str = Field(pattern=r"^https?://\S+$")

    SECRETS: ClassVar[tuple[str, ...]] = ("signing_key",)


class BirdProvider(ProviderSettings):
    """Bird channel calls."""

    type: Literal["bird"]
    token: SecretStr
    workspace_id: str = Field(min_length=1)
    channel_id: str = Field(min_length=1)
    auth_scheme: Literal["AccessKey", "Bearer"] = "AccessKey"
    limit: int = Field(default=100, ge=1, le=1000)
    overlap: Duration = 300.0
    lookback: Duration = 3600.0

    webhook: BirdWebhook | None = None

    DEFAULT_PAGES: ClassVar[int] = 200
    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


class _Call(msgspec.Struct):
    id: str
    status: str
    direction: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    answeredAt: str | None = None
    endedAt: str | None = None
    to: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")


class _Pushed(msgspec.Struct):
    """A webhook body: the call as `GET …/calls/{id}` gives it, under `payload`."""

    payload: msgspec.Raw


class _Shape(msgspec.Struct):
    id: str
    status: str


class _PushShape(msgspec.Struct):
    payload: _Shape


class _Page(msgspec.Struct):
    results: list[msgspec.Raw]
    nextPageToken: str | None = None


class Bird(ApiClient[BirdProvider]):
    """A client for one Bird channel."""

    type = TYPE

    def setup(self, settings: BirdProvider) -> None:
        self._url = (
            f"{self._base}/workspaces/{settings.workspace_id}/channels/{settings.channel_id}/calls"
        )

    def headers(self, settings: BirdProvider) -> dict[str, str]:
        return {"Authorization": f"{settings.auth_scheme} {settings.token.get_secret_value()}"}

    async def poll(self, view: TrackedView) -> PollResult:
        """Drain the window since the high-water mark; follow open calls that left it.

        A window holding more pages than one poll reads is continued by the next polls from
        its `nextPageToken`; the mark moves once the window is drained.
        """
        settings = self._settings
        result = PollResult()

        def start(mark: datetime | None, now: datetime) -> datetime:
            if mark is not None:
                return mark - timedelta(seconds=settings.overlap)
            return now - timedelta(seconds=settings.lookback)

        async def page(drain: Drain) -> tuple[list[msgspec.Raw], str | None]:
            params = {"limit": settings.limit, "startAt": drain.start, "endAt": drain.end}
            if drain.token:
                params["pageToken"] = str(drain.token)
            resp = await self.http.get(self._url, params)
            found = decode_body(self.name, "call list page", resp.body, _Page)
            return found.results, found.nextPageToken or None

        seen = await self.read_window(page, view, result, mark_key="high_water", start=start)
        await follow_open_calls(
            view, seen, self._one, self.decode, result, self._skips, self._rechecks
        )
        return result

    async def _one(self, call_id: str) -> bytes | None:
        return await self.http.get_unless_gone(f"{self._url}/{call_id}")

    def decode(self, raw: bytes) -> Call:
        """One ChannelCall → `Call`; raises on a call that cannot be read."""
        rec = msgspec.json.decode(raw, type=_Call)
        times = records.call_times(TIMES, rec.createdAt, rec.answeredAt, rec.endedAt)
        return records.new_call(
            raw,
            state=records.known_state(STATES, rec.status, "status"),
            times=times,
            id=rec.id,
            raw_status=rec.status,
            direction=DIRECTIONS.get(rec.direction or ""),
            from_number=rec.from_,
            to_number=rec.to,
            marker=f"{rec.status}|{rec.updatedAt or ''}",
        )

    async def pushed(self, body: str) -> list[Call]:
        """A kept push → the call it carries (the same object the API lists)."""
        return [self.decode(msgspec.json.decode(body, type=_Pushed).payload)]


REPLAY_WINDOW = 300.0
"""A push whose signed timestamp is further than this from now is refused: a signed request
captured once cannot be replayed later (Bird signs each retry afresh)."""


def accept(settings: BirdWebhook, got: Received) -> str:
    """Verify `messagebird-signature` (base64 HMAC-SHA256 of the timestamp, the configured URL
    and the body's SHA-256, joined by newlines) in constant time and the timestamp's age, then
    check the body's shape. A retry (Bird retries for hours, each signed afresh) is accepted:
    the tracker drops a status it already has."""
    stamp = got.headers.get("messagebird-request-timestamp", "")
    signature = got.headers.get("messagebird-signature", "")
    if not stamp or not signature:
        raise unauthorized("bird push without messagebird-signature and its timestamp")
    key = settings.signing_key.get_secret_value().encode()
    signed = b"\n".join([stamp.encode(), settings.url.encode(), hashlib.sha256(got.body).digest()])
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature.strip().encode()):
        raise unauthorized("bird push with a wrong signature")
    try:
        signed_at = float(stamp)
    except ValueError:
        raise unauthorized("bird push whose messagebird-request-timestamp is not a time") from None
    if not abs(got.at - signed_at) <= REPLAY_WINDOW:
        raise unauthorized(
            f"bird push signed {got.at - signed_at:.0f} s from now: more than "
            f"{REPLAY_WINDOW:g} s (a replay?)"
        )
    shape = decode(got.body, _PushShape, "a Bird call event")
    if shape.payload.status not in STATES:
        raise malformed(f"unknown Bird call status {shape.payload.status[:40]!r}")
    return got.body.decode()


STARTER = """\
  - name: support                     # your name for it: in rules, alerts and metric labels
    type: bird
    base_url: https://api.bird.com
    token: ${BIRD_ACCESS_KEY}         # or token_file: /run/secrets/bird-key
    workspace_id: ${BIRD_WORKSPACE_ID}
    channel_id: ${BIRD_CHANNEL_ID}
    poll_interval: 5s                 # with a webhook (README "Push"), 60s is enough
"""
"""This provider in the config `callmon init` writes."""

PLUGIN = Plugin(
    TYPE,
    BirdProvider,
    Bird,
    frozenset(STATES.values()),
    webhook=WebhookSpec(BirdWebhook, accept),
    starter=STARTER,
)
