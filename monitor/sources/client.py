"""What every provider client keeps: its settings, its name, its HTTP client (with the API's
headers) and the memory of the records it skipped. A client module adds the API itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

import aiohttp

from monitor.model import Call, PollResult
from monitor.sources.base import NoPushes, Rechecks, TrackedView
from monitor.sources.http import HttpClient, RequestObserver
from monitor.sources.paging import (
    Key,
    NewestFirst,
    Page,
    WindowPage,
    read_newest_first,
    read_window,
)
from monitor.sources.records import Skips
from monitor.sources.settings import ProviderSettings

S = TypeVar("S", bound=ProviderSettings)


class ApiClient(Generic[S]):
    """A client of one configured provider; `headers` gives what each request carries."""

    type: ClassVar[str]

    def __init__(
        self, settings: S, session: aiohttp.ClientSession, observe: RequestObserver | None = None
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        headers = {"Accept": "application/json", **self.headers(settings)}
        self.http = HttpClient.for_provider(settings, session, observe, headers)
        self._skips = Skips(self.name)
        self._rechecks = Rechecks(settings.recheck_budget)
        self.setup(settings)

    def setup(self, settings: S) -> None:
        """What else the client keeps (its URLs, its own state)."""

    def headers(self, settings: S) -> Mapping[str, str]:
        """The headers of every request: credentials, the API's own."""
        return {}

    async def poll(self, view: TrackedView) -> PollResult:
        """Fetch every call that is new or may have changed since the view was taken."""
        raise NotImplementedError

    async def pushed(self, body: str) -> list[Call]:
        """The calls a kept push (the text its `accept` returned) tells of; raises on a push
        that cannot be read. Only the types with a webhook implement it."""
        raise NoPushes(f"provider {self.name}: {self.type} takes no pushes")

    async def read_window(
        self,
        page: WindowPage,
        view: TrackedView,
        result: PollResult,
        *,
        mark_key: str,
        start: Callable[[datetime | None, datetime], datetime],
        first_token: str | int | None = None,
    ) -> set[str]:
        """Drain the API's time window (see `paging.read_window`) into `result`; the ids read."""
        window = await read_window(
            page,
            provider=self.name,
            cursor=view.cursor,
            mark_key=mark_key,
            start=start,
            read=lambda raw: self._skips.read(self.decode, raw, result),
            budget=self._settings.page_budget,
            first_token=first_token,
        )
        result.calls, result.cursor = window.calls, window.cursor
        return {call.id for call in window.calls}

    async def read_newest_first(
        self,
        page: Callable[[int], Awaitable[Page]],
        view: TrackedView,
        *,
        first: int,
        key: Key,
        mark: float | None,
        per_page: int,
        stop: float | None = None,
        seen_before: Callable[[Call], bool] | None = None,
    ) -> NewestFirst:
        """Read a newest-first list down to the mark, then on with the stored backfill (see
        `paging.read_newest_first`); a baseline reads only the newest page."""
        return await read_newest_first(
            page,
            provider=self.name,
            first=first,
            key=key,
            mark=mark,
            stop=stop,
            backfill=view.cursor.get("backfill"),
            budget=self._settings.page_budget,
            deep=view.baselined,
            per_page=per_page,
            seen_before=seen_before,
        )

    def decode(self, raw: bytes) -> Call:
        """One record of the API → `Call`; raises on a record that cannot be read."""
        raise NotImplementedError
