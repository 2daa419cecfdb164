"""Bandwidth Catapult v1 calls: `/v1/users/{userId}/calls/`, newest first, `Link` paging.

Each poll reads pages (`sortOrder=desc`) until a call started before the high-water mark minus an
overlap, follows calls still in progress by id, and for a call that ended unanswered fetches its
`/events` once so the hangup cause travels in `call.raw`. The API allows one list request per
second; the default request budget keeps under it. Pages are asked for by their documented
`page` parameter; the `Link: rel="next"` header only says whether another page exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

import aiohttp
import msgspec
import structlog
from pydantic import Field, SecretStr
from yarl import URL

from monitor.model import Call, CallState, PollResult
from monitor.sources import records
from monitor.sources.bandwidth_push import BandwidthWebhook, Pushed, accept, pushed_state
from monitor.sources.base import (
    ProviderError,
    TrackedView,
    decode_body,
    follow_open_calls,
    iso,
    not_after,
)
from monitor.sources.client import ApiClient
from monitor.sources.paging import Page
from monitor.sources.plugin import Plugin
from monitor.sources.settings import ProviderSettings
from monitor.sources.webhook import (
    WebhookSpec,
)
from monitor.text.redaction import basic_forms
from monitor.text.units import Duration

log = structlog.get_logger("monitor.sources.bandwidth")

TYPE = "bandwidth"
TIMES = ("startTime", "activeTime", "endTime")


class BandwidthProvider(ProviderSettings):
    """Bandwidth (Catapult v1) calls."""

    type: Literal["bandwidth"]
    user_id: str = Field(min_length=1)
    api_token: SecretStr
    api_secret: SecretStr
    size: int = Field(default=100, ge=1, le=1000)
    overlap: Duration = 300.0
    lookback: Duration = 3600.0
    hangup_causes: bool = True
    webhook: BandwidthWebhook | None = None

    DEFAULT_RPS: ClassVar[float] = 1.0
    DEFAULT_PAGES: ClassVar[int] = 100
    SECRETS: ClassVar[tuple[str, ...]] = ("api_token", "api_secret")

    def secrets(self) -> Iterator[str]:
        yield from super().secrets()
        yield from basic_forms(
            self.api_token.get_secret_value(), self.api_secret.get_secret_value()
        )


class _Call(msgspec.Struct):
    id: str
    state: str
    direction: str | None = None
    startTime: str | None = None  # the API's own names
    activeTime: str | None = None
    endTime: str | None = None
    to: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")


class _Event(msgspec.Struct):
    name: str | None = None
    data: str | None = None


def canonical(state: str, answered: bool) -> CallState | None:
    """The canonical state of a Catapult call state (`completed` depends on `activeTime`)."""
    if state == "started":
        return CallState.RINGING
    if state in ("active", "transferring"):
        return CallState.ANSWERED
    if state == "completed":
        return CallState.ENDED if answered else CallState.MISSED
    if state == "rejected":
        return CallState.REJECTED
    return None


class Bandwidth(ApiClient[BandwidthProvider]):
    """A client for one Bandwidth user's calls."""

    type = TYPE

    def setup(self, settings: BandwidthProvider) -> None:
        self._url = f"{self._base}/v1/users/{settings.user_id}/calls/"
        self._origin = URL(self._url).origin()
        self._foreign_link_seen = False

    def headers(self, settings: BandwidthProvider) -> dict[str, str]:
        token, secret = settings.api_token, settings.api_secret
        credentials = aiohttp.encode_basic_auth(token.get_secret_value(), secret.get_secret_value())
        return {"Authorization": credentials}

    async def poll(self, view: TrackedView) -> PollResult:
        """Newest first down to the high-water mark minus the overlap; then open calls, causes."""
        now = datetime.now(UTC)
        mark = records.parse_time(view.cursor.get("high_water"), field="high_water")
        if mark is not None:
            floor = mark - timedelta(seconds=self._settings.overlap)
        else:
            floor = now - timedelta(seconds=self._settings.lookback)
        result, size = PollResult(), self._settings.size

        async def page(number: int) -> Page:
            return await self._page(number, result)

        stamp = None if mark is None else mark.timestamp()
        read = await self.read_newest_first(
            page, view, first=0, key=_start_key, mark=stamp, stop=floor.timestamp(), per_page=size
        )
        for call in read.calls:
            if call.id not in read.at_or_under_stop or view.knows(call.id):
                result.calls.append(call)  # older unknown calls are history from before
        seen = {call.id for call in read.calls}
        await follow_open_calls(
            view, seen, self._one, self.decode, result, self._skips, self._rechecks
        )
        if self._settings.hangup_causes and view.baselined:
            result.calls = [await self._with_cause(c, view, result) for c in result.calls]
        starts = [c.created_at for c in result.calls if c.created_at is not None]
        newest = not_after(max([*starts, *([mark] if mark else [])], default=None), now, self.name)
        result.cursor = {"high_water": iso(newest)} if newest else dict(view.cursor)
        result.cursor.pop("backfill", None)
        if read.backfill is not None:
            result.cursor["backfill"] = read.backfill
        return result

    async def _page(self, number: int, result: PollResult) -> Page:
        params = {"page": number, "size": self._settings.size, "sortOrder": "desc"}
        resp = await self.http.get(self._url, params)
        records = decode_body(
            self.name, f"call list page {number + 1}", resp.body, list[msgspec.Raw]
        )
        calls = [c for raw in records if (c := self._skips.read(self.decode, raw, result))]
        more = resp.next_url is not None and bool(records)
        if more and URL(resp.next_url or "").origin() != self._origin:
            # Pages are read by their documented `page` parameter on the configured API, so
            # credentials never go where a link points; a link elsewhere is only reported.
            if not self._foreign_link_seen:
                log.warning(
                    "next-page link points to another host; not followed",
                    provider=self.name,
                    host=URL(resp.next_url or "").host,
                )
            self._foreign_link_seen = True
        return Page(calls, more=more)

    async def _with_cause(self, call: Call, view: TrackedView, result: PollResult) -> Call:
        """The call with its hangup cause in `raw`, when it just ended unanswered.

        The cause is a detail: when its request fails or its body is unreadable, the call goes
        on without it (reported once).
        """
        if call.state not in (CallState.MISSED, CallState.REJECTED) or not view.changed(call):
            return call
        try:
            resp = await self.http.get(f"{self._url}{call.id}/events")
            events = decode_body(self.name, f"events of call {call.id}", resp.body, list[_Event])
        except ProviderError as exc:
            problem = f"hangupCause of call {call.id}: {exc}"
            self._skips.skip(problem, problem, result)
            return call
        cause = next((e.data for e in events if e.name == "hangup" and e.data), None)
        if cause is None:
            return call
        return msgspec.structs.replace(call, raw={**call.raw, "hangupCause": cause})

    async def _one(self, call_id: str) -> bytes | None:
        return await self.http.get_unless_gone(f"{self._url}{call_id}")

    async def pushed(self, body: str) -> list[Call]:
        """A kept callback event → the call's new state; the hangup cause goes where the poll
        puts it (`call.raw.hangupCause`), so that rules read it the same way."""
        event = msgspec.json.decode(body, type=Pushed)
        state = pushed_state(event)
        at = event.time or event.eventTime
        created = event.startTime or (at if state is CallState.RINGING else None)
        answered = event.answerTime or (at if state is CallState.ANSWERED else None)
        ended = event.endTime or (at if state.terminal else None)
        raw = json.loads(body)
        if event.cause:
            raw["hangupCause"] = event.cause
        return [
            records.new_call(
                json.dumps(raw).encode(),
                state=state,
                times=records.call_times(
                    ("startTime", "answerTime", "endTime"), created, answered, ended
                ),
                id=event.callId,
                raw_status=event.callState or event.eventType,
                direction=event.direction if event.direction in ("in", "out") else None,
                from_number=event.from_,
                to_number=event.to,
                marker=f"push|{event.eventType}|{at or ''}",
            )
        ]

    def decode(self, raw: bytes) -> Call:
        """One Catapult call → `Call`; raises on a call that cannot be read."""
        rec = msgspec.json.decode(raw, type=_Call)
        state = canonical(rec.state, rec.activeTime is not None)
        if state is None:
            raise ValueError(f"state: unknown value {rec.state[:40]!r}")
        times = records.call_times(TIMES, rec.startTime, rec.activeTime, rec.endTime)
        return records.new_call(
            raw,
            state=state,
            times=times,
            id=rec.id,
            raw_status=rec.state,
            direction=rec.direction if rec.direction in ("in", "out") else None,
            from_number=rec.from_,
            to_number=rec.to,
            marker=f"{rec.state}|{rec.activeTime or ''}|{rec.endTime or ''}",
        )


def _start_key(call: Call) -> float | None:
    """A Catapult call's place in the newest-first list: its start time."""
    return None if call.created_at is None else call.created_at.timestamp()


STARTER = """\
  - name: sales                       # your name for it: in rules, alerts and metric labels
    type: bandwidth
    base_url: https://api.catapult.inetwork.com
    user_id: ${BANDWIDTH_USER_ID}
    api_token: ${BANDWIDTH_API_TOKEN} # or api_token_file: /run/secrets/bandwidth-token
    api_secret: ${BANDWIDTH_API_SECRET}
    poll_interval: 5s
"""
"""This provider in the config `callmon init` writes."""

PLUGIN = Plugin(
    TYPE,
    BandwidthProvider,
    Bandwidth,
    frozenset(
        {
            CallState.RINGING,
            CallState.ANSWERED,
            CallState.ENDED,
            CallState.MISSED,
            CallState.REJECTED,
        }
    ),
    webhook=WebhookSpec(BandwidthWebhook, accept),
    starter=STARTER,
)
