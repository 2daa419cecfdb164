"""A fake of the AIPIX VMS intercom API, written from the vendor's pages (shared/seeds/vms-*).

It serves `/api/v1/intercom/calls` as a Laravel paginator (newest first, `links`, `meta`),
`/api/v1/intercom/calls/{id}` as a `{data: …}` resource, `/api/v1/intercom/shows`, and
`/api/v1/token`; it checks the documented headers and answers 401/422 as the docs show.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitor.simulator.common import Check, FakeApi, guarded

CLIENTS = frozenset({"ios-cctv", "android-cctv", "thick-legal", "web"})
NAIVE = "%Y-%m-%d %H:%M:%S"


def _naive(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime(NAIVE)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


@dataclass
class Door:
    """One intercom on the fake platform."""

    id: int
    title: str
    address: str
    is_online: bool = True
    camera_id: int = 0

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "is_online": self.is_online,
            "department": 1,
            "address": self.address,
            "camera": {
                "id": self.camera_id or 800 + self.id,
                "group_id": 124,
                "status": "active" if self.is_online else "inactive",
                "type": "media_server_v2",
                "start_at": "",
                "created_at": "2022-02-18 15:03:58",
                "billing_id": None,
                "pretty_name": self.title,
                "lat": None,
                "lng": None,
                "azimuth": None,
                "is_archive_recording": True,
                "is_bridge": False,
                "is_favorite": False,
                "user_status": "active",
                "name": self.title,
            },
            "created_at": "2021-11-18T11:22:30.000000Z",
            "updated_at": _iso(now),
        }

    def shows_json(self, now: float) -> dict[str, Any]:
        """The door as `/intercom/shows` lists it: with its status and timetable."""
        body = self.as_json(now)
        body.update(
            is_enabled=True,
            status="confirmed",
            timetable={
                "days": [
                    {"type": day, "from": "08:00:00+00:00", "to": "18:00:00"}
                    for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
                ],
                "intervals": [],
            },
        )
        return body


@dataclass
class VmsCall:
    """One call record on the fake platform."""

    id: int
    door: Door
    created: float
    status: str = "ring"
    started: float | None = None
    ended: float | None = None

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "created_at": _naive(self.created),
            "intercom": self.door.as_json(now),
            "started_at": _naive(self.started),
            "ended_at": _naive(self.ended),
        }


@dataclass
class VmsApi(FakeApi):
    """The fake platform's state and its HTTP routes."""

    clock: Callable[[], float]
    token: str = "sim-vms-token"
    doors: dict[int, Door] = field(default_factory=dict)
    calls: dict[int, VmsCall] = field(default_factory=dict)
    wrap_single: bool = True
    name: str = "vms-intercom"
    shows_requests: int = 0
    logins: int = 0
    users: dict[str, str] = field(default_factory=lambda: {"callmon": "sim-password"})
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    # --- the platform's behaviour, for the traffic generator and tests

    def add_door(self, door_id: int, title: str, address: str = "") -> Door:
        door = Door(door_id, title, address or f"{title} entrance")
        self.doors[door_id] = door
        return door

    def ring(self, door_id: int, at: float | None = None) -> VmsCall:
        call = VmsCall(next(self._ids), self.doors[door_id], self.clock() if at is None else at)
        self.calls[call.id] = call
        return call

    def answer(self, call_id: int | str, at: float | None = None) -> None:
        call = self.calls[int(call_id)]
        call.status, call.started = "answered", self.clock() if at is None else at

    def end(self, call_id: int | str, at: float | None = None) -> None:
        call = self.calls[int(call_id)]
        call.status, call.ended = "ended", self.clock() if at is None else at

    def miss(self, call_id: int | str, at: float | None = None) -> None:
        self.calls[int(call_id)].status = "missed"

    # --- the rest of the `Line` the traffic generator drives

    def start_call(self, at: float | None = None) -> str:
        """A call rings at a random door."""
        return str(self.ring(self.rng.choice(sorted(self.doors)), at).id)

    hang_up = end
    no_answer = miss
    # A door station has no "declined": rejecting on one device keeps it ringing on the others,
    # so the call ends up missed; the same for a call that could not be set up.
    reject = no_answer
    fail = no_answer

    # --- HTTP

    def routes(self, prefix: str = "") -> list[web.RouteDef]:
        return [
            web.get(f"{prefix}/api/v1/intercom/calls", guarded(self._guard("vms"), self._list)),
            web.get(
                f"{prefix}/api/v1/intercom/calls/{{id}}", guarded(self._guard("vms"), self._one)
            ),
            web.get(
                f"{prefix}/api/v1/intercom/shows", guarded(self._guard("vms-shows"), self._shows)
            ),
            web.post(f"{prefix}/api/v1/token", self._login),
        ]

    def _guard(self, api: str) -> Check:
        """A fault injected for `api`, or a refusal of the request's credentials, if any."""

        async def check(request: web.Request) -> web.StreamResponse | None:
            return await self.faults.apply(api, request) or self._check(request)

        return check

    def _check(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Unauthenticated."}, status=401)
        if request.headers.get("X-Client") not in CLIENTS:
            return _invalid("X-Client", "The selected x-client is invalid.")
        return None

    async def _list(self, request: web.Request) -> web.StreamResponse:
        self.list_requests += 1
        try:
            page = int(request.query.get("page", "1"))
            per_page = int(request.query.get("per_page", "25"))
        except ValueError:
            return _invalid("per_page", "The per page must be an integer.")
        if page < 1 or not 1 <= per_page <= 100:
            return _invalid("per_page", "The per page must be between 1 and 100.")
        rows = sorted(self.calls.values(), key=lambda c: c.id, reverse=True)
        if "intercom" in request.query:
            rows = [c for c in rows if str(c.door.id) == request.query["intercom"]]
        total = len(rows)
        last_page = max(1, -(-total // per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        now = self.clock()
        path = f"{request.url.origin()}{request.path}"

        def link(n: int | None) -> str | None:
            return None if n is None else f"{path}?page={n}"

        first = (page - 1) * per_page + 1 if chunk else None
        body = {
            "data": [c.as_json(now) for c in chunk],
            "links": {
                "first": link(1),
                "last": link(last_page),
                "prev": link(page - 1) if page > 1 else None,
                "next": link(page + 1) if page < last_page else None,
            },
            "meta": {
                "current_page": page,
                "from": first,
                "last_page": last_page,
                "links": _page_links(link, page, last_page),
                "path": path,
                "per_page": per_page,
                "to": None if first is None else first + len(chunk) - 1,
                "total": total,
            },
        }
        return web.json_response(body)

    async def _one(self, request: web.Request) -> web.StreamResponse:
        try:
            call = self.calls[int(request.match_info["id"])]
        except (KeyError, ValueError):
            return web.json_response({"message": "Not found."}, status=404)
        record = call.as_json(self.clock())
        return web.json_response({"data": record} if self.wrap_single else record)

    async def _shows(self, request: web.Request) -> web.StreamResponse:
        try:
            ids = [int(v) for v in request.query.getall("ids[]", [])]
        except ValueError:
            return _invalid("ids", "The ids field must be an array of integers.")
        if not ids:
            return _invalid("ids", "The ids field is required.")
        self.shows_requests += 1
        if len(ids) > 25:
            return _invalid("ids", "The ids may not have more than 25 items.")
        now = self.clock()
        return web.json_response([self.doors[i].shows_json(now) for i in ids if i in self.doors])

    async def _login(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("login") or not body.get("password"):
            return _invalid("login", "The login field is required.")
        self.logins += 1
        if self.users.get(str(body["login"])) != body["password"]:
            return _invalid("login", "These credentials do not match our records.")
        return web.json_response({"access_token": f"Bearer {self.token}"})


def _invalid(key: str, reason: str) -> web.Response:
    return web.json_response({"message": reason, "errors": {key: [reason]}}, status=422)


def _page_links(
    link: Callable[[int | None], str | None], page: int, last_page: int
) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = [
        {
            "url": link(page - 1) if page > 1 else None,
            "label": "pagination.previous",
            "active": False,
        }
    ]
    links += [
        {"url": link(n), "label": str(n), "active": n == page} for n in range(1, last_page + 1)
    ]
    links.append(
        {
            "url": link(page + 1) if page < last_page else None,
            "label": "pagination.next",
            "active": False,
        }
    )
    return links
