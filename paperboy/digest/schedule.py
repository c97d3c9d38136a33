"""When a subscriber's digest is due, in their own calendar. Pure functions of (preferences, instant).

A daily digest goes out on the subscriber's local weekdays, once the local clock has reached their hour; a
weekly one in each ISO week, once their weekday and hour have come. The *period* names that local day or
week ("day:2026-11-27", "week:2026-W48"): `digest_runs` is unique per (subscriber, period), so however often
and whenever the planner runs — every 5 minutes, late after an outage, twice in the repeated hour of a DST
change — each period is planned once. A run that comes later in the same period still sends (a server that
was down at 8:00 sends at 9:40); a period that passed entirely while nothing ran is not sent late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paperboy.errors import InvalidInput

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Due:
    """A period whose digest is due, and the window of papers it covers."""

    period: str  # the digest_runs key
    local_day: date  # the local day it is sent on
    scheduled: datetime  # the local send time, in UTC
    window_start: datetime  # UTC: new papers are those published in [window_start, scheduled)
    cadence: str

    @property
    def label(self) -> str:
        d = self.local_day
        if self.cadence == "weekly":
            y, w, _ = d.isocalendar()
            return f"week {w}, {y}"
        return f"{d:%A}, {d:%B} {d.day}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"timezone: {name!r} is not a time zone name like Europe/Berlin") from exc


def _at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """`hour`:00 local on `day`, in UTC. In a DST gap (2:30 that never happens) the wall time is read with
    fold=0, i.e. as the offset before the change: an instant inside the gap's hour, never a missing day."""
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


def _previous_weekday(day: date) -> date:
    back = 3 if day.weekday() == 0 else 1  # Monday's digest covers the weekend too
    return day - timedelta(days=back)


def due(cadence: str, send_hour: int, weekly_day: int, timezone: str, as_of: datetime) -> Due | None:
    """The period due at `as_of` (aware) for these preferences, or None (a weekend, before the hour)."""
    tz = zone(timezone)
    local = as_of.astimezone(tz)
    today = local.date()
    if cadence == "daily":
        if today.weekday() >= 5:
            return None
        scheduled = _at(today, send_hour, tz)
        if as_of < scheduled:
            return None
        start = _at(_previous_weekday(today), send_hour, tz)
        return Due(f"day:{today.isoformat()}", today, scheduled, start, "daily")
    if cadence == "weekly":
        monday = today - timedelta(days=today.weekday())
        send_day = monday + timedelta(days=weekly_day)
        scheduled = _at(send_day, send_hour, tz)
        if as_of < scheduled:
            return None
        y, w, _ = send_day.isocalendar()
        start = _at(send_day - timedelta(days=7), send_hour, tz)
        return Due(f"week:{y}-W{w:02d}", send_day, scheduled, start, "weekly")
    raise InvalidInput(f"cadence: {cadence!r} is not daily or weekly")
