"""The CINNOX call-log: `/v1/api/apps/{appID}/data/call-log`, a sliding window of final records.

A record appears only once its call is over, sometimes late, so each poll reads the window from
the newest `callDate` seen minus a lookback, `offset += limit` until a short page. Every record
is final: a new one is one event from nothing straight to its final state.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

import msgspec
from pydantic import Field, SecretStr

from monitor.model import Call, CallState, PollResult
from monitor.sources import records
from monitor.sources.base import (
    RequestRejected,
    TrackedView,
    decode_body,
    iso,
)
from monitor.sources.client import ApiClient
from monitor.sources.paging import Drain
from monitor.sources.plugin import Plugin
from monitor.sources.settings import ProviderSettings
from monitor.sources.webhook import (
    NotYet,
    Received,
    Reply,
    WebhookSettings,
    WebhookSpec,
    decode,
    malformed,
    unauthorized,
)
from monitor.text.units import Duration

TYPE = "cinnox"
STATES = records.statuses(
    ended=("Call Ended",),
    missed=("Not Answered", "Cancelled", "Abandoned"),
    rejected=("Declined", "Busy"),
    failed=("Unreachable", "Call Failed"),
)


class CinnoxWebhook(WebhookSettings):
    """The call event subscription's secret: callmon's URL is `/hooks/NAME?token=TOKEN` (CINNOX
    signs nothing)."""

    token: SecretStr = Field(min_length=8)

    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


class CinnoxProvider(ProviderSettings):
    """The CINNOX call-log."""

    type: Literal["cinnox"]
    token: SecretStr
    app_id: str = Field(min_length=1)
    limit: int = Field(default=500, ge=1, le=500)
    lookback: Duration = 1800.0

    webhook: CinnoxWebhook | None = None

    DEFAULT_RPS: ClassVar[float] = 5.0
    DEFAULT_PAGES: ClassVar[int] = 200
    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


class _Caller(msgspec.Struct):
    phoneNumber: str | int | None = None


class _Record(msgspec.Struct):
    hid: str
    status: str
    callID: str | None = None
    callDate: str | None = None
    callEndTime: str | None = None
    callDuration: float | None = None
    virtualNumber: str | int | None = None
    callerInfo: _Caller | None = None


class _Message(msgspec.Struct):
    id: str
    status: str


class _Event(msgspec.Struct):
    message: _Message | None = None
    challenge: str | None = None


class _Body(msgspec.Struct):
    code: int = 0
    message: str | None = None
    result: list[msgspec.Raw] | None = None


class Cinnox(ApiClient[CinnoxProvider]):
    """A client for one CINNOX app."""

    type = TYPE

    def setup(self, settings: CinnoxProvider) -> None:
        self._url = f"{self._base}/v1/api/apps/{settings.app_id}/data/call-log"

    def headers(self, settings: CinnoxProvider) -> dict[str, str]:
        return {"Authorization": f"Bearer {settings.token.get_secret_value()}"}

    async def poll(self, view: TrackedView) -> PollResult:
        """Read the window [newest callDate - lookback, now] page by page.

        A window holding more pages than one poll reads is continued by the next polls from the
        offset reached; the mark moves once the window is drained.
        """
        settings = self._settings
        result = PollResult()

        def start(mark: datetime | None, now: datetime) -> datetime:
            return (mark or now) - timedelta(seconds=settings.lookback)

        async def page(drain: Drain) -> tuple[list[msgspec.Raw], int | None]:
            offset, limit = int(drain.token or 0), settings.limit
            params = {"startAt": drain.start, "endAt": drain.end, "offset": offset, "limit": limit}
            try:
                resp = await self.http.get(self._url, params)
            except RequestRejected as exc:
                message = str(exc).replace("request rejected", "API error")
                raise RequestRejected(message, status=exc.status) from None
            body = decode_body(self.name, f"call-log page at offset {offset}", resp.body, _Body)
            if body.code != 0:
                message = (body.message or "no message")[:200]
                raise RequestRejected(f"provider {self.name}: API error {body.code}: {message}")
            records = body.result or []
            return records, (offset + limit if len(records) >= limit else None)

        await self.read_window(
            page, view, result, mark_key="last_call_date", start=start, first_token=0
        )
        return result

    async def pushed(self, body: str) -> list[Call]:
        """`CallEnd` → the call's final record, read from the call log at once (the push carries
        no outcome); `NotYet` while the log does not show it. `CallStart` tells nothing the
        log will not (CINNOX records only finished calls)."""
        message = msgspec.json.decode(body, type=_Event).message
        if message is None or message.status != "CallEnd":
            return []
        settings, now = self._settings, datetime.now(UTC)
        window = {"startAt": iso(now - timedelta(seconds=settings.lookback)), "endAt": iso(now)}
        offset = 0
        for _ in range(settings.page_budget):
            params = {**window, "offset": offset, "limit": settings.limit}
            resp = await self.http.get(self._url, params)
            found = decode_body(self.name, "call-log page", resp.body, _Body).result or []
            for raw in found:
                rec = msgspec.json.decode(raw, type=_Record)
                if message.id in (rec.callID, rec.hid):
                    return [self.decode(raw)]
            if len(found) < settings.limit:
                break
            offset += settings.limit
        raise NotYet(f"call {message.id} is not in the call log yet")

    def decode(self, raw: bytes) -> Call:
        """One call-log record → a final `Call`; raises on a record that cannot be read."""
        rec = msgspec.json.decode(raw, type=_Record)
        state = records.known_state(STATES, rec.status, "status")
        created = records.parse_time(rec.callDate, field="callDate")
        ended = records.parse_time(rec.callEndTime, field="callEndTime")
        answered = None
        if state is CallState.ENDED and ended is not None and rec.callDuration is not None:
            try:
                answered = ended - timedelta(seconds=rec.callDuration)
            except (OverflowError, ValueError):
                raise ValueError(f"callDuration: out of range: {rec.callDuration!r}") from None
        caller = rec.callerInfo.phoneNumber if rec.callerInfo else None
        return records.new_call(
            raw,
            state=state,
            times=(created, answered, ended),
            id=rec.hid,
            raw_status=rec.status,
            from_number=None if caller is None else str(caller),
            to_number=None if rec.virtualNumber is None else str(rec.virtualNumber),
            marker=rec.status,
        )


def accept(settings: CinnoxWebhook, got: Received) -> str | Reply:
    """The secret token of callmon's URL (compared in constant time); the subscription's
    `{challenge}` answered as CINNOX expects; a call event kept."""
    token = got.query.get("token", "")
    if not hmac.compare_digest(token.encode(), settings.token.get_secret_value().encode()):
        raise unauthorized("cinnox push without the subscription's token")
    event = decode(got.body, _Event, "a CINNOX call event")
    if event.challenge is not None:
        return Reply(200, {"code": 0, "result": {"challenge": event.challenge}}, "challenge")
    if event.message is None or event.message.status not in ("CallStart", "CallEnd"):
        raise malformed("not a CINNOX call event: no message with CallStart or CallEnd")
    return got.body.decode()


STARTER = """\
  - name: contact-centre              # your name for it: in rules, alerts and metric labels
    type: cinnox
    base_url: ${CINNOX_BASE_URL}      # your CINNOX API host, such as https://example.cinnox.com
    app_id: ${CINNOX_APP_ID}
    token: ${CINNOX_TOKEN}            # or token_file: /run/secrets/cinnox-token
    poll_interval: 10s                # CINNOX lists only finished calls
"""
"""This provider in the config `callmon init` writes."""

PLUGIN = Plugin(
    TYPE,
    CinnoxProvider,
    Cinnox,
    frozenset(STATES.values()),
    webhook=WebhookSpec(CinnoxWebhook, accept),
    final_only=True,
    starter=STARTER,
)
