"""A fake of Bird's channel calls API, written from the vendor's page (shared/seeds/bird-*).

`GET /workspaces/{workspaceId}/channels/{channelId}/calls` with `limit`, `pageToken`, `startAt`,
`endAt`, `status`, `direction`; `{results, nextPageToken}`; `GET …/calls/{callId}`. AccessKey
auth (Bearer accepted when configured), every endpoint rate limited with 429 and `Retry-After`.
With a webhook subscription, every status change is also posted, signed, as Bird's
`voice.inbound`/`voice.outbound` events are (PROVIDERS.md section 5).
Page tokens are offsets into the list as it is at each request, so calls that arrive while a
client pages shift records between pages, as a live list does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from monitor.simulator.common import FakeApi, RateLimit, guarded, parse_rfc3339, rfc3339


@dataclass
class BirdCall:
    id: str
    direction: str
    from_: str
    to: str
    created: float
    status: str = "ringing"
    updated: float = 0.0
    ringing: float | None = None
    answered: float | None = None
    ended: float | None = None
    hangup_source: str | None = None
    hangup_cause: int | None = None

    def as_json(self, channel_id: str) -> dict[str, Any]:
        number = {"type": "pstn", "anonymous": False, "countryIsoCode": "NL"}
        duration = 0
        if self.answered is not None and self.ended is not None:
            duration = round(self.ended - self.answered)
        return {
            "id": self.id,
            "channelId": channel_id,
            "from": self.from_,
            "to": self.to,
            "originator": {"number": {**number, "number": self.from_}},
            "receiver": {"number": {**number, "number": self.to}},
            "direction": self.direction,
            "status": self.status,
            "type": "pstn",
            "duration": duration,
            "hangupCauseCode": self.hangup_cause,
            "hangupSource": self.hangup_source,
            "createdAt": rfc3339(self.created),
            "updatedAt": rfc3339(self.updated or self.created),
            "ringingAt": rfc3339(self.ringing),
            "answeredAt": rfc3339(self.answered),
            "endedAt": rfc3339(self.ended),
            "tags": [],
        }


@dataclass
class Subscription:
    """Where Bird posts a channel's call events, and the key it signs them with: base64 of
    HMAC-SHA256 over the timestamp, the subscription's URL and the body's SHA-256, joined by
    newlines, in `messagebird-signature` beside `messagebird-request-timestamp`."""

    post_to: str
    signing_key: str
    url: str

    def sign(self, body: bytes, stamp: str) -> str:
        digest = hashlib.sha256(body).digest()
        signed = stamp.encode() + b"\n" + self.url.encode() + b"\n" + digest
        mac = hmac.new(self.signing_key.encode(), signed, hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    async def post(self, body: bytes) -> int:
        """Post one event; the receiver's status (0 when it could not be reached)."""
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "messagebird-request-timestamp": stamp,
            "messagebird-signature": self.sign(body, stamp),
        }
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(self.post_to, data=body, headers=headers) as resp,
            ):
                return resp.status
        except aiohttp.ClientError:
            return 0


