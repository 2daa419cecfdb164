"""The AIPIX VMS intercom API: `/api/v1/intercom/calls`, newest first, Laravel paging."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import msgspec
import structlog

from monitor.config import VmsIntercomProvider
from monitor.model import Call, CallState, Intercom
from monitor.providers.base import (
    RECORD_ERRORS,
    AuthError,
    BadResponse,
    LazyJson,
    PollResult,
    ProviderError,
    RequestRejected,
    TrackedView,
    follow_open_calls,
    malformed,
    parse_time,
    skip_record,
)
from monitor.providers.http import HttpClient, RequestObserver

log = structlog.get_logger("monitor.providers.vms_intercom")

TYPE = "vms-intercom"
CALLS_PATH = "/api/v1/intercom/calls"
SHOWS_PATH = "/api/v1/intercom/shows"
TOKEN_PATH = "/api/v1/token"
SHOWS_BATCH = 25
"""The documented maximum of ids per `/intercom/shows` request."""
STATES = {
    "ring": CallState.RINGING,
    "answered": CallState.ANSWERED,
    "ended": CallState.ENDED,
    "missed": CallState.MISSED,
}
MAX_PAGES = 40
"""Upper bound of list pages read in one poll; a deeper backlog is read over the next polls."""


class _Intercom(msgspec.Struct):
    id: int
    title: str | None = None
    address: str | None = None
    is_online: bool | None = None


class _Call(msgspec.Struct):
    id: int
    status: str
    created_at: str | None = None  # `2022-02-04 15:53:04`: no zone, see `naive_timezone`
    started_at: str | None = None
    ended_at: str | None = None
    intercom: _Intercom | None = None


class _Meta(msgspec.Struct):
    current_page: int
    last_page: int


class _Page(msgspec.Struct):
    data: list[msgspec.Raw]
    meta: _Meta | None = None


class _Door(msgspec.Struct):
    id: int
    title: str | None = None
    address: str | None = None
    is_online: bool | None = None
    timetable: dict[str, Any] | None = None


class _Token(msgspec.Struct):
    access_token: str


class _One(msgspec.Struct):
    data: msgspec.Raw


class VmsIntercom:
    """A client for one VMS account."""

    type = TYPE

    def __init__(
        self,
        settings: VmsIntercomProvider,
        session: aiohttp.ClientSession,
        observe: RequestObserver | None = None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._zone: tzinfo = (
            UTC if settings.naive_timezone == "UTC" else ZoneInfo(settings.naive_timezone)
        )
        self._only = frozenset(settings.intercoms) if settings.intercoms else None
        self._status_interval = settings.status_interval or settings.poll_interval
        self._next_status = 0.0
        self._status_failing = False
        headers = {
            "Accept": "application/json",
            "X-Client": settings.client,
            "X-UUID": settings.device_id,
        }
        self._has_token = settings.token is not None
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self.http = HttpClient.for_provider(settings, session, observe, headers)

    async def poll(self, view: TrackedView) -> PollResult:
        """One poll; with a login configured, a token is fetched first and renewed on a 401."""
        if not self._has_token:
            await self._log_in()
        try:
            return await self._poll(view)
        except AuthError:
            if self._settings.login is None:
                raise
            await self._log_in()  # the token expired: one new token, one more try
            return await self._poll(view)

    async def _log_in(self) -> None:
        """`POST /api/v1/token`; its `access_token` (`Bearer …`) authorises what follows."""
        settings = self._settings
        assert settings.login is not None
        assert settings.password is not None
        body = {"login": settings.login, "password": settings.password.get_secret_value()}
        if settings.session_id:
            body["session_id"] = settings.session_id
        try:
            resp = await self.http.post_json(self._base + TOKEN_PATH, body)
        except RequestRejected as exc:
            message = str(exc).replace("request rejected", "login refused")
            raise AuthError(message, status=exc.status) from None
        try:
            token = msgspec.json.decode(resp.body, type=_Token).access_token
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise malformed(self.name, "token answer", exc, resp.body) from None
        scheme, _, value = token.partition(" ")
        self.http.set_header("Authorization", token if value else f"Bearer {scheme}")
        self._has_token = True

    async def _poll(self, view: TrackedView) -> PollResult:
        """Read pages newest first while every call on them is new; follow open calls by id.

        New calls only ever appear at the top (the newest first), so once a page holds a call
        seen before, every newer call was on the pages read. Calls still in progress that were
        not on them are fetched one by one.
        """
        result = PollResult()
        seen: set[str] = set()
        page, last_page = 1, 1
        while page <= min(last_page, MAX_PAGES):
            calls, last_page, skipped = await self._page(page)
            result.skipped += skipped
            all_new = bool(calls)
            for call in calls:
                if call.id in seen:
                    continue  # pushed down a page by newer calls while we paged
                seen.add(call.id)
                all_new = all_new and view.known(call.id) is None and view.changed(call)
                if self._wanted(call):
                    result.calls.append(call)
            if not all_new or not view.baselined:
                break  # the baseline needs only the newest page: older calls are history
            page += 1
        await follow_open_calls(view, seen, self._one, result)
        doors = set(self._only or view.cursor.get("doors", ()))
        doors.update(c.intercom.id for c in result.calls if c.intercom is not None)
        result.cursor = {"doors": sorted(doors)}
        if doors and time.monotonic() >= self._next_status:
            self._next_status = time.monotonic() + self._status_interval
            try:
                result.intercoms = await self._status(sorted(doors))
            except ProviderError as exc:  # door status must never stop call monitoring
                if not self._status_failing:
                    log.warning("intercom status unavailable", provider=self.name, error=str(exc))
                self._status_failing = True
            else:
                self._status_failing = False
        return result

    async def _status(self, doors: list[int]) -> list[Intercom]:
        """Online status and timetable of the watched doors, 25 ids per request."""
        found: list[Intercom] = []
        for i in range(0, len(doors), SHOWS_BATCH):
            batch = doors[i : i + SHOWS_BATCH]
            resp = await self.http.get(
                self._base + SHOWS_PATH, [("ids[]", str(door)) for door in batch]
            )
            try:
                listed = msgspec.json.decode(resp.body, type=list[_Door])
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise malformed(self.name, "intercom list", exc, resp.body) from None
            found.extend(
                Intercom(d.id, d.title, d.address, d.is_online, d.timetable) for d in listed
            )
        return found

    def _wanted(self, call: Call) -> bool:
        return self._only is None or (call.intercom is not None and call.intercom.id in self._only)

    async def _page(self, page: int) -> tuple[list[Call], int, int]:
        params = {"page": page, "per_page": self._settings.per_page}
        resp = await self.http.get(self._base + CALLS_PATH, params)
        try:
            body = msgspec.json.decode(resp.body, type=_Page)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise malformed(self.name, f"call list page {page}", exc, resp.body) from None
        calls, skipped = [], 0
        for raw in body.data:
            call = self._decode(raw)
            if call is None:
                skipped += 1
            else:
                calls.append(call)
        last = body.meta.last_page if body.meta else page
        return calls, last, skipped

    async def _one(self, call_id: str) -> Call | None:
        resp = await self.http.get_unless_gone(f"{self._base}{CALLS_PATH}/{call_id}")
        if resp is None:
            return None
        raw: msgspec.Raw | bytes = resp.body
        # Laravel's `{data: {...}}` resource shape, or the bare object: accept both.
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            raw = msgspec.json.decode(resp.body, type=_One).data
        found = self._decode(raw)
        if found is None:
            raise BadResponse(f"provider {self.name}: malformed call {call_id}")
        return found

    def _decode(self, raw: msgspec.Raw | bytes) -> Call | None:
        """One record → `Call`; a malformed record is logged and skipped (None)."""
        try:
            rec = msgspec.json.decode(raw, type=_Call)
            state = STATES.get(rec.status)
            if state is None:
                raise ValueError(f"unknown status {rec.status!r}")
            created = parse_time(rec.created_at, self._zone)
            answered = parse_time(rec.started_at, self._zone)
            ended = parse_time(rec.ended_at, self._zone)
        except RECORD_ERRORS as exc:
            skip_record(self.name, exc)
            return None
        intercom = None
        if rec.intercom is not None:
            ic = rec.intercom
            intercom = Intercom(ic.id, ic.title, ic.address, ic.is_online)
        if state is CallState.ENDED and ended is None:
            ended = answered
        return Call(
            id=str(rec.id),
            state=state,
            raw_status=rec.status,
            created_at=created,
            answered_at=answered,
            ended_at=ended if state.terminal else None,
            direction="in",
            intercom=intercom,
            marker=rec.status,  # every change of a VMS call is a change of its status
            raw=LazyJson(raw),
        )
