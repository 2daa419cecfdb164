"""The AIPIX VMS intercom API: `/api/v1/intercom/calls`, newest first, Laravel paging."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, tzinfo
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

import msgspec
import structlog
from pydantic import Field, SecretStr, field_validator, model_validator

from monitor.model import Call, CallState, Intercom, PollResult
from monitor.sources import records
from monitor.sources.base import (
    AuthError,
    RequestRejected,
    TrackedView,
    decode_body,
    follow_open_calls,
)
from monitor.sources.client import ApiClient
from monitor.sources.paging import Page
from monitor.sources.plugin import Plugin
from monitor.sources.settings import ProviderSettings
from monitor.sources.vms_doors import DoorStatus
from monitor.sources.vms_pages import id_key, open_reach, read_page
from monitor.text.redaction import basic_forms
from monitor.text.units import Duration, check_zone

log = structlog.get_logger("monitor.sources.vms_intercom")

TYPE = "vms-intercom"
CALLS_PATH = "/api/v1/intercom/calls"
TOKEN_PATH = "/api/v1/token"
STATES = records.statuses(
    ringing=("ring",), answered=("answered",), ended=("ended",), missed=("missed",)
)
TIMES = ("created_at", "started_at", "ended_at")


class VmsIntercomProvider(ProviderSettings):
    """The AIPIX VMS intercom API."""

    type: Literal["vms-intercom"]
    token: SecretStr | None = None
    login: str | None = None
    """With `password`: callmon asks `/api/v1/token` for a token, and again when it expires."""
    password: SecretStr | None = None
    session_id: str | None = None
    client: Literal["ios-cctv", "android-cctv", "thick-legal", "web"] = "web"
    device_id: str = "callmon"
    intercoms: tuple[int, ...] | None = None
    max_doors: int = Field(default=200, ge=1, le=100_000)
    """Without `intercoms`: the most doors (seen in calls) whose status is watched."""
    status_interval: Duration | None = None
    per_page: int = Field(default=25, ge=1, le=100)
    naive_timezone: str = "UTC"

    SECRETS: ClassVar[tuple[str, ...]] = ("token", "password")

    @field_validator("naive_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    def secrets(self) -> Iterator[str]:
        yield from super().secrets()
        if self.login and self.password:
            yield from basic_forms(self.login, self.password.get_secret_value())

    @model_validator(mode="after")
    def _credentials(self) -> VmsIntercomProvider:
        if self.token is None and (self.login is None or self.password is None):
            raise ValueError("give a token, or a login and a password")
        return self

    @property
    def doors_with_series(self) -> int | None:
        return len(self.intercoms or ()) or self.max_doors


class _Call(msgspec.Struct):
    id: int
    status: str
    created_at: str | None = None  # `2022-02-04 15:53:04`: no zone, see `naive_timezone`
    started_at: str | None = None
    ended_at: str | None = None
    intercom: Intercom | None = None


class _Token(msgspec.Struct):
    access_token: str


class _One(msgspec.Struct):
    data: msgspec.Raw


class VmsIntercom(ApiClient[VmsIntercomProvider]):
    """A client for one VMS account."""

    type = TYPE

    def setup(self, settings: VmsIntercomProvider) -> None:
        self._zone: tzinfo = (
            UTC if settings.naive_timezone == "UTC" else ZoneInfo(settings.naive_timezone)
        )
        self._only = frozenset(settings.intercoms) if settings.intercoms else None
        self._has_token = settings.token is not None
        self.doors = DoorStatus(
            self.name,
            self.http,
            self._base,
            only=settings.intercoms,
            max_doors=settings.max_doors,
            interval=settings.status_interval or settings.poll_interval,
        )

    def headers(self, settings: VmsIntercomProvider) -> dict[str, str]:
        headers = {"X-Client": settings.client, "X-UUID": settings.device_id}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        return headers

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
        token = decode_body(self.name, "token answer", resp.body, _Token).access_token
        scheme, _, value = token.partition(" ")
        self.http.set_header("Authorization", token if value else f"Bearer {scheme}")
        self._has_token = True

    async def _poll(self, view: TrackedView) -> PollResult:
        """Read pages newest first down to the highest call id seen before; follow open calls.

        New calls only ever appear at the top (the newest first), so once a page holds a call
        seen before, every newer call was on the pages read. The mark is the highest id of any
        call seen, watched door or not, so a quiet watched door costs one page per poll. Calls
        still in progress are read on further pages while that costs fewer requests than
        fetching them one by one (a busy building); the rest are fetched by id.
        """
        result = PollResult()
        high = view.cursor.get("high_id")
        mark = float(high) if isinstance(high, int | float) else None
        stop = open_reach(view, mark, self._settings.per_page, self._settings.page_budget)

        def seen_before(call: Call) -> bool:
            return view.knows(call.id) or not view.changed(call)

        async def page(number: int) -> Page:
            return await self._page(number, view, result)

        read = await self.read_newest_first(
            page,
            view,
            first=1,
            key=id_key,
            mark=mark,
            stop=stop,
            per_page=self._settings.per_page,
            seen_before=None if mark is not None else seen_before,
        )
        seen = {call.id for call in read.calls}
        result.calls = [call for call in read.calls if self._wanted(call)]
        await follow_open_calls(
            view, seen, self._one, self.decode, result, self._skips, self._rechecks
        )
        doors = self.doors.watched(view.cursor, result.calls)
        ids = [k for k in map(id_key, read.calls) if k is not None]
        newest = max([*ids, *([mark] if mark is not None else [])], default=None)
        result.cursor = {"doors": sorted(doors)}
        if newest is not None:
            result.cursor["high_id"] = int(newest)
        if read.backfill is not None:
            result.cursor["backfill"] = read.backfill
        await self.doors.poll(doors, result)
        return result

    def _wanted(self, call: Call) -> bool:
        return self._only is None or (call.intercom is not None and call.intercom.id in self._only)

    async def _page(self, page: int, view: TrackedView, result: PollResult) -> Page:
        params = {"page": page, "per_page": self._settings.per_page}
        resp = await self.http.get(self._base + CALLS_PATH, params)
        return self.read_page(resp.body, page, view, result)

    def read_page(self, body: bytes, page: int, view: TrackedView, result: PollResult) -> Page:
        """One page of the call list → its calls (see `vms_pages.read_page`)."""
        return read_page(
            self.name,
            body,
            page,
            view,
            lambda raw: self._skips.read(self.decode, raw, result),
            STATES,
        )

    async def _one(self, call_id: str) -> bytes | msgspec.Raw | None:
        body = await self.http.get_unless_gone(f"{self._base}{CALLS_PATH}/{call_id}")
        if body is None:
            return None
        # Laravel's `{data: {...}}` resource shape, or the bare object: accept both.
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            return msgspec.json.decode(body, type=_One).data
        return body

    def decode(self, raw: bytes) -> Call:
        """One record → `Call`; raises on a record that cannot be read."""
        rec = msgspec.json.decode(raw, type=_Call)
        state = records.known_state(STATES, rec.status, "status")
        created, answered, ended = records.call_times(
            TIMES, rec.created_at, rec.started_at, rec.ended_at, self._zone
        )
        if state is CallState.ENDED and ended is None:
            ended = answered
        return records.new_call(
            raw,
            state=state,
            times=(created, answered, ended),
            id=str(rec.id),
            raw_status=rec.status,
            direction="in",
            intercom=rec.intercom,
            marker=rec.status,  # every change of a VMS call is a change of its status
        )


STARTER = """\
  - name: front-door                  # your name for it: in rules, alerts and metric labels
    type: vms-intercom
    base_url: ${VMS_BASE_URL}         # the VMS root, such as https://vms.example.net
    token: ${VMS_TOKEN}               # or token_file: /run/secrets/vms-token
    # login: callmon                  # instead of a token: a login and a password
    # password: ${VMS_PASSWORD}
    # intercoms: [158, 180]           # only these doors (default: every door seen in calls)
    poll_interval: 5s
"""
"""This provider in the config `callmon init` writes."""
STARTER_RULE = """\
# A rule file written by `callmon init`: README.md ("Rule files") tells every key.
rules:
  - name: missed-intercom-call
    when: {provider_type: vms-intercom, to: missed}
    notify: [ops-chat]
    severity: warning
    title: "Missed call at {{ call.intercom.title }}"
    body: "Rang {{ call.ring_seconds | duration }} at {{ call.created_at | localtime }}."
"""

PLUGIN = Plugin(
    TYPE,
    VmsIntercomProvider,
    VmsIntercom,
    frozenset(STATES.values()),
    doors=True,
    starter=STARTER,
    starter_rule=STARTER_RULE,
)
