"""The CINNOX call-log: `/v1/api/apps/{appID}/data/call-log`, a sliding window of final records.

A record appears only once its call is over, sometimes late, so each poll reads the window from
the newest `callDate` seen minus a lookback, `offset += limit` until a short page. Every record
is final: a new one is one event from nothing straight to its final state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

import msgspec
from pydantic import Field, SecretStr

from monitor.model import Call, CallState, PollResult
from monitor.providers.base import (
    CLOCK_SLACK,
    RequestRejected,
    TrackedView,
    decode_body,
    iso,
    known_state,
    new_call,
    not_after,
    parse_time,
    parse_times,
)
from monitor.providers.client import ApiClient
from monitor.providers.paging import Drain, drain_deferred
from monitor.providers.plugin import Plugin
from monitor.providers.settings import ProviderSettings
from monitor.units import Duration

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


class CinnoxProvider(ProviderSettings):
    """The CINNOX call-log."""

    type: Literal["cinnox"]
    token: SecretStr
    app_id: str = Field(min_length=1)
    limit: int = Field(default=500, ge=1, le=500)
    lookback: Duration = 1800.0

    DEFAULT_RPS: ClassVar[float] = 5.0
    DEFAULT_PAGES: ClassVar[int] = 200
    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


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
        now = datetime.now(UTC)
        mark = parse_time(view.cursor.get("last_call_date"), field="last_call_date")
        drain = Drain.resumed(view.cursor)
        if drain is None:
            start = (mark or now) - timedelta(seconds=self._settings.lookback)
            drain = Drain(iso(start), iso(now + CLOCK_SLACK), 0)
        limit = self._settings.limit
        result = PollResult()
        seen: set[str] = set()
        newest = parse_time(drain.newest, field="newest") or mark
        offset = int(drain.token or 0)
        for _ in range(self._settings.page_budget):
            params = {"startAt": drain.start, "endAt": drain.end, "offset": offset, "limit": limit}
            try:
                resp = await self.http.get(self._url, params)
            except RequestRejected as exc:
                raise RequestRejected(
                    str(exc).replace("request rejected", "API error"), status=exc.status
                ) from None
            body = decode_body(self.name, f"call-log page at offset {offset}", resp.body, _Body)
            if body.code != 0:
                message = (body.message or "no message")[:200]
                raise RequestRejected(f"provider {self.name}: API error {body.code}: {message}")
            records = body.result or []
            for raw in records:
                call = self._skips.read(self._decode, raw, result)
                if call is None or call.id in seen:
                    continue  # unreadable, or shifted to the next page by a late record
                seen.add(call.id)
                result.calls.append(call)
                if call.created_at and (newest is None or call.created_at > newest):
                    newest = call.created_at
            offset += limit
            if len(records) < limit:
                offset = -1
                break
        newest = not_after(newest, now, self.name)
        if offset < 0:
            result.cursor = {"last_call_date": iso(newest)} if newest else {}
        else:  # the mark stays until the window is drained
            drain.token, drain.newest = offset, iso(newest) if newest else None
            result.cursor = {"last_call_date": iso(mark)} if mark else {}
            result.cursor["resume"] = drain.stored()
            drain_deferred(self.name, len(result.calls), drain)
        return result

    def _decode(self, raw: bytes) -> Call:
        """One call-log record → a final `Call`; raises on a record that cannot be read."""
        rec = msgspec.json.decode(raw, type=_Record)
        state = known_state(STATES, rec.status, "status")
        created, ended = parse_times(("callDate", rec.callDate), ("callEndTime", rec.callEndTime))
        answered = None
        if state is CallState.ENDED and ended is not None and rec.callDuration is not None:
            try:
                answered = ended - timedelta(seconds=rec.callDuration)
            except (OverflowError, ValueError):
                raise ValueError(f"callDuration: out of range: {rec.callDuration!r}") from None
        caller = rec.callerInfo.phoneNumber if rec.callerInfo else None
        return new_call(
            raw,
            state=state,
            times=(created, answered, ended),
            id=rec.hid,
            raw_status=rec.status,
            from_number=None if caller is None else str(caller),
            to_number=None if rec.virtualNumber is None else str(rec.virtualNumber),
            marker=rec.status,
        )


PLUGIN = Plugin(TYPE, CinnoxProvider, Cinnox, frozenset(STATES.values()))
