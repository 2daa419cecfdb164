"""The status page at `/` and each call's story at `/calls/PROVIDER/ID`: server-rendered HTML
(`monitor/serve/templates/`) that works without JavaScript, refreshes itself, reads well on a phone,
and loads nothing from elsewhere. Every value is escaped (door titles come from outside); no
caller number is shown.
The last 24 hours are drawn per provider and door (`monitor.serve.history`). With `api_token`
configured, a form adds a silence, a button expires one, and a button per notifier sends it a
test message (the token is asked for in the form).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import tzinfo
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup
from prometheus_client import CollectorRegistry

from monitor.model import moment
from monitor.serve import history
from monitor.serve.auth import ApiError, Guesses, authorize
from monitor.serve.silences import new_silence, silence_number
from monitor.serve.trials import Trials, outcome
from monitor.serve.web import STYLE
from monitor.store import Records, StoreError

REFRESH = 10
"""Seconds between the page's own reloads."""


class StatusPage:
    """`GET /`, `GET /calls/PROVIDER/ID`, and the silence forms."""

    def __init__(
        self,
        store: Callable[[], Records | None],
        token: str | None,
        rules: Callable[[], Collection[str]],
        overview: Callable[[], Mapping[str, Any]],
        registry: CollectorRegistry,
        zone: tzinfo,
        *,
        clock: Callable[[], float] = time.time,
        guesses: Guesses | None = None,
        providers: Sequence[str] = (),
        trials: Trials | None = None,
    ) -> None:
        self._store = store
        self._providers = providers
        self._trials = trials or Trials()
        self._drawn: tuple[Any, list[tuple[history.Series, Any, str]]] | None = None
        self._guesses = guesses or Guesses()
        self._token = token.encode() if token else None
        self._rules = rules
        self._overview = overview
        self._registry = registry
        self._zone = zone
        self._clock = clock
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("monitor.serve", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["when"] = self._when
        self._env = env

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.status),
            web.get("/calls/{provider}/{call:.+}", self.story),
            web.post("/silences", self.add_silence),
            web.post("/silences/{id}/expire", self.expire_silence),
            web.post("/notifiers/{name}/test", self.trial),
        ]

    def _when(self, ts: float | None) -> str:
        if ts is None:
            return ""
        return moment(ts, self._zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    def _render(self, name: str, status: int = 200, **values: Any) -> web.Response:
        overview = self._overview()
        html = self._env.get_template(f"{name}.html").render(
            role=overview.get("role", "leader"),
            now=self._when(self._clock()),
            refresh=REFRESH if name == "status" else 0,
            error=values.pop("error", None),
            title=values.pop("title", "callmon"),
            style=Markup(STYLE),
            **values,
        )
        return web.Response(text=html, status=status, content_type="text/html")

    async def status(self, request: web.Request) -> web.Response:
        store = self._store()
        if store is None:
            return self._render("error", 503, error="the store is not open yet")
        overview = self._overview()
        try:
            fired = await store.latest(20, fired=True)
            values = {
                "providers": overview.get("providers", {}),
                "doors": overview.get("doors", []),
                "event_loop": overview.get("event_loop"),
                "calls": await store.open_calls(50),
                "events": await store.latest(20),
                "alerts": fired,
                "deliveries": await store.deliveries({d.alert for d in fired if d.alert}),
                "outbox": [
                    *await store.outbox(status="pending"),
                    *await store.outbox(status="dead"),
                ][:50],
                "silences": await store.silences(self._clock()),
                "history": await self._history(store),
            }
        except StoreError as exc:
            return self._render("error", 503, error=str(exc))
        rules = sorted(self._rules())
        fired_by_rule = self._fired_by_rule()
        counts = [(r, int(fired_by_rule.get(r, 0))) for r in rules]
        return self._render(
            "status",
            rules=rules,
            fired=counts,
            changes=self._token is not None,
            notifiers=self._trials.names,
            **values,
        )

    def _fired_by_rule(self) -> dict[str, float]:
        """`callmon_rule_fired_total` by rule, read from that metric alone (the whole registry
        holds series for every provider: thousands of them in a large fleet)."""
        only = self._registry.restricted_registry(["callmon_rule_fired_total"])
        return {
            s.labels["rule"]: s.value
            for metric in only.collect()
            for s in metric.samples
            if s.name == "callmon_rule_fired_total"
        }

    async def _history(self, store: Records) -> list[tuple[history.Series, Any, str]]:
        """The last 24 hours per provider and door: each series, its chart, its hours as text;
        drawn again only when the counts changed (the page reloads every few seconds, the
        counts change as calls end)."""
        now = self._clock()
        since = now - now % history.HOUR - 23 * history.HOUR
        tallies = await store.history(since)
        key = (since, tuple(tallies))
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        found = history.series(tallies, self._providers, now, 24)
        times = history.clock_times(found[0].starts, self._zone) if found else []
        drawn = [(s, history.chart(s), history.hourly(s, times)) for s in found]
        self._drawn = (key, drawn)
        return drawn

    async def story(self, request: web.Request) -> web.Response:
        provider, call_id = request.match_info["provider"], request.match_info["call"]
        store = self._store()
        if store is None:
            return self._render("error", 503, error="the store is not open yet")
        try:
            decisions, deliveries = await store.story(provider, call_id)
        except StoreError as exc:
            return self._render("error", 503, error=str(exc))
        return self._render(
            "story",
            200 if decisions else 404,
            title=f"callmon · {provider} call {call_id}",
            provider=provider,
            call_id=call_id,
            decisions=decisions,
            deliveries=deliveries,
        )

    async def add_silence(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            self._authorize(request, form)
            match = str(form.get("match", "")).strip()
            field, _, value = match.partition("=")
            body = {
                "rule": str(form.get("rule", "")),
                "match": {field.strip(): value.strip()} if match else {},
                "for": str(form.get("for", "")),
                "comment": str(form.get("comment", "")),
            }
            silence = new_silence(body, self._rules(), self._clock())
            store = self._ready()
            await store.add_silence(
                silence.rule, silence.matchers, silence.starts, silence.ends, silence.comment
            )
        except ApiError as exc:
            return self._render("error", exc.status, error=str(exc))
        except StoreError as exc:
            return self._render("error", 503, error=str(exc))
        raise web.HTTPSeeOther("/")

    async def expire_silence(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            self._authorize(request, form)
            silence_id = silence_number(request.match_info["id"])
            await self._ready().expire_silence(silence_id, self._clock())
        except ApiError as exc:
            return self._render("error", exc.status, error=str(exc))
        except (StoreError, ValueError) as exc:
            return self._render("error", 400, error=str(exc))
        raise web.HTTPSeeOther("/")

    async def trial(self, request: web.Request) -> web.Response:
        form = await request.post()
        name = request.match_info["name"]
        try:
            self._authorize(request, form)
            tried = await self._trials.run(name)
        except ApiError as exc:
            return self._render("error", exc.status, error=str(exc))
        outcomes = [outcome(t) for t in tried]
        return self._render(
            "trial", title=f"callmon · test of {name}", notifier=name, urls=outcomes
        )

    def _authorize(self, request: web.Request, form: Mapping[str, Any]) -> None:
        given = str(form.get("token", "")) or None
        authorize(self._token, given, self._guesses, request.remote or "unknown")

    def _ready(self) -> Records:
        store = self._store()
        if store is None:
            raise ApiError(503, "the store is not open yet")
        return store
