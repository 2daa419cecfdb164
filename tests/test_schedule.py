"""Schedules: weekday windows, windows past midnight, DST changes, door timetables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.rules.schedule import from_config, from_timetable

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (berlin(2026, 11, 23, 7, 59), False),  # Monday
        (berlin(2026, 11, 23, 8, 0), True),
        (berlin(2026, 11, 23, 17, 59), True),
        (berlin(2026, 11, 23, 18, 0), False),
        (berlin(2026, 11, 28, 12, 0), False),  # Saturday
    ],
)
def test_business_hours(moment: datetime, inside: bool) -> None:
    schedule = from_config("business-hours", WEEKDAYS, "08:00", "18:00", BERLIN)
    assert schedule.active(moment) is inside
    assert schedule.active(moment.astimezone(UTC)) is inside


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    night = from_config("night", ("mon",), "22:00", "07:00", BERLIN)
    assert night.active(berlin(2026, 11, 23, 23, 0))  # Monday night
    assert night.active(berlin(2026, 11, 24, 6, 59))  # Tuesday early: still Monday's night
    assert not night.active(berlin(2026, 11, 24, 7, 0))
    assert not night.active(berlin(2026, 11, 24, 23, 0))  # Tuesday night: not listed
    assert night.end_after(berlin(2026, 11, 23, 23, 0)) == berlin(2026, 11, 24, 7, 0)


def test_the_end_of_a_night_moves_with_a_dst_change() -> None:
    night = from_config("night", ("fri", "sat", "sun"), "22:00", "07:00", BERLIN)
    # Spring forward on 29 March 2026: 07:00 is 05:00 UTC instead of 06:00.
    assert night.end_after(datetime(2026, 3, 28, 23, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 5, 0, tzinfo=UTC
    )
    assert night.active(datetime(2026, 3, 29, 4, 59, tzinfo=UTC))
    assert not night.active(datetime(2026, 3, 29, 5, 0, tzinfo=UTC))
    # Fall back on 25 October 2026: the night is an hour longer, and ends at 06:00 UTC.
    assert night.end_after(datetime(2026, 10, 24, 21, 30, tzinfo=UTC)) == datetime(
        2026, 10, 25, 6, 0, tzinfo=UTC
    )
    assert night.active(datetime(2026, 10, 25, 5, 30, tzinfo=UTC))


def test_a_window_to_midnight() -> None:
    evening = from_config("evening", ("mon",), "18:00", "24:00", BERLIN)
    assert evening.active(berlin(2026, 11, 23, 23, 59))
    assert not evening.active(berlin(2026, 11, 24, 0, 0))
    assert evening.end_after(berlin(2026, 11, 23, 20, 0)) == berlin(2026, 11, 24, 0, 0)


def test_a_door_timetable_with_and_without_offsets() -> None:
    timetable = {
        "days": [
            {"to": "23:59:59+05:00", "from": "00:00:00+05:00", "type": "tuesday"},
            {"to": "18:00:00", "from": "09:00:00+05:00", "type": "saturday"},
        ],
        "intervals": [],
    }
    schedule = from_timetable(timetable, BERLIN)
    assert schedule is not None
    yekaterinburg = ZoneInfo("Asia/Yekaterinburg")  # +05:00
    assert schedule.active(datetime(2026, 11, 24, 0, 30, tzinfo=yekaterinburg))  # Tuesday
    assert schedule.active(datetime(2026, 11, 24, 23, 59, 30, tzinfo=yekaterinburg))
    assert not schedule.active(datetime(2026, 11, 25, 0, 30, tzinfo=yekaterinburg))
    assert schedule.active(datetime(2026, 11, 28, 17, 0, tzinfo=yekaterinburg))  # Saturday
    assert not schedule.active(datetime(2026, 11, 28, 8, 0, tzinfo=yekaterinburg))
    assert from_timetable({"days": [], "intervals": []}, BERLIN) is None


@pytest.mark.parametrize(
    ("night_of", "ends", "why"),
    [
        # 02:00 CET → 03:00 CEST: 02:30 never shows; the night ends when the clocks jump
        ((2026, 3, 28), datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "skipped"),
        # 03:00 CEST → 02:00 CET: 02:30 shows twice; the wall clock is inside until the second
        ((2026, 10, 24), datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "shown twice"),
        ((2026, 7, 4), datetime(2026, 7, 5, 0, 30, tzinfo=UTC), "an ordinary night"),
    ],
)
def test_a_night_ending_in_a_dst_change_ends_when_the_wall_clock_leaves_it(
    night_of: tuple[int, int, int], ends: datetime, why: str
) -> None:
    """#23 finding 8: windows ended an hour late when their end was skipped, and before the
    wall clock had left them when it was shown twice."""
    night = from_config("night", ("fri", "sat"), "22:00", "02:30", BERLIN)
    end = night.end_after(berlin(*night_of, 23, 0))
    assert end is not None
    assert end.astimezone(UTC) == ends, why
    assert night.active(ends - timedelta(seconds=1)), why
    assert not night.active(ends), why


def test_a_day_ending_at_a_midnight_the_clocks_skip_ends_at_the_jump() -> None:
    havana = ZoneInfo("America/Havana")  # 00:00 → 01:00 on the second Sunday of March
    day = from_config("day", ("sat",), "08:00", "24:00", havana)
    end = day.end_after(datetime(2026, 3, 7, 12, 0, tzinfo=havana))
    assert end == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
