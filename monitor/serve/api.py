"""The JSON API (`/api/v1/…`) on any replica: status, events, alerts, a call's story, silences,
the outbox and the hourly history, from the store; and a notifier's test message.

Reading needs nothing. Changing needs `Authorization: Bearer TOKEN` when the config sets
`api_token` (401 without it or with a wrong one; past a few wrong ones a second from one
address, 429 without a look at the token); without `api_token` the API is read-only and a
change gets 403. Every answer is JSON; an error is `{"error": "…"}` with a 4xx status (503 when
the store cannot be reached).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from aiohttp import web

from monitor.model import Silence, moment
from monitor.serve import history
from monitor.serve.auth import ApiError, Guesses, authorize
from monitor.serve.silences import new_silence, silence_number
from monitor.serve.trials import Trials, outcome
from monitor.store import Decision, OutboxItem, Records, StoreError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATUSES = ("pending", "sent", "dead")


class Api:
    """The silences and outbox endpoints over the daemon's store."""

    def __init__(
        self,
        store: Callable[[], Records | None],
        token: str | None,
        rules: Callable[[], Collection[str]],
        *,
        status: Callable[[], Mapping[str, Any]] = dict,
        clock: Callable[[], float] = time.time,
        guesses: Guesses | None = None,
        providers: Sequence[str] = (),
        trials: Trials | None = None,
    ) -> None:
        self._store = store
        self._token = token.encode() if token else None
        self._rules = rules
        self._status = status
        self._clock = clock
        self._guesses = guesses or Guesses()
        self._providers = providers
        self._trials = trials or Trials()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/status", self._answer(self.status)),
            web.get("/api/v1/events", self._answer(self.events)),
            web.get("/api/v1/alerts", self._answer(self.alerts)),
            web.get("/api/v1/calls/{provider}/{call:.+}", self._answer(self.call)),
            web.get("/api/v1/silences", self._answer(self.silences)),
            web.post("/api/v1/silences", self._answer(self.add_silence, change=True)),
            web.delete("/api/v1/silences/{id}", self._answer(self.expire_silence, change=True)),
            web.get("/api/v1/outbox", self._answer(self.outbox)),
            web.post("/api/v1/outbox/retry", self._answer(self.retry, change=True)),
            web.get("/api/v1/history", self._answer(self.history)),
            web.post("/api/v1/notifiers/{name}/test", self._answer(self.trial, change=True)),
            web.route("*", "/api/v1/{rest:.*}", self._unknown),
        ]

    async def _unknown(self, request: web.Request) -> web.Response:
        message = f"no endpoint {request.method} {request.path[:100]}"
        return web.json_response({"error": message}, status=404)

    def _answer(
        self,
        work: Callable[[web.Request, Records], Awaitable[tuple[int, Any]]],
        *,
        change: bool = False,
    ) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                if change:
                    self._authorize(request)
                store = self._store()
                if store is None:
                    raise ApiError(503, "the store is not open yet")
                status, body = await work(request, store)
            except ApiError as exc:
                return web.json_response({"error": str(exc)}, status=exc.status)
            except StoreError as exc:
                return web.json_response({"error": str(exc)}, status=503)
            return web.json_response(body, status=status)

        return handle

    def _authorize(self, request: web.Request) -> None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        given_token = given if scheme.lower() == "bearer" else None
        authorize(self._token, given_token, self._guesses, request.remote or "unknown")

    # --- what callmon saw and decided

    async def status(self, request: web.Request, store: Records) -> tuple[int, Any]:
        pending = await store.outbox(status="pending")
        dead = await store.outbox(status="dead")
        return 200, {
            **self._status(),
            "rules": sorted(self._rules()),
            "outbox": {"pending": len(pending), "dead": len(dead)},
            "silences": len(await store.silences(self._clock())),
        }

    async def events(self, request: web.Request, store: Records) -> tuple[int, Any]:
        limit = _limit(request)
        return 200, {"events": [_event(d) for d in await store.latest(limit)]}

    async def alerts(self, request: web.Request, store: Records) -> tuple[int, Any]:
        fired = await store.latest(_limit(request), fired=True)
        deliveries = await store.deliveries({d.alert for d in fired if d.alert})
        found = []
        for d in fired:
            found.append(
                {
                    **_event(d),
                    "rule": d.rule,
                    "how": d.detail,
                    "deliveries": [_item(i) for i in deliveries.get(d.alert or "", ())],
                }
            )
        return 200, {"alerts": found}

    async def call(self, request: web.Request, store: Records) -> tuple[int, Any]:
        provider, call_id = request.match_info["provider"], request.match_info["call"]
        decisions, deliveries = await store.story(provider, call_id)
        if not decisions:
            raise ApiError(404, f"no record of call {call_id[:100]!r} at {provider[:64]!r}")
        steps: list[dict[str, Any]] = []
        for d in decisions:
            if d.rule is None:
                steps.append({**_event(d), "verdicts": []})
            elif steps:
                steps[-1]["verdicts"].append(
                    {
                        "rule": d.rule,
                        "verdict": d.verdict,
                        "detail": d.detail,
                        "deliveries": [_item(i) for i in deliveries.get(d.alert or "", ())],
                    }
                )
        return 200, {"provider": provider, "call_id": call_id, "steps": steps}

    async def history(self, request: web.Request, store: Records) -> tuple[int, Any]:
        try:
            hours = int(request.query.get("hours", "24"))
        except ValueError:
            hours = 0
        if not 1 <= hours <= history.MAX_HOURS:
            raise ApiError(400, f"hours: a number from 1 to {history.MAX_HOURS}")
        now = self._clock()
        tallies = await store.history(now - now % history.HOUR - (hours - 1) * history.HOUR)
        found = history.series(tallies, self._providers, now, hours)
        return 200, {"hours": hours, "series": [s.as_json() for s in found]}

    async def trial(self, request: web.Request, store: Records) -> tuple[int, Any]:
        name = request.match_info["name"]
        tried = await self._trials.run(name)
        outcomes = [outcome(t) for t in tried]
        return 200, {"notifier": name, "ok": all(o["ok"] for o in outcomes), "urls": outcomes}

    # --- silences

    async def silences(self, request: web.Request, store: Records) -> tuple[int, Any]:
        return 200, {"silences": [_silence(s) for s in await store.silences(self._clock())]}

    async def add_silence(self, request: web.Request, store: Records) -> tuple[int, Any]:
        silence = new_silence(await _json(request), self._rules(), self._clock())
        silence_id = await store.add_silence(
            silence.rule, silence.matchers, silence.starts, silence.ends, silence.comment
        )
        return 201, _silence(dataclasses.replace(silence, id=silence_id))

    async def expire_silence(self, request: web.Request, store: Records) -> tuple[int, Any]:
        silence_id = silence_number(request.match_info["id"])
        if not await store.expire_silence(silence_id, self._clock()):
            raise ApiError(404, f"no silence {silence_id} in force")
        return 200, {"id": silence_id, "expired": True}

    # --- the outbox

    async def outbox(self, request: web.Request, store: Records) -> tuple[int, Any]:
        status = request.query.get("status")
        if status is not None and status not in STATUSES:
            raise ApiError(400, f"status: one of {', '.join(STATUSES)}")
        return 200, {"outbox": [_item(i) for i in await store.outbox(status=status)]}

    async def retry(self, request: web.Request, store: Records) -> tuple[int, Any]:
        body = await _json(request, empty_ok=True)
        notifier, dead = body.get("notifier"), body.get("dead", False)
        if notifier is not None and not isinstance(notifier, str):
            raise ApiError(400, "notifier: a notifier's name")
        if not isinstance(dead, bool):
            raise ApiError(400, "dead: true or false")
        return 200, {"retried": await store.outbox_retry(dead=dead, notifier=notifier)}


