"""The CINNOX call-log: `/v1/api/apps/{appID}/data/call-log`, a sliding window of final records.

A record appears only once its call is over, sometimes late, so each poll reads the window from
the newest `callDate` seen minus a lookback, `offset += limit` until a short page. Every record
is final: a new one is one event from nothing straight to its final state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import msgspec

from monitor.config import CinnoxProvider
from monitor.model import Call, CallState
from monitor.providers.base import (
    CLOCK_SLACK,
    RECORD_ERRORS,
    LazyJson,
    PollResult,
    RequestRejected,
    TrackedView,
    iso,
    malformed,
    parse_time,
    skip_record,
)
from monitor.providers.http import HttpClient, RequestObserver

TYPE = "cinnox"
STATES = {
    "Call Ended": CallState.ENDED,
    "Not Answered": CallState.MISSED,
    "Cancelled": CallState.MISSED,
    "Abandoned": CallState.MISSED,
    "Declined": CallState.REJECTED,
    "Busy": CallState.REJECTED,
    "Unreachable": CallState.FAILED,
    "Call Failed": CallState.FAILED,
}
MAX_PAGES = 200


class _Caller(msgspec.Struct):
    phoneNumber: str | int | None = None


class _Record(msgspec.Struct):
    hid: str
    status: str
    callDate: str | None = None
    callEndTime: str | None = None
    callDuration: float | None = None
    virtualNumber: str | int | None = None
    callerInfo: _Caller | None = None


class _Body(msgspec.Struct):
    code: int = 0
    message: str | None = None
    result: list[msgspec.Raw] | None = None


class Cinnox:
    """A client for one CINNOX app."""

    type = TYPE

    def __init__(
        self,
        settings: CinnoxProvider,
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
                "Authorization": f"Bearer {settings.token.get_secret_value()}",
                "Accept": "application/json",
            },
        )
        self._url = f"{settings.base_url.rstrip('/')}/v1/api/apps/{settings.app_id}/data/call-log"

    async def poll(self, view: TrackedView) -> PollResult:
        """Read the window [newest callDate - lookback, now] page by page."""
        now = datetime.now(UTC)
        mark = parse_time(view.cursor.get("last_call_date"))
        start = (mark or now) - timedelta(seconds=self._settings.lookback)
        limit = self._settings.limit
        result = PollResult()
        seen: set[str] = set()
        newest = mark
        for number in range(MAX_PAGES):
            params = {
                "startAt": iso(start),
                "endAt": iso(now + CLOCK_SLACK),
                "offset": number * limit,
                "limit": limit,
            }
            try:
                resp = await self.http.get(self._url, params)
            except RequestRejected as exc:
                raise RequestRejected(
                    str(exc).replace("request rejected", "API error"), status=exc.status
                ) from None
            try:
                body = msgspec.json.decode(resp.body, type=_Body)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise malformed(self.name, f"call-log page {number + 1}", exc, resp.body) from None
            if body.code != 0:
                raise RequestRejected(
                    f"provider {self.name}: API error {body.code}: {body.message or 'no message'}"
                )
            records = body.result or []
            for raw in records:
                call = self._decode(raw)
                if call is None:
                    result.skipped += 1
                    continue
                if call.id in seen:
                    continue  # shifted to the next page by a late record
                seen.add(call.id)
                result.calls.append(call)
                if call.created_at and (newest is None or call.created_at > newest):
                    newest = call.created_at
            if len(records) < limit:
                break
        result.cursor = {"last_call_date": iso(newest)} if newest else dict(view.cursor)
        return result

    def _decode(self, raw: msgspec.Raw) -> Call | None:
        """One call-log record → a final `Call`; a malformed one is logged and skipped (None)."""
        try:
            rec = msgspec.json.decode(raw, type=_Record)
            state = STATES.get(rec.status)
            if state is None:
                raise ValueError(f"unknown status {rec.status!r}")
            created = parse_time(rec.callDate)
            ended = parse_time(rec.callEndTime)
        except RECORD_ERRORS as exc:
            skip_record(self.name, exc)
            return None
        answered = None
        if state is CallState.ENDED and ended is not None and rec.callDuration is not None:
            answered = ended - timedelta(seconds=rec.callDuration)
        caller = rec.callerInfo.phoneNumber if rec.callerInfo else None
        return Call(
            id=rec.hid,
            state=state,
            raw_status=rec.status,
            created_at=created,
            answered_at=answered,
            ended_at=ended,
            from_number=None if caller is None else str(caller),
            to_number=None if rec.virtualNumber is None else str(rec.virtualNumber),
            marker=rec.status,
            raw=LazyJson(raw),
        )
