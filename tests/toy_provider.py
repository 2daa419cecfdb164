"""A fifth provider, written in tests/ alone: one module (settings, client, states, a plugin)
plus one line that registers it, and callmon takes it everywhere (#25). Its API is a list of
calls at `GET /calls` with a bearer token (`ToyApi`).

`python -m tests.toy_provider ARGS` is `callmon ARGS` with the toy registered.
"""

from __future__ import annotations

import sys
from typing import ClassVar, Literal

import msgspec
from aiohttp import web
from pydantic import SecretStr

from monitor.model import Call, PollResult
from monitor.sources import records
from monitor.sources.base import TrackedView, decode_body
from monitor.sources.client import ApiClient
from monitor.sources.plugin import Plugin
from monitor.sources.settings import ProviderSettings

TYPE = "toy"
STATES = records.statuses(ringing=("ring",), answered=("talk",), ended=("done",), missed=("lost",))


class ToySettings(ProviderSettings):
    """The toy API's keys: its token."""

    type: Literal["toy"]
    token: SecretStr

    SECRETS: ClassVar[tuple[str, ...]] = ("token",)


class _Record(msgspec.Struct):
    id: str
    status: str
    created: str


class Toy(ApiClient[ToySettings]):
    """Reads the whole list each poll (the toy's lists are short)."""

    type = TYPE

    def headers(self, settings: ToySettings) -> dict[str, str]:
        return {"Authorization": f"Bearer {settings.token.get_secret_value()}"}

    async def poll(self, view: TrackedView) -> PollResult:
        resp = await self.http.get(f"{self._base}/calls", {})
        result = PollResult()
        for raw in decode_body(self.name, "call list", resp.body, list[msgspec.Raw]):
            if (call := self._skips.read(self.decode, raw, result)) is not None:
                result.calls.append(call)
        return result

    def decode(self, raw: bytes) -> Call:
        rec = msgspec.json.decode(raw, type=_Record)
        return records.new_call(
            raw,
            id=rec.id,
            state=records.known_state(STATES, rec.status, "status"),
            raw_status=rec.status,
            times=records.call_times(("created", "", ""), rec.created, None, None),
            marker=rec.status,
        )


PLUGIN = Plugin(
    TYPE,
    ToySettings,
    Toy,
    frozenset(STATES.values()),
    starter="""\
  - name: toy-line
    type: toy
    base_url: ${TOY_BASE_URL}
    token: ${TOY_TOKEN}
    poll_interval: 200ms
""",
)


class ToyApi:
    """The toy provider's API, for the test: calls that ring and end as the test says."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: dict[str, dict[str, str]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/calls", self._list)
        return app

    async def _list(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response(list(self.calls.values()))


def main() -> int:
    from monitor.__main__ import main as callmon
    from monitor.sources import register

    register(PLUGIN)  # the one line
    return callmon()


if __name__ == "__main__":
    sys.exit(main())