async def _json(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    if empty_ok and not await request.read():
        return {}
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise ApiError(400, "the body is not JSON (or is nested too deeply)") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body is a JSON object")
    return body


def _limit(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        raise ApiError(400, "limit: a number from 1 to 1000") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "limit: a number from 1 to 1000")
    return limit


def _event(d: Decision) -> dict[str, Any]:
    return {
        "at": _iso(d.at),
        "provider": d.provider,
        "call_id": d.call_id,
        "subject": d.subject,
        "kind": d.kind,
        "from": d.from_state,
        "to": d.to_state,
        "via": d.via,
    }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else moment(ts).isoformat()


def _silence(s: Silence) -> dict[str, Any]:
    return {
        "id": s.id,
        "rule": s.rule,
        "match": dict(s.matchers),
        "starts": _iso(s.starts),
        "ends": _iso(s.ends),
        "comment": s.comment,
    }


def _item(i: OutboxItem) -> dict[str, Any]:
    return {
        "id": i.id,
        "notifier": i.notifier,
        "target": i.target,
        "rule": i.rule,
        "severity": i.severity,
        "title": i.title,
        "created_at": _iso(i.created_at),
        "event_at": _iso(i.event_at),
        "attempts": i.attempts,
        "status": i.status,
        "last_error": i.last_error,
        "tries": [{"at": _iso(t.at), "outcome": t.outcome, "error": t.error} for t in i.tries],
    }
