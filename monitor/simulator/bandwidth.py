"""A fake of Bandwidth's Catapult v1 calls API, from the vendor's page (shared/seeds/bandwidth-*).

`GET /v1/users/{userId}/calls/` with HTTP Basic `{token}:{secret}`, `page`, `size` (at most
1000), `sortOrder` by `startTime`; a bare JSON array with a `Link: <…>; rel="next"` header;
`GET …/calls/{callId}` and `…/calls/{callId}/events`. Listing calls is limited to one request
per second: more draws 429 with `X-RateLimit-Reset` (epoch milliseconds). With a callback URL,
each call's events are posted to it as v1 callbacks (PROVIDERS.md section 5).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from monitor.simulator.common import FakeApi, RateLimit, guarded, rfc3339


@dataclass
class CatapultCall:
    id: str
    direction: str
    from_: str
    to: str
    started: float
    state: str = "started"
    active: float | None = None
    ended: float | None = None
    cause: str | None = None

    def as_json(self, base: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "recordingEnabled": False,
            "callbackUrl": "",
            "state": self.state,
            "startTime": rfc3339(self.started),
            "events": f"{base}/{self.id}/events",
        }
        if self.active is not None:
            body["activeTime"] = rfc3339(self.active)
        if self.ended is not None:
            body["endTime"] = rfc3339(self.ended)
            talk = 0.0 if self.active is None else self.ended - self.active
            body["chargeableDuration"] = 0 if talk <= 0 else 60 * (int(talk) // 60 + 1)
        return body

    def events(self) -> list[dict[str, Any]]:
        out = [{"id": f"{self.id}-1", "time": rfc3339(self.started), "name": "create"}]
        if self.active is not None:
            out.append({"id": f"{self.id}-2", "time": rfc3339(self.active), "name": "answer"})
        if self.ended is not None:
            out.append(
                {
                    "id": f"{self.id}-3",
                    "time": rfc3339(self.ended),
                    "name": "hangup",
                    "data": self.cause,
                }
            )
        return out


async def _post_callback(callback: str, body: dict[str, Any]) -> int:
    """Post one event to the callback URL, its credentials as HTTP Basic (as Bandwidth does);
    the receiver's status, or 0 when it could not be reached."""
    url = URL(callback)
    headers = {}
    if url.user is not None:
        headers["Authorization"] = aiohttp.encode_basic_auth(url.user, url.password or "")
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url.with_user(None), json=body, headers=headers) as resp,
        ):
            return resp.status
    except aiohttp.ClientError:
        return 0


