"""Schedules: weekly time windows in a timezone, from the config or from a door's own timetable.

A window is a list of weekdays with a daily `from`–`to` in wall-clock time; `to` at or before
`from` means the window runs past midnight into the next day. Wall-clock comparison in the
window's zone makes every check DST-correct: 08:00 is 08:00 on both sides of a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LONG_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Window:
    """One daily window on some weekdays (0 = Monday)."""

    days: frozenset[int]
    start: time
    end: time  # time(0) with `to_midnight` means 24:00
    zone: tzinfo
    to_midnight: bool = False

    @property
    def overnight(self) -> bool:
        """Whether the window ends on the day after it starts."""
        return self.to_midnight or self.end <= self.start

    def active(self, at: datetime) -> bool:
        """Whether `at` falls inside the window."""
        local = at.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        today = local.weekday()
        if not self.overnight:
            return today in self.days and self.start <= clock < self.end
        yesterday = (today - 1) % 7
        if today in self.days and clock >= self.start:
            return True
        return yesterday in self.days and not self.to_midnight and clock < self.end

    def end_after(self, at: datetime) -> datetime | None:
        """The end of the window that contains `at`, or None when `at` is outside."""
        if not self.active(at):
            return None
        local = at.astimezone(self.zone)
        day: date = local.date()
        if self.overnight and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)
        return wall_end(day, self.end, self.zone)


def wall_end(day: date, clock: time, zone: tzinfo) -> datetime:
    """The instant a window that ends at `clock` on `day` (wall time in `zone`) ends, on DST
    change days too: a time the clocks skip ends it when they jump (02:30 on a spring-forward
    night ends at 03:00 new time, not an hour later); a time they show twice ends it the second
    time, since the wall clock is inside the window again until then."""
    wanted = datetime.combine(day, clock)
    later = wanted.replace(tzinfo=zone, fold=1)
    if _shows(later, wanted):
        return later  # the time itself (its second showing, when it shows twice)
    # Skipped: the first instant the wall clock shows `clock` or later, between the two
    # readings of the skipped time (its offset before and after the change).
    low = later.astimezone(UTC)
    high = wanted.replace(tzinfo=zone, fold=0).astimezone(UTC)
    low, high = min(low, high), max(low, high)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wanted:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0).astimezone(zone)


def _shows(moment: datetime, wanted: datetime) -> bool:
    """Whether the wall clock in `moment`'s zone shows `wanted` at `moment`."""
    return moment.astimezone(UTC).astimezone(moment.tzinfo).replace(tzinfo=None) == wanted


@dataclass(frozen=True)
class Schedule:
    """A named schedule: inside when any of its windows is."""

    name: str
    windows: tuple[Window, ...]

    def active(self, at: datetime) -> bool:
        """Whether `at` falls inside the schedule."""
        return any(w.active(at) for w in self.windows)

    def end_after(self, at: datetime) -> datetime | None:
        """When the stretch of the schedule that contains `at` ends (None when outside)."""
        ends = [e for w in self.windows if (e := w.end_after(at)) is not None]
        if not ends:
            return None
        end = max(ends)
        # Adjacent windows (a day window ending at 24:00 and the next one from 00:00) chain on.
        for _ in range(8):
            later = [e for w in self.windows if (e := w.end_after(end)) is not None and e > end]
            if not later:
                break
            end = max(later)
        return end


def _hhmm(text: str) -> tuple[time, bool]:
    if text == "24:00":
        return time(0), True
    hours, minutes = text.split(":")[:2]
    return time(int(hours), int(minutes)), False


def from_config(name: str, days: Iterable[str], start: str, end: str, zone: tzinfo) -> Schedule:
    """A schedule as the config writes it: `{days: [mon, …], from: "08:00", to: "18:00"}`."""
    begin, _ = _hhmm(start)
    finish, midnight = _hhmm(end)
    window = Window(frozenset(DAYS.index(d) for d in days), begin, finish, zone, midnight)
    return Schedule(name, (window,))


def _clock(text: str, default: tzinfo) -> tuple[time, tzinfo]:
    """`08:00:00+05:00` or `23:59:59` (then in `default`)."""
    parsed = time.fromisoformat(text)
    zone = parsed.tzinfo or default
    return parsed.replace(tzinfo=None), zone


def from_timetable(timetable: Mapping[str, Any], default: tzinfo) -> Schedule | None:
    """A door's VMS timetable (`{days: [{type: tuesday, from, to}], intervals}`), or None.

    A time without an offset is taken in `default` (the config's timezone). `intervals`, whose
    meaning the vendor does not document, are not used.
    """
    windows = []
    for entry in timetable.get("days") or []:
        try:
            weekday = LONG_DAYS.index(str(entry["type"]).lower())
            start, zone = _clock(str(entry["from"]), default)
            end, _ = _clock(str(entry["to"]), zone)
        except (KeyError, ValueError):
            continue
        if end == time(23, 59, 59):
            end, midnight = time(0), True  # the whole rest of the day
        else:
            midnight = False
        windows.append(Window(frozenset([weekday]), start, end, zone, midnight))
    return Schedule("intercom-timetable", tuple(windows)) if windows else None
