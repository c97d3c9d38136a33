"""Days, ISO weeks and months as pages and the API take them."""

from __future__ import annotations

from datetime import date

import pytest

from paperboy.errors import InvalidInput
from paperboy.periods import (
    Period,
    day_period,
    month_period,
    parse_day,
    parse_month,
    parse_week,
    week_period_of,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-08-12", date(2026, 8, 12)),
        ("2024-02-29", date(2024, 2, 29)),
        ("0001-01-01", date(1, 1, 1)),
        ("9999-12-31", date(9999, 12, 31)),
    ],
)
def test_parse_day(text: str, expected: date) -> None:
    assert parse_day(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "2026-8-12", "20260812", "2026-02-30", "2025-02-29", "2026-13-01", "2026-08-12T00", " 2026-08-12",
     "2026-W33-1", "2026-224", "２０２６-08-12", "yesterday", "2026/08/12"],
)  # fmt: skip
def test_parse_day_refuses(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^date .* YYYY-MM-DD"):
        parse_day(text)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2025-W09", date(2025, 2, 24), date(2025, 3, 2)),
        ("2026-W01", date(2025, 12, 29), date(2026, 1, 4)),  # ISO week 1 starts in the previous year
        ("2020-W53", date(2020, 12, 28), date(2021, 1, 3)),  # a 53-week year
        ("2026-W33", date(2026, 8, 10), date(2026, 8, 16)),
    ],
)
def test_parse_week(text: str, start: date, end: date) -> None:
    period = parse_week(text)
    assert (period.kind, period.start, period.end, period.label) == ("week", start, end, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2021-W53", "does not exist"),
        ("2025-W00", "does not exist"),
        ("2025-W60", "does not exist"),
        ("2025-w09", "YYYY-Www"),
        ("2025W09", "YYYY-Www"),
        ("2025-W9", "YYYY-Www"),
        ("2025-09", "YYYY-Www"),
        ("", "YYYY-Www"),
        ("２０２５-W09", "YYYY-Www"),
    ],
)
def test_parse_week_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^week .*{message}"):
        parse_week(text)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2025-02", date(2025, 2, 1), date(2025, 2, 28)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("9999-12", date(9999, 12, 1), date(9999, 12, 31)),
        ("0001-01", date(1, 1, 1), date(1, 1, 31)),
    ],
)
def test_parse_month(text: str, start: date, end: date) -> None:
    period = parse_month(text)
    assert (period.kind, period.start, period.end, period.label) == ("month", start, end, text)


@pytest.mark.parametrize(
    "text", ["2025-13", "2025-00", "0000-01", "2025-2", "202502", "2025-02-01", "", "Feb"]
)
def test_parse_month_refuses(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^month .* YYYY-MM"):
        parse_month(text)


@pytest.mark.parametrize(
    ("period", "steps", "expected"),
    [
        (day_period(date(2026, 3, 1)), -1, day_period(date(2026, 2, 28))),
        (day_period(date(2025, 12, 31)), 1, day_period(date(2026, 1, 1))),
        (parse_week("2026-W01"), -1, parse_week("2025-W52")),
        (parse_week("2020-W53"), 1, parse_week("2021-W01")),
        (parse_week("2026-W33"), 0, parse_week("2026-W33")),
        (parse_month("2026-01"), -1, parse_month("2025-12")),
        (parse_month("2025-12"), 1, parse_month("2026-01")),
        (parse_month("2026-01"), 14, parse_month("2027-03")),
        (parse_month("2026-03"), -27, parse_month("2023-12")),
    ],
)
def test_shifted(period: Period, steps: int, expected: Period) -> None:
    assert period.shifted(steps) == expected


@pytest.mark.parametrize(
    ("period", "steps"),
    [
        (day_period(date(9999, 12, 31)), 1),
        (day_period(date(1, 1, 1)), -1),
        (parse_week("0001-W01"), -1),
        (parse_week("9999-W52"), 1),
        (parse_month("9999-12"), 1),
        (parse_month("0001-01"), -1),
    ],
)
def test_shifted_off_the_calendar_is_invalid_input_not_a_crash(period: Period, steps: int) -> None:
    with pytest.raises(InvalidInput, match="outside the calendar"):
        period.shifted(steps)


@pytest.mark.parametrize(
    ("day", "monday"),
    [
        (date(2026, 8, 10), date(2026, 8, 10)),  # Monday
        (date(2026, 8, 16), date(2026, 8, 10)),  # Sunday
        (date(2026, 1, 1), date(2025, 12, 29)),
    ],
)
def test_week_period_of(day: date, monday: date) -> None:
    period = week_period_of(day)
    assert (period.start, period.end.toordinal() - period.start.toordinal()) == (monday, 6)


def test_labels() -> None:
    assert day_period(date(2026, 8, 12)).label == "2026-08-12"
    assert week_period_of(date(2026, 8, 12)).label == "2026-W33"
    assert month_period(date(2026, 8, 12)).label == "2026-08"
    assert month_period(date(2026, 8, 12)) == Period("month", date(2026, 8, 1), date(2026, 8, 31))
