"""Bird channel calls: `/workspaces/{ws}/channels/{ch}/calls`, a time window drained page by page.

Each poll asks for calls created since the high-water mark (the newest `createdAt` seen) minus an
overlap, follows `nextPageToken` to the end (the API promises no order), and fetches by id the
calls still in progress that fell out of the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import msgspec

from monitor.config import BirdProvider
from monitor.model import Call, CallState
from monitor.providers.base import (
    CLOCK_SLACK,
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

TYPE = "bird"
STATES = {
    "accepted": CallState.RINGING,
    "scheduled": CallState.RINGING,
    "starting": CallState.RINGING,
    "ringing": CallState.RINGING,
    "ongoing": CallState.ANSWERED,
    "completed": CallState.ENDED,
    "no-answer": CallState.MISSED,
    "cancelled": CallState.MISSED,
    "busy": CallState.REJECTED,
    "failed": CallState.FAILED,
}
DIRECTIONS = {"incoming": "in", "outgoing": "out"}
MAX_PAGES = 200


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


class _Page(msgspec.Struct):
    results: list[msgspec.Raw]
    nextPageToken: str | None = None


class Bird:
    """A client for one Bird channel."""

    type = TYPE

    def __init__(
        self,
        settings: BirdProvider,
        session: aiohttp.ClientSession,
        observe: RequestObserver | None = None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        token = settings.token.get_secret_value()
        self.http = HttpClient.for_provider(
            settings,
            session,
            observe,
            {"Authorization": f"{settings.auth_scheme} {token}", "Accept": "application/json"},
        )
        self._url = (
            f"{settings.base_url.rstrip('/')}/workspaces/{settings.workspace_id}"
            f"/channels/{settings.channel_id}/calls"
        )

    async def poll(self, view: TrackedView) -> PollResult:
        """Drain the window since the high-water mark; follow open calls that left it."""
        now = datetime.now(UTC)
        mark = parse_time(view.cursor.get("high_water"))
        start = (
            mark - timedelta(seconds=self._settings.overlap)
            if mark
            else (now - timedelta(seconds=self._settings.lookback))
        )
        params: dict[str, str | int] = {
            "limit": self._settings.limit,
            "startAt": iso(start),
            "endAt": iso(now + CLOCK_SLACK),
        }
        result = PollResult()
        seen: set[str] = set()
        newest = mark
        for number in range(1, MAX_PAGES + 1):
            resp = await self.http.get(self._url, params)
            try:
                page = msgspec.json.decode(resp.body, type=_Page)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise malformed(self.name, f"call list page {number}", exc, resp.body) from None
            for raw in page.results:
                call = self._decode(raw)
                if call is None:
                    result.skipped += 1
                    continue
                if call.id in seen:
                    continue
                seen.add(call.id)
                result.calls.append(call)
                if call.created_at and (newest is None or call.created_at > newest):
                    newest = call.created_at
            if not page.nextPageToken:
                break
            params["pageToken"] = page.nextPageToken
        await follow_open_calls(view, seen, self._one, result)
        result.cursor = {"high_water": iso(newest)} if newest else dict(view.cursor)
        return result

    async def _one(self, call_id: str) -> Call | None:
        resp = await self.http.get_unless_gone(f"{self._url}/{call_id}")
        if resp is None:
            return None
        call = self._decode(resp.body)
        if call is None:
            raise BadResponse(f"provider {self.name}: malformed call {call_id}")
        return call

    def _decode(self, raw: msgspec.Raw | bytes) -> Call | None:
        """One ChannelCall → `Call`; a malformed one is logged and skipped (None)."""
        try:
            rec = msgspec.json.decode(raw, type=_Call)
            state = STATES.get(rec.status)
            if state is None:
                raise ValueError(f"unknown status {rec.status!r}")
            created = parse_time(rec.createdAt)
            answered = parse_time(rec.answeredAt)
            ended = parse_time(rec.endedAt)
        except RECORD_ERRORS as exc:
            skip_record(self.name, exc)
            return None
        return Call(
            id=rec.id,
            state=state,
            raw_status=rec.status,
            created_at=created,
            answered_at=answered,
            ended_at=ended if state.terminal else None,
            direction=DIRECTIONS.get(rec.direction or ""),
            from_number=rec.from_,
            to_number=rec.to,
            marker=f"{rec.status}|{rec.updatedAt or ''}",
            raw=LazyJson(raw),
        )
