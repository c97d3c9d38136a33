"""When digests are due, across time zones and DST changes: exactly one daily digest per local weekday,
one weekly per ISO week, never early, whatever the planner's rhythm."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from paperboy.digest.schedule import due
from paperboy.errors import InvalidInput


def _sweep(cadence: str, hour: int, tz: str, start: datetime, days: int, step_min: int, weekly_day: int = 0):
    """Run the planner every `step_min` minutes; the set plays digest_runs' unique constraint."""
    planned: dict[str, datetime] = {}
    t = start
    while t < start + timedelta(days=days):
        d = due(cadence, hour, weekly_day, tz, t)
        if d is not None and d.period not in planned:
            planned[d.period] = t
        t += timedelta(minutes=step_min)
    return planned


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        ("America/New_York", datetime(2026, 3, 2, tzinfo=UTC)),  # DST starts Sun Mar 8
        ("America/New_York", datetime(2026, 10, 26, tzinfo=UTC)),  # DST ends Sun Nov 1
        ("Europe/Berlin", datetime(2026, 3, 23, tzinfo=UTC)),  # DST starts Sun Mar 29
        ("Europe/Berlin", datetime(2026, 10, 19, tzinfo=UTC)),  # DST ends Sun Oct 25
        ("Australia/Sydney", datetime(2026, 3, 30, tzinfo=UTC)),  # DST ends Sun Apr 5
        ("Asia/Kolkata", datetime(2026, 3, 2, tzinfo=UTC)),  # no DST, half-hour offset
    ],
)
@pytest.mark.parametrize("hour", [0, 2, 8, 23])
def test_one_daily_digest_per_local_weekday_across_dst(tz: str, start: datetime, hour: int) -> None:
    planned = _sweep("daily", hour, tz, start, days=14, step_min=5)
    zone = ZoneInfo(tz)
    local_days = {(start + timedelta(hours=h)).astimezone(zone).date() for h in range(14 * 24)}
    expected = {d for d in local_days if d.weekday() < 5}
    # the first and last local days of the sweep may be cut by its edges
    got = {date.fromisoformat(p.split(":")[1]) for p in planned}
    assert got <= expected
    assert len(expected - got) <= 2
    for period, when in planned.items():
        local = when.astimezone(zone)
        day = date.fromisoformat(period.split(":")[1])
        assert local.date() == day and local.weekday() < 5
        assert local.hour >= hour or (hour == 2 and local.hour == 3)  # 2:00 may not exist that night
        assert when - timedelta(minutes=5) < datetime.combine(day, datetime.min.time(), zone).astimezone(
            UTC
        ) + timedelta(hours=24)


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/Berlin", "Pacific/Chatham"])
def test_one_weekly_digest_per_iso_week(tz: str) -> None:
    start = datetime(2026, 10, 5, tzinfo=UTC)
    planned = _sweep("weekly", 8, tz, start, days=8 * 7, step_min=30, weekly_day=0)
    weeks = list(planned)
    assert 8 <= len(weeks) <= 9
    # The sweep starts on a Sunday or Monday (local): the week under way is caught up at once; every later
    # week is planned on its Monday, in its own ISO week.
    for period, when in list(planned.items())[1:]:
        y, w, wd = when.astimezone(ZoneInfo(tz)).isocalendar()
        assert period == f"week:{y}-W{w:02d}" and wd == 1


def test_the_repeated_hour_of_a_fall_back_night_plans_once() -> None:
    # Berlin, Sun Oct 25 2026: 02:00-03:00 happens twice; a weekly digest at 2:00 on Sundays (weekly_day 6)
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, an hour later
    a = due("weekly", 2, 6, "Europe/Berlin", first)
    b = due("weekly", 2, 6, "Europe/Berlin", second)
    assert a is not None and b is not None and a.period == b.period


def test_never_early_and_weekends_are_quiet() -> None:
    friday_755 = datetime(2026, 11, 27, 12, 55, tzinfo=UTC)  # 07:55 in New York
    assert due("daily", 8, 0, "America/New_York", friday_755) is None
    d = due("daily", 8, 0, "America/New_York", friday_755 + timedelta(minutes=5))
    assert d is not None and d.period == "day:2026-11-27"
    assert d.window_start == d.scheduled - timedelta(days=1)
    saturday = datetime(2026, 11, 28, 15, tzinfo=UTC)
    assert due("daily", 8, 0, "America/New_York", saturday) is None
    monday = due("daily", 8, 0, "America/New_York", datetime(2026, 11, 30, 14, tzinfo=UTC))
    assert monday is not None and monday.window_start == monday.scheduled - timedelta(days=3)


def test_the_same_instant_is_a_different_day_in_another_zone() -> None:
    instant = datetime(2026, 11, 27, 20, 30, tzinfo=UTC)  # Friday evening in Berlin, Saturday in Tokyo
    assert due("daily", 8, 0, "Europe/Berlin", instant).period == "day:2026-11-27"  # type: ignore[union-attr]
    assert due("daily", 8, 0, "Asia/Tokyo", instant) is None


@pytest.mark.parametrize(
    ("cadence", "tz"), [("hourly", "UTC"), ("daily", "Mars/Olympus"), ("daily", "../etc")]
)
def test_bad_preferences_are_invalid_input(cadence: str, tz: str) -> None:
    with pytest.raises(InvalidInput):
        due(cadence, 8, 0, tz, datetime(2026, 11, 27, 12, tzinfo=UTC))