@dataclass
class BirdApi(FakeApi):
    """The fake channel's state and routes."""

    access_key: str = "sim-bird-key"
    workspace_id: str = "0f5c2ad8-5d5b-4a8e-9d43-2a2c1d3e0001"
    channel_id: str = "6a1f4e57-3c2b-4b7d-8e2f-1b2c3d4e0002"
    scheme: str = "AccessKey"
    rate_limit: RateLimit = field(default_factory=lambda: RateLimit(50, 1.0))
    calls: dict[str, BirdCall] = field(default_factory=dict)
    name: str = "bird"
    subscription: Subscription | None = None
    """A webhook subscription: every status change is posted to it, signed."""

    def subscribe(self, post_to: str, signing_key: str, url: str | None = None) -> None:
        """Subscribe to `voice.inbound` and `voice.outbound`: post each change to `post_to`,
        signed with `signing_key` over `url` (the subscription's public URL; `post_to` when
        None)."""
        self.subscription = Subscription(post_to, signing_key, url or post_to)

    def _push(self, call: BirdCall) -> None:
        """Post the call's new status, as Bird's webhook does (when subscribed and running)."""
        sub = self.subscription
        if sub is None:
            return
        event = "voice.inbound" if call.direction == "incoming" else "voice.outbound"
        payload = {"service": "channels", "event": event, "payload": call.as_json(self.channel_id)}
        self.push(lambda: sub.post(json.dumps(payload).encode()))

    # --- the line the traffic drives

    def start_call(self, at: float | None = None) -> str:
        now = self.at(at)
        incoming = self.rng.random() < 0.8
        ours, theirs = "+31201234567", f"+316{self.number():08d}"
        call = BirdCall(
            id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            direction="incoming" if incoming else "outgoing",
            from_=theirs if incoming else ours,
            to=ours if incoming else theirs,
            created=now,
            updated=now,
            ringing=now,
        )
        self.calls[call.id] = call
        self._push(call)
        return call.id

    def _set(self, call_id: str, status: str, at: float | None, **times: float) -> BirdCall:
        call = self.calls[call_id]
        call.status, call.updated = status, self.at(at)
        for key, value in times.items():
            setattr(call, key, value)
        self._push(call)
        return call

    def answer(self, call_id: str, at: float | None = None) -> None:
        self._set(call_id, "ongoing", at, answered=self.at(at))

    def hang_up(self, call_id: str, at: float | None = None) -> None:
        call = self._set(call_id, "completed", at, ended=self.at(at))
        call.hangup_source, call.hangup_cause = "callee", 16

    def no_answer(self, call_id: str, at: float | None = None) -> None:
        status = "no-answer" if self.rng.random() < 0.7 else "cancelled"
        call = self._set(call_id, status, at, ended=self.at(at))
        call.hangup_source = "system" if status == "no-answer" else "caller"
        call.hangup_cause = 19 if status == "no-answer" else 487

    def reject(self, call_id: str, at: float | None = None) -> None:
        call = self._set(call_id, "busy", at, ended=self.at(at))
        call.hangup_source, call.hangup_cause = "callee", 17

    def fail(self, call_id: str, at: float | None = None) -> None:
        call = self._set(call_id, "failed", at, ended=self.at(at))
        call.hangup_source, call.hangup_cause = "system", 41

    # --- HTTP

    def routes(self) -> list[web.RouteDef]:
        base = "/workspaces/{workspace}/channels/{channel}/calls"
        return [
            web.get(base, guarded(self._guard, self._list)),
            web.get(base + "/{call}", guarded(self._guard, self._one)),
        ]

    async def _guard(self, request: web.Request) -> web.StreamResponse | None:
        self.requests += 1
        fault = await self.faults.apply("bird", request)
        if fault is not None:
            return fault
        retry_at = self.rate_limit.check()
        if retry_at is not None:
            wait = max(1, round(retry_at - self.clock() + 0.5))
            return _error(429, "TooManyRequests", "Rate limit exceeded", {"Retry-After": str(wait)})
        if request.headers.get("Authorization") != f"{self.scheme} {self.access_key}":
            return _error(401, "Unauthorized", "Invalid or missing access key")
        if (
            request.match_info["workspace"] != self.workspace_id
            or request.match_info["channel"] != self.channel_id
        ):
            return _error(404, "NotFound", "Channel not found")
        return None

    async def _list(self, request: web.Request) -> web.StreamResponse:
        self.list_requests += 1
        query = request.query
        try:
            limit = int(query.get("limit", "10"))
            offset = _offset(query.get("pageToken"))
            start = parse_rfc3339(query["startAt"]) if "startAt" in query else None
            end = parse_rfc3339(query["endAt"]) if "endAt" in query else None
        except (ValueError, TypeError):
            return _error(422, "InvalidPayload", "Invalid query parameters")
        if not 1 <= limit <= 1000:
            return _error(422, "InvalidPayload", "limit must be between 1 and 1000")
        statuses = set(query.getall("status", []))
        rows = sorted(self.calls.values(), key=lambda c: c.created, reverse=True)
        rows = [
            c
            for c in rows
            if (start is None or c.created >= start)
            and (end is None or c.created <= end)
            and (not statuses or c.status in statuses)
            and ("direction" not in query or c.direction == query["direction"])
        ]
        chunk = rows[offset : offset + limit]
        body: dict[str, Any] = {"results": [c.as_json(self.channel_id) for c in chunk]}
        if offset + limit < len(rows):
            body["nextPageToken"] = _token(offset + limit)
        return web.json_response(body)

    async def _one(self, request: web.Request) -> web.StreamResponse:
        call = self.calls.get(request.match_info["call"])
        if call is None:
            return _error(404, "NotFound", "Call not found")
        return web.json_response(call.as_json(self.channel_id))


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    if not text.startswith("o:"):
        raise ValueError("bad page token")
    return int(text[2:])


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status, headers=headers)
