"""The last hours per provider and per door, from the store's hourly counts: as JSON
(`/api/v1/history?hours=N`) and drawn as inline SVG on the page, one small bar chart per
series, answered and missed stacked in each hour.

The bars are two SVG paths per series (answered, missed): 200 doors draw in a few hundred
elements, not ten thousand. The colours are Okabe and Ito's blue and orange, which readers with
any common colour blindness tell apart; missed calls sit on the baseline with the answered
above them, and every chart has its numbers beside it as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from markupsafe import Markup

from monitor.store import Tally

HOUR = 3600.0
MAX_HOURS = 168
ANSWERED, MISSED = "#0072B2", "#E69F00"
"""Okabe-Ito blue and orange."""
WIDTH, HEIGHT = 240, 32
"""The chart's own units: 10 per hour of a day (the SVG scales to its box)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One provider (`door` None: all its calls) or one of its doors, hour by hour."""

    provider: str
    door: str | None
    starts: Sequence[float]
    """Each hour's start; the same list for every series of a reading."""
    answered: Sequence[int]
    missed: Sequence[int]
    stamps: Sequence[str] = ()
    """Each hour's start as ISO 8601 (UTC), made once per reading."""

    @property
    def totals(self) -> tuple[int, int]:
        return sum(self.answered), sum(self.missed)

    def as_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "door": self.door,
            "buckets": [
                {"start": stamp, "answered": a, "missed": m}
                for stamp, a, m in zip(self.stamps, self.answered, self.missed, strict=True)
            ],
        }


def series(
    tallies: Iterable[Tally], providers: Sequence[str], now: float, hours: int
) -> list[Series]:
    """Per provider (in config order, then any other the store counted), its total and then
    each of its doors (by number), over the `hours` hours up to and including `now`'s."""
    last = now - now % HOUR
    first = last - (hours - 1) * HOUR
    counts: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for t in tallies:
        slot = int((t.hour - first) // HOUR)
        if not 0 <= slot < hours:
            continue
        for key in ((t.provider, "\0"), (t.provider, t.door)) if t.door else ((t.provider, "\0"),):
            answered, missed = counts.setdefault(key, ([0] * hours, [0] * hours))
            answered[slot] += t.answered
            missed[slot] += t.missed
    starts = [first + i * HOUR for i in range(hours)]
    stamps = [_iso(start) for start in starts]
    named = list(providers) + sorted({p for p, _ in counts} - set(providers))
    found = []
    for provider in named:
        total = counts.get((provider, "\0"), ([0] * hours, [0] * hours))
        found.append(Series(provider, None, starts, *total, stamps))
        doors = sorted((d for p, d in counts if p == provider and d != "\0"), key=_door_order)
        found.extend(Series(provider, d, starts, *counts[(provider, d)], stamps) for d in doors)
    return found


def _door_order(door: str) -> tuple[int, int, str]:
    return (0, int(door), "") if door.isdigit() else (1, 0, door)


def chart(s: Series) -> Markup:
    """The series as an SVG bar chart: an hour per bar, oldest left, answered stacked on missed,
    scaled to the busiest hour of this series; its totals in its `<title>` too."""
    hours = len(s.starts)
    peak = max((a + m for a, m in zip(s.answered, s.missed, strict=True)), default=0) or 1
    step = WIDTH / hours
    bar = max(step - 1.0, 0.5)
    answered, missed = [], []
    for i, (a, m) in enumerate(zip(s.answered, s.missed, strict=True)):
        x = i * step
        if m:
            h = m / peak * HEIGHT
            missed.append(f"M{x:.1f} {HEIGHT - h:.1f}h{bar:.1f}V{HEIGHT}h-{bar:.1f}z")
        if a:
            top = (a + m) / peak * HEIGHT
            h = a / peak * HEIGHT
            answered.append(f"M{x:.1f} {HEIGHT - top:.1f}h{bar:.1f}v{h:.1f}h-{bar:.1f}z")
    total_a, total_m = s.totals
    label = f"{_name(s)}: {total_a} answered, {total_m} missed in {hours} h"
    paths = "".join(
        f'<path fill="{colour}" d="{"".join(d)}"/>'
        for colour, d in ((ANSWERED, answered), (MISSED, missed))
        if d
    )
    return Markup(
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT + 1}" width="100%" height="40" '
        f'preserveAspectRatio="none" role="img" '
        f'aria-label="{Markup.escape(label)}"><title>{Markup.escape(label)}</title>'
        f'<path stroke="#767676" stroke-width="0.5" d="M0 {HEIGHT + 0.5}H{WIDTH}"/>{paths}</svg>'
    )


def clock_times(starts: Sequence[float], zone: tzinfo = UTC) -> list[str]:
    """Each hour's start as the page shows it (`14:00`, in the config's timezone)."""
    return [f"{datetime.fromtimestamp(start, zone):%H:%M}" for start in starts]


def hourly(s: Series, times: Sequence[str]) -> str:
    """The hours with calls, as text: `14:00 3 answered, 1 missed; …` (`times` from
    `clock_times`)."""
    parts = [
        f"{at} {a} answered, {m} missed"
        for at, a, m in zip(times, s.answered, s.missed, strict=True)
        if a or m
    ]
    return "; ".join(parts) or "no calls"


def _name(s: Series) -> str:
    return s.provider if s.door is None else f"{s.provider} door {s.door}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
