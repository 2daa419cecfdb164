"""Bandwidth Catapult v1 calls: `/v1/users/{userId}/calls/`, newest first, `Link` paging.

Each poll reads pages (`sortOrder=desc`) until a call started before the high-water mark minus an
overlap, follows calls still in progress by id, and for a call that ended unanswered fetches its
`/events` once so the hangup cause travels in `call.raw`. The API allows one list request per
second; the default request budget keeps under it.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import aiohttp
import msgspec
import structlog

from monitor.config import BandwidthProvider
from monitor.model import Call, CallState
from monitor.providers.base import (
    RECORD_ERRORS,
    BadResponse,
    LazyJson,
    PollResult,
    TrackedView,
    follow_open_calls,
    iso,
    malformed,
    parse_time,
    skip_record,
)
from monitor.providers.http import HttpClient, RequestObserver

log = structlog.get_logger("monitor.providers.bandwidth")

TYPE = "bandwidth"
MAX_PAGES = 100
_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*\brel="?next"?')


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


def basic_auth(user: str, password: str) -> str:
    """An HTTP Basic `Authorization` header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def next_link(header: str | None) -> str | None:
    """The `rel="next"` URL of a `Link` header, if any."""
    match = _NEXT.search(header or "")
    return match.group(1) if match else None


class Bandwidth:
    """A client for one Bandwidth user's calls."""

    type = TYPE

    def __init__(
        self,
        settings: BandwidthProvider,
        session: aiohttp.ClientSession,
        observe: RequestObserver | None = None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self.http = HttpClient.for_provider(
            settings,
            session,
            observe,
            {
                "Accept": "application/json",
                "Authorization": basic_auth(
                    settings.api_token.get_secret_value(), settings.api_secret.get_secret_value()
                ),
            },
        )
        self._url = f"{settings.base_url.rstrip('/')}/v1/users/{settings.user_id}/calls/"

    async def poll(self, view: TrackedView) -> PollResult:
        """Newest first until older than the high-water mark minus the overlap."""
        now = datetime.now(UTC)
        mark = parse_time(view.cursor.get("high_water"))
        if mark is not None:
            oldest = mark - timedelta(seconds=self._settings.overlap)
        else:
            oldest = now - timedelta(seconds=self._settings.lookback)
        result = PollResult()
        seen: set[str] = set()
        newest = mark
        url: str | None = self._url
        params: dict[str, Any] | None = {
            "page": 0,
            "size": self._settings.size,
            "sortOrder": "desc",
        }
        for number in range(1, MAX_PAGES + 1):
            assert url is not None
            resp = await self.http.get(url, params)
            try:
                records = msgspec.json.decode(resp.body, type=list[msgspec.Raw])
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise malformed(self.name, f"call list page {number}", exc, resp.body) from None
            reached_old = False
            for raw in records:
                call = self._decode(raw)
                if call is None:
                    result.skipped += 1
                    continue
                if call.id in seen:
                    continue
                seen.add(call.id)
                if call.created_at is not None and call.created_at < oldest:
                    reached_old = True
                    if view.known(call.id) is None:
                        continue  # history from before the window
                result.calls.append(call)
                if call.created_at and (newest is None or call.created_at > newest):
                    newest = call.created_at
            link = next_link(resp.headers.get("link"))
            if reached_old or not link or not records or not view.baselined:
                break
            url, params = urljoin(self._url, link), None
        await follow_open_calls(view, seen, self._one, result)
        if self._settings.hangup_causes and view.baselined:
            result.calls = [await self._with_cause(c, view) for c in result.calls]
        result.cursor = {"high_water": iso(newest)} if newest else dict(view.cursor)
        return result

    async def _with_cause(self, call: Call, view: TrackedView) -> Call:
        """The call with its hangup cause in `raw`, when it just ended unanswered."""
        if call.state not in (CallState.MISSED, CallState.REJECTED) or not view.changed(call):
            return call
        resp = await self.http.get(f"{self._url}{call.id}/events")
        try:
            events = msgspec.json.decode(resp.body, type=list[_Event])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("hangup cause unreadable", provider=self.name, problem=str(exc)[:200])
            return call
        cause = next((e.data for e in events if e.name == "hangup" and e.data), None)
        if cause is None:
            return call
        return msgspec.structs.replace(call, raw={**call.raw, "hangupCause": cause})

    async def _one(self, call_id: str) -> Call | None:
        resp = await self.http.get_unless_gone(f"{self._url}{call_id}")
        if resp is None:
            return None
        call = self._decode(resp.body)
        if call is None:
            raise BadResponse(f"provider {self.name}: malformed call {call_id}")
        return call

    def _decode(self, raw: msgspec.Raw | bytes) -> Call | None:
        """One Catapult call → `Call`; a malformed one is logged and skipped (None)."""
        try:
            rec = msgspec.json.decode(raw, type=_Call)
            state = canonical(rec.state, rec.activeTime is not None)
            if state is None:
                raise ValueError(f"unknown state {rec.state!r}")
            created = parse_time(rec.startTime)
            answered = parse_time(rec.activeTime)
            ended = parse_time(rec.endTime)
        except RECORD_ERRORS as exc:
            skip_record(self.name, exc)
            return None
        return Call(
            id=rec.id,
            state=state,
            raw_status=rec.state,
            created_at=created,
            answered_at=answered,
            ended_at=ended if state.terminal else None,
            direction=rec.direction if rec.direction in ("in", "out") else None,
            from_number=rec.from_,
            to_number=rec.to,
            marker=f"{rec.state}|{rec.activeTime or ''}|{rec.endTime or ''}",
            raw=LazyJson(raw),
        )
