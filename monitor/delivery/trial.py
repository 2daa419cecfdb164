"""A test message through every URL of a notifier at once, outside the outbox: `callmon notify
test`, the page's Test button and `POST /api/v1/notifiers/NAME/test`."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.delivery.sender import InvalidTarget, Sender, SendResult
from monitor.model import Severity


@dataclass(frozen=True)
class Tried:
    """One URL's outcome: where (secrets hidden, as apprise shows a URL) and what came of it."""

    number: int
    """Its place in the notifier's `urls`, from 1 (a URL that is a secret as a whole is
    shown masked: the number tells which it is)."""
    target: str
    result: SendResult

    def line(self) -> str:
        """The outcome as `notify test` prints it."""
        where = f"url {self.number}: {self.target}"
        if self.result.ok:
            return f"{where}  sent"
        detail = f": {self.result.detail}" if self.result.detail else ""
        return f"{where}  FAILED ({self.result.reason}{detail})"


def trial_message(notifier: str) -> tuple[str, str]:
    """The title and body of a plain test message."""
    return (
        f"callmon test message for {notifier}",
        f"This is a test sent by callmon on {socket.gethostname()}: notifier {notifier} "
        "reaches this place. Nothing happened at any door.",
    )


async def send_trial(
    urls: Sequence[str],
    title: str,
    body: str,
    *,
    per_url: float = 10.0,
    external_url: str | None = None,
    severity: Severity = Severity.INFO,
) -> list[Tried]:
    """Send `title` and `body` through each URL at once (each within `per_url` seconds); every
    outcome, in the order of `urls`. Never raises."""

    async def one(index: int, url: str) -> Tried:
        try:
            sender = Sender(url, timeout=per_url, external_url=external_url)
        except InvalidTarget as exc:
            return Tried(index + 1, "", SendResult(False, "invalid", str(exc)))
        return Tried(index + 1, sender.display, await sender.send(title, body, severity))

    return list(await asyncio.gather(*(one(i, url) for i, url in enumerate(urls))))
