"""structlog set-up, done once: JSON lines off a terminal, readable lines on one, secrets masked."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from monitor.text.redaction import MASK, Redactor, redactor

__all__ = ["MASK", "Redactor", "configure", "redactor"]


def _refused_requests(record: logging.LogRecord) -> bool:
    """aiohttp logs a malformed HTTP request to `listen` with its traceback, as an error; it is
    the client's mistake, answered 400: one warning line naming the problem says enough."""
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and any(c.__name__ == "HttpProcessingError" for c in type(exc).__mro__):
        message = getattr(exc, "message", "") or str(exc)
        record.msg, record.args, record.exc_info = (
            "malformed HTTP request refused: %s",
            (str(message).splitlines()[0][:200] if message else type(exc).__name__,),
            None,
        )
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


class _Stderr:
    """Standard error as it is when a line is written (tests and tools swap `sys.stderr`)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(
    *, level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Configure structlog and the standard library's logging once for the whole process.

    Libraries that log through the standard library (aiohttp, apprise) go through the same
    processors: JSON lines off a terminal, the same redaction, the same timestamps.
    """
    out: Any = stream or _Stderr()
    as_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    numeric = logging.getLevelName(level.upper())
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        # Not cached: callmon logs changes, not traffic, and uncached loggers follow a later
        # configuration (the test suite's `capture_logs`) wherever they were created.
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                stamp,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redactor,
                renderer,
            ],
        )
    )
    handler.addFilter(_refused_requests)
    root = logging.getLogger()
    root.handlers = [handler]
    # Libraries are quiet unless debugging; apprise reports every failed attempt as a warning,
    # which the delivery worker already says once per outage.
    root.setLevel(logging.WARNING if numeric > logging.DEBUG else logging.DEBUG)
    logging.getLogger("apprise").setLevel(logging.ERROR if numeric > logging.DEBUG else numeric)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
