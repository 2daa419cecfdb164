"""A fake of the CINNOX call-log API, written from the vendor's page (shared/seeds/cinnox-*).

`GET /v1/api/apps/{appID}/data/call-log` with `startAt`, `endAt` (both required), `offset`,
`limit` (at most 500), `callType`, `status`; `{code: 0, result: [...]}` or `{code, message}`.
A record is published only once its call is over, and then only after a delay (`late`), so
records turn up late and shift the offsets of a client that is paging, newest `callDate` first.
A call event subscription gets `CallStart` and `CallEnd` of each call (PROVIDERS.md section 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from monitor.simulator.common import FakeApi, RateLimit, parse_rfc3339, rfc3339

BAD_QUERY = 6451000


@dataclass
class CinnoxCall:
    hid: str
    call_id: str
    caller: str
    started: float
    answered: float | None = None
    ended: float | None = None
    status: str | None = None  # set when the call is over
    published: float | None = None  # when its record becomes visible
    bye_reason: str = ""
    release_party: str = "Caller"

    def as_json(self, virtual_number: int) -> dict[str, Any]:
        duration = 0
        if self.answered is not None and self.ended is not None:
            duration = round(self.ended - self.answered)
        return {
            "hid": self.hid,
            "roomID": f"room-{self.hid[:8]}",
            "type": "call",
            "status": self.status,
            "inquiryID": "",
            "displayCaseNumber": "",
            "callID": self.call_id,
            "callDuration": duration,
            "callDate": rfc3339(self.started),
            "callEndTime": rfc3339(self.ended),
            "byeReason": self.bye_reason,
            "releaseParty": self.release_party,
            "virtualNumber": virtual_number,
            "mediaType": "audio",
            "callerInfo": {
                "countryCode": "HK",
                "displayName": "Visitor",
                "eid": "",
                "isStaff": False,
                "phoneNumber": self.caller,
                "serviceId": "svc-1",
            },
            "calleeInfo": {
                "displayName": "Support Desk",
                "eid": "staff-7",
                "ipLocDetail": {"city": "", "province": "", "regionCode": "HK", "subdivision": ""},
                "isStaff": True,
                "serviceId": "svc-1",
            },
        }


@dataclass
class CinnoxApi(FakeApi):
    """The fake app's call log and routes."""

    token: str = "sim-cinnox-token"
    app_id: str = "sim-app"
    virtual_number: int = 85230001234
    late: tuple[float, float] = (0.5, 3.0)
    """Seconds after a call ends before its record shows (drawn uniformly)."""
    rate_limit: RateLimit = field(default_factory=lambda: RateLimit(20, 1.0))
    calls: dict[str, CinnoxCall] = field(default_factory=dict)
    name: str = "cinnox"
    subscription: str | None = None
    """The call event subscription's URL, once its challenge was answered."""

    async def subscribe(self, url: str) -> bool:
        """Enable the call event subscription (`PATCH …/call-event-sub`): CINNOX first posts a
        `{challenge}` and keeps the URL only when it is answered `{code: 0, result:
        {challenge}}`."""
        challenge = f"{self.rng.getrandbits(64):016x}"
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(url, json={"challenge": challenge}) as resp,
            ):
                answer = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, ValueError):
            answer = None
        ok = answer == {"code": 0, "result": {"challenge": challenge}}
        self.subscription = url if ok else None
        return ok

    def _push(self, call: CinnoxCall, status: str) -> None:
        """Post `CallStart` / `CallEnd` of a call (no times, no outcome: the call log has them)."""
        url = self.subscription
        if url is None:
            return
        body = {"message": {"id": call.call_id, "status": status, "serviceId": "svc-1"}}
        self.push(lambda: _post(url, body))

    def start_call(self, at: float | None = None) -> str:
        hid = f"{self.rng.getrandbits(96):024x}"
        call = self.calls[hid] = CinnoxCall(
            hid=hid,
            call_id=f"{self.rng.getrandbits(64):016x}",
            caller=f"+8529{self.number():07d}",
            started=self.at(at),
        )
        self._push(call, "CallStart")
        return hid

    def _finish(self, hid: str, status: str, at: float | None, bye: str, party: str) -> None:
        call = self.calls[hid]
        call.status, call.ended = status, self.at(at)
        call.bye_reason, call.release_party = bye, party
        call.published = call.ended + self.rng.uniform(*self.late)
        self._push(call, "CallEnd")

    def answer(self, call_id: str, at: float | None = None) -> None:
        self.calls[call_id].answered = self.at(at)

    def hang_up(self, call_id: str, at: float | None = None) -> None:
        self._finish(call_id, "Call Ended", at, "Normal call clearing", "Caller")

    def no_answer(self, call_id: str, at: float | None = None) -> None:
        status = self.rng.choice(["Not Answered", "Not Answered", "Cancelled", "Abandoned"])
        self._finish(call_id, status, at, "Request Timeout", "Caller")

    def reject(self, call_id: str, at: float | None = None) -> None:
        status = self.rng.choice(["Declined", "Busy"])
        self._finish(call_id, status, at, "Busy Here", "Callee")

    def fail(self, call_id: str, at: float | None = None) -> None:
        status = self.rng.choice(["Unreachable", "Call Failed"])
        self._finish(call_id, status, at, "Temporarily Unavailable", "Callee")

    def publish_now(self) -> None:
        """Make every finished call's record visible at once (for tests)."""
        for call in self.calls.values():
            if call.published is not None:
                call.published = min(call.published, self.clock())

    # --- HTTP

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v1/api/apps/{app}/data/call-log", self._list)]

    async def _list(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        fault = await self.faults.apply("cinnox", request)
        if fault is not None:
            return fault
        if self.rate_limit.check() is not None:
            return _error(429, 6429000, "too many requests")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, 6401000, "invalid app token")
        if request.match_info["app"] != self.app_id:
            return _error(404, 6404000, "app not found")
        self.list_requests += 1
        query = request.query
        if "startAt" not in query or "endAt" not in query:
            return _error(400, BAD_QUERY, "missing one of startAt, endAt")
        try:
            start = parse_rfc3339(query["startAt"])
            end = parse_rfc3339(query["endAt"])
            offset = int(query.get("offset", "0"))
            limit = int(query.get("limit", "500"))
        except ValueError:
            return _error(400, BAD_QUERY, "Bad query")
        if end < start:
            return _error(400, BAD_QUERY, "endAt is prior to startAt")
        if offset < 0:
            return _error(400, BAD_QUERY, "negative offset")
        if limit > 500:
            return _error(400, BAD_QUERY, "exceed maximum limit 500")
        now = self.clock()
        rows = [
            c
            for c in self.calls.values()
            if c.published is not None
            and c.published <= now
            and start <= c.started <= end
            and ("status" not in query or c.status == query["status"])
        ]
        rows.sort(key=lambda c: c.started, reverse=True)
        chunk = rows[offset : offset + max(limit, 0)]
        return web.json_response(
            {"code": 0, "result": [c.as_json(self.virtual_number) for c in chunk]}
        )


async def _post(url: str, body: dict[str, Any]) -> int:
    try:
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
            return resp.status
    except aiohttp.ClientError:
        return 0


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)
