"""Programs of the page's history: calls answered and missed per hour, provider and door."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.store.base import Tally
from monitor.store.sql.statements import Many, Program, Query, _changed


def add_tally(tally: Sequence[Tally]) -> Program[None]:
    """Add a step's ended calls to the counts (in the step's transaction: counted once)."""
    yield Many(
        "INSERT INTO history (hour, provider, door, answered, missed) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (hour, provider, door) DO UPDATE SET "
        "answered = history.answered + excluded.answered, "
        "missed = history.missed + excluded.missed",
        [(t.hour, t.provider, t.door, t.answered, t.missed) for t in tally],
    )


def history(since: float) -> Program[list[Tally]]:
    """The counts of the hours from `since` on, oldest first."""
    rows = yield Query(
        "SELECT provider, door, hour, answered, missed FROM history WHERE hour >= %s "
        "ORDER BY hour, provider, door",
        (since,),
    )
    return [Tally(p, d, float(h), int(a), int(m)) for p, d, h, a, m in rows]


def prune_history(before: float) -> Program[int]:
    """Forget the hours that began before `before`."""
    return (yield from _changed("DELETE FROM history WHERE hour < %s", (before,)))