@dataclass
class BandwidthApi(FakeApi):
    """The fake user's calls and routes."""

    user_id: str = "u-simulated0001"
    api_token: str = "t-sim-token"
    api_secret: str = "sim-secret"
    list_limit: RateLimit = field(default_factory=lambda: RateLimit(1, 1.0))
    calls: dict[str, CatapultCall] = field(default_factory=dict)
    name: str = "bandwidth"
    callback: str | None = None
    """The application's callback URL (credentials in it, sent as HTTP Basic); None: no pushes."""

    def subscribe(self, callback: str) -> None:
        """Post v1 call events (`incomingcall`, `answer`, `hangup`) to `callback`."""
        self.callback = callback

    def _push(self, call: CatapultCall, event: str, at: float) -> None:
        callback = self.callback
        if callback is None:
            return
        body: dict[str, Any] = {
            "eventType": event,
            "callId": call.id,
            "callUri": f"/v1/users/{self.user_id}/calls/{call.id}",
            "callState": call.state,
            "from": call.from_,
            "to": call.to,
            "time": rfc3339(at),
        }
        if event == "hangup":
            body["cause"] = call.cause
        self.push(lambda: _post_callback(callback, body))

    def start_call(self, at: float | None = None) -> str:
        incoming = self.rng.random() < 0.7
        ours, theirs = "+19195550100", f"+1919555{self.number() % 10000:04d}"
        call = CatapultCall(
            id=f"c-{self.rng.getrandbits(80):020x}",
            direction="in" if incoming else "out",
            from_=theirs if incoming else ours,
            to=ours if incoming else theirs,
            started=self.at(at),
        )
        self.calls[call.id] = call
        self._push(call, "incomingcall", call.started)
        return call.id

    def answer(self, call_id: str, at: float | None = None) -> None:
        call = self.calls[call_id]
        call.state, call.active = "active", self.at(at)
        self._push(call, "answer", call.active)

    def _end(self, call_id: str, state: str, cause: str, at: float | None) -> None:
        call = self.calls[call_id]
        call.state, call.ended, call.cause = state, self.at(at), cause
        self._push(call, "hangup", call.ended)

    def hang_up(self, call_id: str, at: float | None = None) -> None:
        self._end(call_id, "completed", "NORMAL_CLEARING", at)

    def no_answer(self, call_id: str, at: float | None = None) -> None:
        self._end(call_id, "completed", self.rng.choice(["NO_ANSWER", "ORIGINATOR_CANCEL"]), at)

    def reject(self, call_id: str, at: float | None = None) -> None:
        self._end(call_id, "rejected", self.rng.choice(["CALL_REJECTED", "USER_BUSY"]), at)

    def fail(self, call_id: str, at: float | None = None) -> None:
        self._end(call_id, "rejected", "UNALLOCATED_NUMBER", at)

    # --- HTTP

    def routes(self) -> list[web.RouteDef]:
        base = "/v1/users/{user}/calls"
        return [
            web.get(base, guarded(self._guard, self._list)),
            web.get(base + "/", guarded(self._guard, self._list)),
            web.get(base + "/{call}", guarded(self._guard, self._one)),
            web.get(base + "/{call}/events", guarded(self._guard, self._events)),
        ]

    async def _guard(self, request: web.Request) -> web.StreamResponse | None:
        self.requests += 1
        fault = await self.faults.apply("bandwidth", request)
        if fault is not None:
            return fault
        if _basic_credentials(request.headers.get("Authorization", "")) != (
            self.api_token,
            self.api_secret,
        ):
            return _error(401, "unauthorized", "unauthorized", "Invalid credentials")
        if request.match_info["user"] != self.user_id:
            return _error(403, "forbidden", "forbidden", "Access to this user is not allowed")
        return None

    async def _list(self, request: web.Request) -> web.StreamResponse:
        reset = self.list_limit.check()
        if reset is not None:
            return _error(
                429,
                "too-many-requests",
                "rate-limit-reached",
                "Rate limit reached: 1 request per second for GET /calls",
                {"X-RateLimit-Reset": str(int(reset * 1000))},
            )
        self.list_requests += 1
        query = request.query
        try:
            page = int(query.get("page", "0"))
            size = int(query.get("size", "25"))
        except ValueError:
            return _error(400, "bad-request", "invalid-parameter", "page and size are integers")
        order = query.get("sortOrder", "desc")
        if page < 0 or not 1 <= size <= 1000 or order not in ("asc", "desc"):
            return _error(
                400,
                "bad-request",
                "invalid-parameter",
                "page >= 0, 1 <= size <= 1000, sortOrder asc or desc",
            )
        rows = [
            c
            for c in self.calls.values()
            if ("from" not in query or c.from_ == query["from"])
            and ("to" not in query or c.to == query["to"])
        ]
        rows.sort(key=lambda c: c.started, reverse=order == "desc")
        chunk = rows[page * size : (page + 1) * size]
        base = f"{request.url.origin()}/v1/users/{self.user_id}/calls"
        headers = {}
        if (page + 1) * size < len(rows):
            headers["Link"] = f'<{base}/?page={page + 1}&size={size}&sortOrder={order}>; rel="next"'
        return web.json_response([c.as_json(base) for c in chunk], headers=headers)

    async def _one(self, request: web.Request) -> web.StreamResponse:
        call = self.calls.get(request.match_info["call"])
        if call is None:
            return _NOT_FOUND()
        base = f"{request.url.origin()}/v1/users/{self.user_id}/calls"
        return web.json_response(call.as_json(base))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        call = self.calls.get(request.match_info["call"])
        return _NOT_FOUND() if call is None else web.json_response(call.events())


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic `Authorization` header, or None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _error(
    status: int, category: str, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"category": category, "code": code, "message": message, "details": []}
    return web.json_response(body, status=status, headers=headers)


def _NOT_FOUND() -> web.Response:
    return _error(404, "not-found", "call-not-found", "The call was not found")
