"""Reading a list API page by page within a bound, without ever dropping what the bound left.

Two shapes of API exist among the providers:

- **Newest first** (VMS, Bandwidth): page 1 holds the newest calls. A poll reads pages until one
  reaches what was seen before (a key at or under the high-water mark). When more new calls wait
  than the page budget allows, the poll stores a *backfill*: the next page to read, the lowest key
  read so far and the old mark. Later polls first read the top again (new calls come first) and
  then go on down from the backfill page, skipping what they read already (pages shift down as
  calls arrive), until they reach the old mark.
- **A window drained by token** (Bird's `pageToken`, CINNOX's offset): a poll that runs out of
  budget stores the window and the token and the next poll continues the same query.

Either way the mark moves only once the whole backlog is read, and the log says what was deferred.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from monitor.model import Call
from monitor.sources.base import CLOCK_SLACK, iso, not_after
from monitor.sources.records import parse_time

log = structlog.get_logger("monitor.sources")

Key = Callable[[Call], float | None]
"""A call's position in a newest-first list (a VMS id, a Bandwidth start time): higher is newer."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a newest-first list: its readable calls, and whether a next page exists."""

    calls: list[Call]
    more: bool
    total: int | None = None
    """How many records the whole list holds, when the API says."""


@dataclass(slots=True)
class NewestFirst:
    """What a newest-first read found, and where the next poll must continue."""

    calls: list[Call] = field(default_factory=list)
    backfill: dict[str, float | None] | None = None
    pages: int = 0
    at_or_under_stop: set[str] = field(default_factory=set)
    """Ids of the calls on the top pages at or under `stop`: seen before, or older history."""


async def read_newest_first(
    page: Callable[[int], Awaitable[Page]],
    *,
    provider: str,
    first: int,
    key: Key,
    mark: float | None,
    backfill: Mapping[str, Any] | None,
    stop: float | None = None,
    budget: int,
    deep: bool,
    per_page: int,
    seen_before: Callable[[Call], bool] | None = None,
) -> NewestFirst:
    """Read the top of the list down to `stop`, then continue a stored backfill.

    `page(n)` fetches page `n` (numbered from `first`); `mark` is the key at or under which
    everything was seen before (None: nothing was); `stop` is where the top read ends (by
    default the mark; lower to read some of what was seen again, as a provider whose records
    may appear late wants); `seen_before` tells a call seen before in some other way (a store
    written before marks were kept); `deep` is False for a baseline, which needs only the
    newest page. A backfill is left only when the budget ran out above the mark.
    """
    stop = mark if stop is None else stop
    reach = stop
    if backfill and mark is not None:
        reach = mark if stop is None else max(stop, mark)  # the budget goes to the backlog
    out = NewestFirst()
    seen: set[str] = set()
    top = await _read_top(page, out, seen, key, first, stop, reach, budget, deep, seen_before)
    number, lowest, top_done = top.number, top.lowest, top.done
    new_backfill: dict[str, float | None] | None = None
    if not top_done and deep and lowest is not None and (mark is None or lowest > mark):
        # The budget ran out among new calls: the next polls read on from here down to the
        # old mark (or the older backfill's floor, when one was pending still; with no mark
        # at all, down to where the read would have stopped, or the end of the list).
        floor = backfill["floor"] if backfill else (mark if mark is not None else stop)
        new_backfill = {"page": number, "below": lowest, "floor": floor}
    elif backfill and (top_done or (mark is not None and lowest is not None and lowest <= mark)):
        new_backfill = await _continue(page, key, out, seen, backfill, budget)
    else:
        new_backfill = dict(backfill) if backfill else None
    out.backfill = new_backfill
    if new_backfill is not None:
        _deferred(provider, out, new_backfill, per_page, top.total)
    return out


@dataclass(slots=True)
class _Top:
    number: int
    """The page the top read ended on (the next to read, when it ran out of budget)."""
    lowest: float | None = None
    done: bool = False
    total: int | None = None


async def _read_top(
    page: Callable[[int], Awaitable[Page]],
    out: NewestFirst,
    seen: set[str],
    key: Key,
    first: int,
    stop: float | None,
    reach: float | None,
    budget: int,
    deep: bool,
    seen_before: Callable[[Call], bool] | None,
) -> _Top:
    """Read from the newest page down to a page that reaches `reach` (or seen calls)."""
    top = _Top(first)
    while out.pages < budget:
        found = await page(top.number)
        out.pages += 1
        top.total = found.total
        reached = False
        for call in found.calls:
            if call.id in seen:
                continue  # pushed down a page by newer calls while we paged
            seen.add(call.id)
            out.calls.append(call)
            k = key(call)
            if k is not None:
                if stop is not None and k <= stop:
                    out.at_or_under_stop.add(call.id)
                if reach is not None and k <= reach:
                    reached = True
                top.lowest = k if top.lowest is None else min(top.lowest, k)
            if seen_before is not None and seen_before(call):
                reached = True
        if reached or not found.more or not found.calls or not deep:
            top.done = True
            return top
        top.number += 1
    return top


