"""Parsing the periods that pages and the API take: days, ISO weeks, months (pure; raises InvalidInput)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from paperboy.errors import InvalidInput

# ASCII digits only: `\d` would also take "２０２５".
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True)
class Period:
    kind: str  # "day" | "week" | "month"
    start: date
    end: date  # inclusive

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "week":
            y, w, _ = self.start.isocalendar()
            return f"{y:04d}-W{w:02d}"
        return f"{self.start.year:04d}-{self.start.month:02d}"  # strftime("%Y") drops the zeros before 1000

    def shifted(self, steps: int) -> Period:
        """The period `steps` before (negative) or after (positive) this one.

        Raises InvalidInput when that period would fall outside the calendar (before year 1 or after 9999).
        """
        try:
            if self.kind == "day":
                return day_period(self.start + timedelta(days=steps))
            if self.kind == "week":
                return week_period_of(self.start + timedelta(weeks=steps))
            y, m = divmod(self.start.year * 12 + self.start.month - 1 + steps, 12)
            return month_period(date(y, m + 1, 1))
        except (OverflowError, ValueError):
            raise InvalidInput(f"no {self.kind} {steps:+d} from {self.label}: outside the calendar") from None


def parse_day(text: str) -> date:
    try:
        if not _DAY.fullmatch(text):  # fromisoformat alone would also take "2025-W09-1"
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"date {text!r} is not a valid date in YYYY-MM-DD form") from None


def day_period(d: date) -> Period:
    return Period("day", d, d)


def week_period_of(d: date) -> Period:
    monday = d - timedelta(days=d.weekday())
    # The ISO week holding 9999-12-31 ends after the calendar does; the period stops at its last day.
    return Period("week", monday, monday + timedelta(days=min(6, (date.max - monday).days)))


def parse_week(text: str) -> Period:
    m = _WEEK.fullmatch(text)
    if not m:
        raise InvalidInput(f"week {text!r} is not an ISO week in YYYY-Www form, e.g. 2025-W09")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise InvalidInput(f"week {text!r} does not exist (ISO years have 52 or 53 weeks)") from None
    return week_period_of(monday)


def month_period(d: date) -> Period:
    first = d.replace(day=1)
    if first.month == 12:  # also keeps December 9999 inside the calendar
        return Period("month", first, first.replace(day=31))
    nxt = (first + timedelta(days=32)).replace(day=1)
    return Period("month", first, nxt - timedelta(days=1))


def parse_month(text: str) -> Period:
    m = _MONTH.fullmatch(text)
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
        raise InvalidInput(f"month {text!r} is not a month in YYYY-MM form, e.g. 2025-02")
    return month_period(date(int(m.group(1)), int(m.group(2)), 1))
