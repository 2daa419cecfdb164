"""`callmon probe [PROVIDER...]`: each configured provider asked once, with its credentials,
through the daemon's own client and decoding, and nothing written: whether the credentials work,
what callmon can read, how the provider's clock and rate limit stand, and where to point its
webhook."""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote

from monitor.cli.common import EXIT_INVALID, EXIT_OK, Failure, Subparsers, load, with_config
from monitor.config import Config
from monitor.model import Call

RATE_HEADERS = (
    ("x-ratelimit-remaining", "x-ratelimit-limit"),
    ("ratelimit-remaining", "ratelimit-limit"),
    ("x-rate-limit-remaining", "x-rate-limit-limit"),
)
"""Where APIs say how many requests are left (and of how many)."""


def add_parsers(sub: Subparsers) -> None:
    probe = sub.add_parser(
        "probe", help="ask each provider once with the configured credentials; write nothing"
    )
    probe.add_argument("providers", nargs="*", metavar="PROVIDER", help="only these providers")
    with_config(probe)
    probe.set_defaults(func=cmd_probe)


class NothingSeen:
    """The tracker's view of a first start: nothing known, so a poll reads what a baseline
    would (the newest calls) and nothing is written anywhere."""

    baselined = False
    cursor: Mapping[str, Any] = {}

    def knows(self, call_id: str) -> bool:
        return False

    def open_calls(self) -> Iterable[str]:
        return ()

    def changed(self, call: Call) -> bool:
        return True


@dataclass(frozen=True)
class Answer:
    """What one provider said."""

    name: str
    ok: bool
    sentence: str


def cmd_probe(args: argparse.Namespace) -> int:
    answers = asyncio.run(probe(load(args.config), args.providers))
    width = max(len(a.name) for a in answers)
    for answer in answers:
        print(f"{answer.name:<{width}}  {'ok    ' if answer.ok else 'FAILED'}  {answer.sentence}")
    return EXIT_OK if all(a.ok for a in answers) else EXIT_INVALID


async def probe(config: Config, names: Sequence[str] = ()) -> list[Answer]:
    """Ask each provider of `config` (or those in `names`) once, all at once."""
    import aiohttp

    unknown = set(names) - {p.name for p in config.providers}
    if unknown:
        raise Failure(f"no provider {', '.join(sorted(unknown))} in the config")
    chosen = [p for p in config.providers if not names or p.name in names]
    if not chosen:
        raise Failure("the config has no provider to probe")
    async with aiohttp.ClientSession() as session:
        asked = (_probe(p, session, config.external_url) for p in chosen)
        return list(await asyncio.gather(*asked))


async def _probe(settings: Any, session: Any, external_url: str | None) -> Answer:
    from monitor import sources
    from monitor.sources.base import ProviderError

    client: Any = sources.build(settings, session)
    http = getattr(client, "http", None)  # a plugin may lack one
    if http is not None:
        http.keep_last = True
    deadline = max(settings.timeout * 3, 10.0)
    try:
        result = await asyncio.wait_for(client.poll(NothingSeen()), deadline)
    except ProviderError as exc:
        return Answer(settings.name, False, _said(exc))
    except TimeoutError:
        sentence = f"provider {settings.name}: no answer within {deadline:g} s (a timeout)"
        return Answer(settings.name, False, sentence)
    except Exception as exc:  # a bug of the client's: said, not raised
        sentence = f"provider {settings.name}: unexpected {type(exc).__name__}: {exc}"
        return Answer(settings.name, False, sentence[:300])
    last = getattr(http, "last", None)
    parts = [f"HTTP {last.status}"] if last is not None else []
    created = [c.created_at for c in result.calls if c.created_at is not None]
    newest = f", newest {max(created).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if created else ""
    if result.calls:
        parts.append(f"{len(result.calls)} calls read{newest}")
    else:
        parts.append("0 calls read (none in what a first start reads)")
    if result.skipped:
        parts.append(f"{result.skipped} records unreadable (skipped; the log says why)")
    headers = last.headers if last is not None else {}
    if (offset := _clock_offset(headers)) is not None:
        parts.append(_clock(offset))
    if (budget := _rate_budget(headers)) is not None:
        parts.append(f"rate limit {budget}")
    if (hook := webhook_url(settings, external_url)) is not None:
        parts.append(f"webhook: {hook}")
    return Answer(settings.name, True, "; ".join(parts))


def _said(exc: Exception) -> str:
    """A provider's failure as one sentence (it names the provider and the cause already)."""
    from monitor.sources.base import AuthError, BadResponse

    text = str(exc)
    if isinstance(exc, AuthError):
        return f"{text}: check its credentials"
    if isinstance(exc, BadResponse):
        return f"{text} (an answer callmon cannot read: is base_url the API's root?)"
    return text


def _clock_offset(headers: Mapping[str, str]) -> float | None:
    """The provider's clock minus ours, from its `Date` header (which tells whole seconds, cut
    down: half a second is added back)."""
    value = headers.get("date")
    if not value:
        return None
    try:
        theirs = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=UTC)
    return theirs.timestamp() + 0.5 - time.time()


def _clock(offset: float) -> str:
    """The offset as an operator reads it (a `Date` header tells whole seconds only)."""
    if abs(offset) <= 1.0:
        return "clock within 1 s of ours"
    return f"clock {abs(offset):.0f} s {'ahead of' if offset > 0 else 'behind'} ours"


def _rate_budget(headers: Mapping[str, str]) -> str | None:
    """`remaining/limit` of the requests the API allows, where it says."""
    for remaining, limit in RATE_HEADERS:
        if remaining in headers:
            total = headers.get(limit)
            return f"{headers[remaining]}/{total} left" if total else f"{headers[remaining]} left"
    return None


def webhook_url(settings: Any, external_url: str | None) -> str | None:
    """Where the provider must post its pushes, for a provider with `webhook:` (secrets shown as
    placeholders: the operator has them already)."""
    if getattr(settings, "webhook", None) is None:
        return None
    base = (external_url or "https://CALLMON-ADDRESS").rstrip("/")
    path = f"/hooks/{quote(settings.name)}"
    if settings.type == "cinnox":
        return f"{base}{path}?token=YOUR-WEBHOOK-TOKEN"
    if settings.type == "bandwidth":
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{settings.webhook.username}:PASSWORD@{rest}{path}"
    if settings.type == "bird":
        return str(settings.webhook.url)
    return f"{base}{path}"