async def _continue(
    page: Callable[[int], Awaitable[Page]],
    key: Key,
    out: NewestFirst,
    seen: set[str],
    backfill: Mapping[str, Any],
    budget: int,
) -> dict[str, float | None] | None:
    """Read on from a stored backfill until its floor; the backfill still due, or None."""
    number = int(backfill["page"])
    below = float(backfill["below"])
    floor = None if backfill.get("floor") is None else float(backfill["floor"])
    while out.pages < budget:
        found = await page(number)
        out.pages += 1
        reached = False
        for call in found.calls:
            k = key(call)
            if k is not None:
                if k > below:
                    continue  # read by an earlier poll (a tie is read again: keys may repeat)
                if floor is not None and k <= floor:
                    reached = True
                    continue
            if call.id in seen:
                continue
            seen.add(call.id)
            out.calls.append(call)
            if k is not None:
                below = min(below, k)
        if reached or not found.more or not found.calls:
            return None
        number += 1
    return {"page": number, "below": below, "floor": floor}


def _deferred(
    provider: str,
    out: NewestFirst,
    backfill: Mapping[str, float | None],
    per_page: int,
    total: int | None,
) -> None:
    page = int(backfill["page"] or 0)
    waiting = None if total is None else max(0, total - (page - 1) * per_page)
    log.warning(
        "more new calls than one poll reads; the next polls read the rest",
        provider=provider,
        read=len(out.calls),
        next_page=page,
        deferred_at_most=waiting,
    )


@dataclass(slots=True)
class Drain:
    """Where a token-drained window stands: a query's window and the token to continue it."""

    start: str
    end: str
    token: str | int | None = None
    newest: str | None = None

    @classmethod
    def resumed(cls, cursor: Mapping[str, Any]) -> Drain | None:
        """The drain a previous poll left unfinished, if any."""
        data = cursor.get("resume")
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(str(data["start"]), str(data["end"]), data.get("token"), data.get("newest"))
        except KeyError:
            return None

    def stored(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "token": self.token, "newest": self.newest}


WindowPage = Callable[[Drain], Awaitable[tuple[Sequence[Any], str | int | None]]]
"""Fetches the page of the window at the drain's token: its raw records and the next token
(None: the window is drained)."""


@dataclass(slots=True)
class Window:
    """What a window drain read: its calls (deduplicated), and the cursor to store."""

    calls: list[Call]
    cursor: dict[str, Any]


async def read_window(
    page: WindowPage,
    *,
    provider: str,
    cursor: Mapping[str, Any],
    mark_key: str,
    start: Callable[[datetime | None, datetime], datetime],
    read: Callable[[Any], Call | None],
    budget: int,
    first_token: str | int | None = None,
) -> Window:
    """Drain the window from `start(mark, now)` to now (or the one a previous poll left
    unfinished) for at most `budget` pages; the mark (`cursor[mark_key]`, the newest call
    time seen) moves only once the window is drained, and never past the present."""
    now = datetime.now(UTC)
    mark = parse_time(cursor.get(mark_key), field=mark_key)
    drain = Drain.resumed(cursor)
    if drain is None:
        drain = Drain(iso(start(mark, now)), iso(now + CLOCK_SLACK), first_token)
    newest = parse_time(drain.newest, field="newest") or mark
    calls: list[Call] = []
    seen: set[str] = set()
    for _ in range(budget):
        records, drain.token = await page(drain)
        for raw in records:
            call = read(raw)
            if call is None or call.id in seen:
                continue  # unreadable, or shifted to the next page by a late record
            seen.add(call.id)
            calls.append(call)
            if call.created_at and (newest is None or call.created_at > newest):
                newest = call.created_at
        if drain.token is None:
            break
    newest = not_after(newest, now, provider)
    if drain.token is None:
        return Window(calls, {mark_key: iso(newest)} if newest else {})
    drain.newest = iso(newest) if newest else None  # the mark stays until the window is drained
    stored = {mark_key: iso(mark)} if mark else {}
    drain_deferred(provider, len(calls), drain)
    return Window(calls, {**stored, "resume": drain.stored()})


def drain_deferred(provider: str, read: int, drain: Drain) -> None:
    """Say that a window held more than one poll reads."""
    log.warning(
        "more new calls than one poll reads; the next polls read the rest",
        provider=provider,
        read=read,
        window_start=drain.start,
        window_end=drain.end,
    )
