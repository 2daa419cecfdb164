"""The only module that imports apprise: one target URL, sent with a deadline, in a bounded pool.

`Apprise.notify` blocks and swallows plugin exceptions into a result, so each send runs in our own
small thread pool, under our own timeout, and comes back as a `SendResult` with a bounded reason.

apprise is imported when the first target is made, not with this module: finding its plugins
takes a fifth of a second, which no command needs before its first alert (the daemon warms it up
once it is ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from monitor.model import Severity

T = TypeVar("T")

_NOTIFY_TYPES = {
    Severity.INFO: "info",
    Severity.WARNING: "warning",
    Severity.CRITICAL: "failure",
}
"""apprise's `NotifyType` values."""
_LOADING = threading.Lock()
_registered = False


def _apprise() -> Any:
    """The apprise module, with callmon's `console://` registered (once)."""
    global _registered
    import apprise

    with _LOADING:
        if not _registered:
            apprise.decorators.notify(on="console", name="callmon console", body_format="text")(
                _console
            )
            _registered = True
    return apprise


def _console(body: str, title: str, notify_type: str, *args: Any, **kwargs: Any) -> bool:
    """`console://`: print the alert to standard output (the demo's notifier)."""
    label = {"failure": "CRITICAL"}.get(str(notify_type), str(notify_type).upper())
    text = f"[{label}] {title}" + (f"\n    {body}" if body else "")
    print(text, file=sys.stdout, flush=True)
    return True


class InvalidTarget(ValueError):
    """An apprise URL that apprise does not understand."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one send attempt came to: ok, or a reason (`failed`, `timeout`, `error`)."""

    ok: bool
    reason: str = "sent"
    detail: str = ""


DEADLINE_GRACE = 1.0
"""Beyond the notifier's timeout, the time apprise gets to report its own timeout."""
SEND_THREADS = threading.BoundedSemaphore(4)
"""At most this many apprise sends run at once."""


async def in_thread(work: Callable[[], T]) -> T:
    """Run blocking `work` in a daemon thread of its own: a send that hangs past its deadline
    is abandoned there and can never hold up the process's exit (a pool's threads would)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def run() -> None:
        with SEND_THREADS:
            try:
                value: T | None = work()
                error: BaseException | None = None
            except BaseException as exc:  # handed to the awaiting task
                value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=run, name="apprise-send", daemon=True).start()
    return await future


def warm_up() -> None:
    """Load apprise's plugins now (about 0.3 s) rather than on the first alert."""
    _apprise().Apprise().add("json://localhost")


MARKUP = re.compile(r"([\\`*_\[\]~<>])")
"""What would start markdown (or Slack's) formatting in an alert's text, which is plain text: each
is escaped when the text is sent as markdown, so that a door called `Back_door` reads as
written (an unmatched `_` even makes Telegram refuse the message)."""


class Sender:
    """One apprise target. With `external_url`, every message ends with a link: to its call's
    story, or to the page for a message about no one call; as markdown to a target that takes
    markdown (or HTML, which apprise converts it to), as plain text to any other."""

    def __init__(self, url: str, *, timeout: float = 10.0, external_url: str | None = None) -> None:
        self._apprise = _apprise().Apprise()
        if not self._apprise.add(url):
            raise InvalidTarget("not a valid apprise URL")
        self.timeout = timeout
        plugin = self._apprise[0]
        # apprise's own socket timeouts (4 s by default) would give up on a slow target that
        # then takes the message after all, and the retry would send it twice: the target
        # gets the notifier's whole `timeout` instead.
        plugin.socket_connect_timeout = timeout
        plugin.socket_read_timeout = timeout
        shown = plugin.url(privacy=True).split("?")[0].rstrip("/")  # apprise's options: noise
        self.display = shown if "://" in shown else f"{url.split('://')[0]}://…"
        """The URL as it may be shown: apprise hides its secrets."""
        self.external_url = external_url
        self.markup = plugin.resolve_format("markdown").value in ("markdown", "html")
        """Whether the target takes markdown (or HTML, which apprise turns markdown into)."""

    def compose(self, body: str, story: str | None) -> tuple[str, str | None]:
        """The body as sent (with its link, when there is an `external_url`) and its format
        (None: as written)."""
        if self.external_url is None:
            return body, None
        link = f"{self.external_url}/{story or ''}"
        label = "Open this call in callmon" if story else "Open callmon"
        if self.markup:
            escaped = MARKUP.sub(r"\\\1", body)
            return f"{escaped}\n\n[{label}]({link})", "markdown"
        return f"{body}\n\n{label}: {link}", None

    async def send(
        self, title: str, body: str, severity: Severity, story: str | None = None
    ) -> SendResult:
        """Send once; never raises."""
        text, body_format = self.compose(body or title, story)

        def call() -> bool:
            result = self._apprise.notify(
                body=text,
                title=title,
                notify_type=_NOTIFY_TYPES[severity],
                body_format=body_format,
            )
            return bool(result)

        timed_out = SendResult(False, "timeout", f"no answer within {self.timeout:g} s")
        started = time.monotonic()
        try:
            ok = await asyncio.wait_for(in_thread(call), self.timeout + DEADLINE_GRACE)
        except TimeoutError:
            return timed_out
        except Exception as exc:  # a plugin bug must not take the daemon down
            return SendResult(False, "error", type(exc).__name__)
        if ok:
            return SendResult(True)
        # apprise says only False: a failure that took the whole timeout was apprise's own
        # socket timeout, not a refusal.
        if time.monotonic() - started >= self.timeout * 0.95:
            return timed_out
        return SendResult(False, "failed", "the service refused it")


def check_url(url: str) -> str | None:
    """None when apprise understands `url`, else a short reason (apprise's own log line about
    it is held back: the caller reports the problem with its position)."""
    quiet = logging.getLogger("apprise")
    before = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        Sender(url)
    except InvalidTarget as exc:
        return str(exc)
    finally:
        quiet.setLevel(before)
    return None
