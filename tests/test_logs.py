"""Logging: structlog's lines and the libraries' own (aiohttp, apprise) alike, JSON and redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from monitor.telemetry import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    logs.redactor.update(["hunter2-token"])
    logs.configure(stream=buffer, json=True)
    yield buffer
    logs.redactor.update([])
    logs.configure()


def test_library_lines_are_json_and_redacted_like_our_own(captured: io.StringIO) -> None:
    """Finding 6: aiohttp's and apprise's own lines were neither JSON nor redacted."""
    structlog.get_logger("monitor.test").warning("ours", token="hunter2-token")
    logging.getLogger("aiohttp.server").error(
        "Error handling request from %s", "hunter2-token", exc_info=ValueError("broken")
    )
    logging.getLogger("apprise").error("Failed to send to json://u:hunter2-token@host/")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [(e["event"], e["level"]) for e in lines] == [
        ("ours", "warning"),
        ("Error handling request from ***", "error"),
        ("Failed to send to json://u:***@host/", "error"),
    ]
    assert lines[1]["logger"] == "aiohttp.server"
    assert lines[1]["exception"].endswith("ValueError: broken")
    assert "hunter2-token" not in captured.getvalue()


def test_library_debug_chatter_stays_out_unless_debugging(captured: io.StringIO) -> None:
    logging.getLogger("aiohttp.client").info("connection pool details")
    logging.getLogger("apprise").warning("one failed attempt")
    assert captured.getvalue() == ""
