"""The trending formula (paperboy.ranking): worked values and the orderings it promises."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from paperboy.ranking import Signals, engagement, rank_trending, trending_score

NOW = datetime(2026, 8, 12, 12, 0, tzinfo=UTC)


def s(upvotes: int = 0, comments: int = 0, stars: int = 0, hours_ago: float = 0.0) -> Signals:
    return Signals(upvotes, comments, stars, NOW - timedelta(hours=hours_ago))


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        (s(), 0.0),
        (s(upvotes=10), 10.0),
        (s(comments=3), 6.0),
        (s(stars=9), 3.0),  # 3 * log10(10)
        (s(stars=999), 9.0),  # 3 * log10(1000)
        (s(upvotes=5, comments=1, stars=99), 13.0),
        (s(upvotes=-4, comments=-1, stars=-10), 0.0),  # negative inputs count as zero
    ],
)
def test_engagement(signals: Signals, expected: float) -> None:
    assert engagement(signals) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        (s(), 1 / 24**1.5),
        (s(upvotes=7, hours_ago=2), 8 / 26**1.5),
        (s(upvotes=30, hours_ago=22), 31 / 46**1.5),
        (s(upvotes=3, hours_ago=-5), 4 / 24**1.5),  # featured "in the future" (clock skew) counts as now
    ],
)
def test_trending_score_worked_values(signals: Signals, expected: float) -> None:
    assert trending_score(signals, NOW) == pytest.approx(expected)


def test_twice_as_old_needs_about_2_8_times_the_engagement() -> None:
    young = s(upvotes=99, hours_ago=30 - 24)  # age + offset = 30 h
    old = s(upvotes=99, hours_ago=60 - 24)  # age + offset = 60 h
    assert trending_score(young, NOW) / trending_score(old, NOW) == pytest.approx(2**1.5)
    assert math.isclose(2**1.5, 2.83, abs_tol=0.01)


def test_stars_are_on_a_log_scale() -> None:
    assert trending_score(s(upvotes=30), NOW) > trending_score(s(stars=10_000), NOW)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ({"a": s(upvotes=5), "b": s(upvotes=50)}, ["b", "a"]),
        ({"old": s(upvotes=50, hours_ago=72), "new": s(upvotes=20, hours_ago=1)}, ["new", "old"]),
        # a paper listed a minute ago with 2 votes does not bury yesterday's paper with 72
        ({"fresh": s(upvotes=2), "yesterday": s(upvotes=72, hours_ago=24)}, ["yesterday", "fresh"]),
        ({"talked": s(upvotes=1, comments=10), "voted": s(upvotes=15)}, ["talked", "voted"]),
        ({"x": s(upvotes=3), "y": s(upvotes=3), "z": s(upvotes=3)}, ["x", "y", "z"]),  # stable on ties
        ({}, []),
    ],
)
def test_rank_trending(items: dict[str, Signals], expected: list[str]) -> None:
    assert rank_trending(list(items), items.__getitem__, NOW) == expected


def test_equal_scores_break_ties_by_engagement() -> None:
    # (e + 1) / (h + 24)^1.5 is equal for (e=7, h=2) and (e=63, h=80): 8 / 26^1.5 == 64 / (4 * 26)^1.5
    items = {"quiet": s(upvotes=7, hours_ago=2), "busy": s(upvotes=63, hours_ago=80)}
    assert trending_score(items["quiet"], NOW) == pytest.approx(trending_score(items["busy"], NOW))
    assert rank_trending(["quiet", "busy"], items.__getitem__, NOW) == ["busy", "quiet"]
