"""Property tests: whatever a provider serves and whatever a user writes, callmon answers only with
its documented errors.

- A provider's page or record: a record that cannot be read is skipped (never an exception); a
  page that is not the documented shape is a `BadResponse`.
- A config or rule file: a `SourceError`/`SourceErrors` naming `file:line:col`, never anything else.

`make fuzz` runs these with many more examples (the `fuzz` profile, see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.config import file as configfile
from monitor.model import Call, PollResult
from monitor.rules.loader import Context, load_document
from monitor.sources.bandwidth import Bandwidth, BandwidthProvider
from monitor.sources.base import BadResponse, decode_body
from monitor.sources.bird import Bird, BirdProvider, accept
from monitor.sources.bird import _Page as BirdPage
from monitor.sources.cinnox import Cinnox, CinnoxProvider
from monitor.sources.cinnox import _Body as CinnoxBody
from monitor.sources.records import Skips
from monitor.sources.vms_intercom import VmsIntercom, VmsIntercomProvider
from monitor.sources.vms_pages import _Page as VmsPage
from monitor.sources.webhook import Received, Refused
from monitor.text import yamldoc
from monitor.text.yamldoc import SourceError, SourceErrors
from tests.test_push import (
    CINNOX_TOKEN,
    bandwidth_settings,
    basic,
    bird_settings,
    cinnox_settings,
    signed,
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
TIMES = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2022-02-04 15:53:04",
            "2024-12-22T02:33:25.633Z",
            "",
        ]
    ),
)


def record_like(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Records with the provider's own field names, each value anything (or a plausible one)."""
    return st.fixed_dictionaries({}, optional={k: v | JSON for k, v in fields.items()})


NUMBER = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
STATUS = st.text(max_size=15)
RECORDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "vms-intercom": record_like(
        {
            "id": st.integers(),
            "status": st.sampled_from(["ring", "answered", "ended", "missed"]) | STATUS,
            "created_at": TIMES,
            "started_at": TIMES,
            "ended_at": TIMES,
            "intercom": st.fixed_dictionaries({"id": st.integers()}, optional={"title": JSON}),
        }
    ),
    "bird": record_like(
        {
            "id": st.text(max_size=10),
            "status": st.sampled_from(["ringing", "ongoing", "completed", "no-answer"]) | STATUS,
            "createdAt": TIMES,
            "updatedAt": TIMES,
            "answeredAt": TIMES,
            "endedAt": TIMES,
            "direction": st.sampled_from(["incoming", "outgoing"]) | STATUS,
        }
    ),
    "cinnox": record_like(
        {
            "hid": st.text(max_size=10),
            "status": st.sampled_from(["Call Ended", "Not Answered", "Busy"]) | STATUS,
            "callDate": TIMES,
            "callEndTime": TIMES,
            "callDuration": NUMBER,
            "callerInfo": st.fixed_dictionaries({}, optional={"phoneNumber": JSON}),
        }
    ),
    "bandwidth": record_like(
        {
            "id": st.text(max_size=10),
            "state": st.sampled_from(["started", "active", "completed", "rejected"]) | STATUS,
            "startTime": TIMES,
            "activeTime": TIMES,
            "endTime": TIMES,
        }
    ),
}
PAGE_SHAPES = {
    "vms-intercom": lambda records: {"data": records, "meta": {"current_page": 1, "last_page": 1}},
    "bird": lambda records: {"results": records},
    "cinnox": lambda records: {"code": 0, "result": records},
    "bandwidth": lambda records: records,
}


def client(kind: str) -> Any:
    """A client whose decoder is exercised directly (its session is never used)."""
    common = {"name": "p", "base_url": "https://api.example.net", "token": "t"}
    session: Any = aiohttp.ClientSession.__new__(aiohttp.ClientSession)
    if kind == "vms-intercom":
        return VmsIntercom(VmsIntercomProvider(type=kind, **common), session)
    if kind == "bird":
        return Bird(BirdProvider(type=kind, workspace_id="w", channel_id="c", **common), session)
    if kind == "cinnox":
        return Cinnox(CinnoxProvider(type=kind, app_id="a", **common), session)
    return Bandwidth(
        BandwidthProvider(
            type=kind,
            name="p",
            base_url="https://api.example.net",
            user_id="u",
            api_token="t",
            api_secret="s",
        ),
        session,
    )


PAGES: dict[str, tuple[Any, Any]] = {
    "vms-intercom": (VmsPage, lambda page: page.data),
    "bird": (BirdPage, lambda page: page.results),
    "cinnox": (CinnoxBody, lambda page: page.result or []),
    "bandwidth": (list[msgspec.Raw], lambda page: page),
}


def read_page(kind: str, body: bytes) -> list[Call]:
    """What a poll does with one page's body: decode its shape, then each record or skip it."""
    provider = client(kind)
    shape, records = PAGES[kind]
    raws = records(decode_body("p", "call list page 1", body, shape))
    skips, result = Skips("p"), PollResult()
    calls = [c for raw in raws if (c := skips.read(provider.decode, raw, result)) is not None]
    assert len(calls) + result.skipped <= len(raws)
    return calls


