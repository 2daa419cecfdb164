"""Reading the VMS call list, newest first: a page of calls tracked already is read for each
call's id, status and door alone (one pass, slim shapes); only news is decoded. And how far down
a poll reads for the calls still open. Part of the `vms-intercom` provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from monitor.model import Call, CallState, Intercom
from monitor.sources.base import TrackedView, decode_body
from monitor.sources.paging import Page


class _Meta(msgspec.Struct):
    current_page: int
    last_page: int
    total: int | None = None


class _Page(msgspec.Struct):
    data: list[msgspec.Raw]
    meta: _Meta | None = None


class _Seen(msgspec.Struct):
    """What a poll reads of each record first: enough to know a tracked call, unchanged."""

    id: int
    status: str
    intercom: Intercom | None = None


class _SeenPage(msgspec.Struct):
    data: list[_Seen]
    meta: _Meta | None = None


_SEEN = msgspec.json.Decoder(_SeenPage)
_NOTHING: Mapping[str, Any] = MappingProxyType({})


def read_page(
    provider: str,
    body: bytes,
    page: int,
    view: TrackedView,
    read: Callable[[msgspec.Raw], Call | None],
    states: Mapping[str, CallState],
) -> Page:
    """One page of the call list → its calls.

    Most records of most polls are calls tracked already, unchanged: those are read for
    their id, status and door alone (a `Call` without times or record, which the tracker
    passes over), in one pass over the page. Only a page with news is decoded record by
    record (`read`: a record, or None when it is skipped), and only the news normalised; a
    page that does not fit the slim shape is read record by record too.
    """
    what = f"call list page {page}"
    try:
        seen = _SEEN.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        full = decode_body(provider, what, body, _Page)
        return _page([c for raw in full.data if (c := read(raw))], full.meta, page)
    records: list[msgspec.Raw] | None = None
    calls = []
    for i, rec in enumerate(seen.data):
        found = _unchanged(rec, view, states)
        if found is None:
            if records is None:
                records = decode_body(provider, what, body, _Page).data
            found = read(records[i])
        if found is not None:
            calls.append(found)
    return _page(calls, seen.meta, page)


def _unchanged(rec: _Seen, view: TrackedView, states: Mapping[str, CallState]) -> Call | None:
    """The call of a record the tracker holds with the same status, read for its id, status and
    door alone; None for news (or an unknown status: the full decoder reports it)."""
    cid = str(rec.id)
    state = states.get(rec.status) if view.knows(cid) else None
    if state is None:
        return None
    status = rec.status
    call = Call(
        cid, state, status, None, None, None, "in", None, None, rec.intercom, status, _NOTHING
    )
    return None if view.changed(call) else call


def _page(calls: list[Call], meta: _Meta | None, page: int) -> Page:
    last = meta.last_page if meta else page
    return Page(calls, more=page < last, total=meta.total if meta else None)


def open_reach(view: TrackedView, mark: float | None, per_page: int, budget: int) -> float | None:
    """How far down a poll reads the list (the mark, or lower): down to the oldest open call
    whose page costs no more requests than fetching it and the open calls above it one by one,
    within the page budget. A few open calls are cheaper by id; a busy building's many are
    cheaper by page."""
    if mark is None:
        return None
    ids = sorted((int(c) for c in view.open_calls() if c.isdigit()), reverse=True)
    stop = mark
    for count, call_id in enumerate(ids, 1):
        pages = -(-(mark - call_id + 1) // per_page)
        if pages > budget:
            break
        if pages <= count:
            stop = min(stop, call_id - 1)
    return stop


def id_key(call: Call) -> float | None:
    """A VMS call's place in the list: its id (a higher id is newer)."""
    return float(call.id) if call.id.isdigit() else None
