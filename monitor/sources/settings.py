"""What every provider's settings have in common; each provider's module adds its own keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from monitor.text.redaction import forms
from monitor.text.units import Duration, Size


class Strict(BaseModel):
    """A settings model that rejects unknown keys (a typo is an error) and is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSettings(Strict):
    """Settings every provider shares (SPEC "Config file")."""

    type: str
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    base_url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    poll_interval: Duration = 5.0
    timeout: Duration = 10.0
    max_backoff: Duration = 60.0
    verify_tls: bool | str = True
    retention: Duration = 7 * 86400.0
    max_requests_per_second: float | None = Field(default=None, gt=0)
    max_pages: int | None = Field(default=None, ge=1, le=10000)
    """List pages one poll reads at most; a larger backlog is read by the next polls."""
    max_response_size: Size = 32 * 1024 * 1024
    """A larger response fails its poll (a page is about 1 MiB at the most)."""

    DEFAULT_RPS: ClassVar[float] = 10.0
    DEFAULT_PAGES: ClassVar[int] = 40
    SECRETS: ClassVar[tuple[str, ...]] = ()
    """The keys that hold secrets: each may be given as `KEY_file` instead."""

    @field_validator("verify_tls")
    @classmethod
    def _ca_bundle_exists(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not Path(value).is_file():
            raise ValueError(f"CA bundle {value!r} is not a readable file")
        return value

    @property
    def page_budget(self) -> int:
        """List pages one poll may read."""
        return self.max_pages or self.DEFAULT_PAGES

    @property
    def request_budget(self) -> float:
        """Requests per second this provider may make (its API's documented limit by default)."""
        return self.max_requests_per_second or self.DEFAULT_RPS

    @property
    def doors_with_series(self) -> int | None:
        """How many of its doors get metric series of their own (None: it reports no doors)."""
        return None

    @property
    def recheck_budget(self) -> int:
        """Open calls a poll may fetch by id: half the requests its interval allows (at least
        one second's worth), so a pile of them is read over several polls that each finish."""
        return max(1, int(self.request_budget * max(1.0, self.poll_interval) / 2))

    def secrets(self) -> Iterator[str]:
        """Every secret value this provider holds, in every shape it may leak in."""
        for name in self.SECRETS:
            value = getattr(self, name, None)
            if isinstance(value, SecretStr) and value.get_secret_value():
                yield from forms(value.get_secret_value())
        webhook = getattr(self, "webhook", None)
        if webhook is not None:
            yield from webhook.secrets()
