"""What every provider client keeps: its settings, its name, its HTTP client (with the API's
headers) and the memory of the records it skipped. A client module adds the API itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Generic, TypeVar

import aiohttp

from monitor.model import PollResult
from monitor.providers.base import Skips, TrackedView
from monitor.providers.http import HttpClient, RequestObserver
from monitor.providers.settings import ProviderSettings

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
        self.setup(settings)

    def setup(self, settings: S) -> None:
        """What else the client keeps (its URLs, its own state)."""

    def headers(self, settings: S) -> Mapping[str, str]:
        """The headers of every request: credentials, the API's own."""
        return {}

    async def poll(self, view: TrackedView) -> PollResult:
        """Fetch every call that is new or may have changed since the view was taken."""
        raise NotImplementedError