@pytest.mark.parametrize("kind", sorted(RECORDS))
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_page_of_anything_yields_calls_or_a_bad_response(kind: str, data: st.DataObject) -> None:
    records = data.draw(st.lists(RECORDS[kind] | JSON, max_size=5))
    body = json.dumps(data.draw(st.sampled_from([PAGE_SHAPES[kind](records), records]))).encode()
    try:
        calls = read_page(kind, body)
    except BadResponse as exc:
        calls, problem = [], str(exc)
    else:
        problem = "provider p: malformed call list page 1: "
    assert problem.startswith("provider p: malformed call list page 1: ")
    for call in calls:
        assert call.state.value in {"ringing", "answered", "ended", "missed", "rejected", "failed"}
        if call.created_at is not None:
            assert call.created_at.tzinfo is not None


@pytest.mark.parametrize("kind", sorted(RECORDS))
@given(body=st.binary(max_size=200))
def test_a_body_of_any_bytes_is_a_bad_response_at_worst(kind: str, body: bytes) -> None:
    with contextlib.suppress(BadResponse):
        read_page(kind, body)


def test_deep_nesting_is_a_bad_response() -> None:
    body = b'{"data": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    with pytest.raises(BadResponse, match="nested too deeply"):
        read_page("vms-intercom", body)


YAML_KEYS = st.sampled_from(
    [
        "store",
        "listen",
        "timezone",
        "rules",
        "providers",
        "notifiers",
        "schedules",
        "name",
        "type",
        "base_url",
        "token",
        "token_file",
        "poll_interval",
        "urls",
        "when",
        "to",
        "where",
        "notify",
        "title",
        "for",
        "threshold",
        "throttle",
        "group",
        "regex",
        "kind",
    ]
)
YAML_VALUES = st.recursive(
    SCALARS | st.sampled_from(["vms-intercom", "5s", "missed", "${X}", "{{ call.id }}", "[a"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(YAML_KEYS | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


def as_yaml(value: Any) -> str:
    """JSON is YAML: a structured document, in flow style."""
    return json.dumps(value)


DOCUMENTS = YAML_VALUES.map(as_yaml) | st.text(max_size=200)


def problems(load: Any, text: str) -> list[str]:
    """The errors loading `text` reports (none when it loads); any other exception escapes."""
    try:
        load(text)
    except SourceError as exc:
        return [str(exc)]
    except SourceErrors as exc:
        return [str(e) for e in exc.errors] or ["SourceErrors without an error"]
    return []


def load_config(text: str) -> None:
    configfile.from_document(yamldoc.parse(text, "c.yaml"), Path("/nonexistent"), {"X": "x"})


def load_rules(text: str) -> None:
    context = Context(notifiers=["chat"], providers=["p"], schedules=["night"])
    load_document(yamldoc.parse(text, "r.yaml"), context)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(text=DOCUMENTS)
@example(text='{"providers": 1}')  # found by this test: the loader iterated over an int
def test_a_config_of_anything_is_a_positioned_error_at_worst(text: str) -> None:
    assert all(e.startswith("c.yaml:") for e in problems(load_config, text))


RULE_DOCUMENTS = (
    st.lists(YAML_VALUES, max_size=3).map(lambda rules: as_yaml({"rules": rules}))
    | st.fixed_dictionaries(
        {"name": st.just("r"), "notify": st.just(["chat"])},
        optional={"when": YAML_VALUES, "title": YAML_VALUES, "for": YAML_VALUES},
    ).map(lambda rule: as_yaml({"rules": [rule]}))
    | DOCUMENTS
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(text=RULE_DOCUMENTS)
# found by this test (make fuzz): a lone surrogate escape crashed the rule's fingerprint
@example(text='{"rules":[{"name":"r","notify":["chat"],"when":{},"title":"\\ud80000cdu"}]}')
def test_a_rule_file_of_anything_is_a_positioned_error_at_worst(text: str) -> None:
    assert all(e.startswith("r.yaml:") for e in problems(load_rules, text))


# --- pushes: whatever reaches a webhook is kept, answered or refused with 400/401


@given(body=st.binary(max_size=512), stamp=st.text(max_size=20), signature=st.text(max_size=60))
def test_whatever_arrives_is_accepted_or_refused_and_nothing_else(
    body: bytes, stamp: str, signature: str
) -> None:
    headers = {"messagebird-request-timestamp": stamp, "messagebird-signature": signature}
    for got in (Received(headers, {}, body), signed(body, stamp=stamp or "1")):
        status = 200
        try:
            kept = accept(bird_settings(), got)
        except Refused as refused:
            status = refused.status
        else:
            assert kept == body.decode()
        assert status in (200, 400, 401)


@given(body=st.binary(max_size=512), authorization=st.text(max_size=60))
def test_whatever_reaches_the_bandwidth_hook_is_accepted_ignored_or_refused(
    body: bytes, authorization: str
) -> None:
    from monitor.sources import bandwidth

    for headers in ({"Authorization": authorization}, basic()):
        status = 200
        try:
            bandwidth.accept(bandwidth_settings(), Received(headers, {}, body))
        except Refused as refused:
            status = refused.status
        assert status in (200, 400, 401)


@given(body=st.binary(max_size=512), token=st.text(max_size=30))
def test_whatever_reaches_the_cinnox_hook_is_answered_kept_or_refused(
    body: bytes, token: str
) -> None:
    from monitor.sources import cinnox

    for query in ({"token": token}, {"token": CINNOX_TOKEN}):
        status = 200
        try:
            cinnox.accept(cinnox_settings(), Received({}, query, body))
        except Refused as refused:
            status = refused.status
        assert status in (200, 400, 401)
