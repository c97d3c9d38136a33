"""Trending: how the hub orders papers that are being talked about. Pure functions of (signals, now).

    engagement = upvotes + 2·comments + 3·log10(1 + github_stars)
    score      = (engagement + 1) / (age_hours + 24) ^ 1.5

`upvotes` adds this hub's members' votes to the votes the paper had upstream (Hugging Face) when it was
imported; `comments` likewise. `age_hours` counts from the moment the paper entered the daily list (its
featuring), not from its arXiv date, so a paper resurfacing today competes with today's papers. The exponent
1.5 is Hacker News's gravity: a paper needs about 2.8x the engagement to hold its place when it is twice
as old. The 24-hour offset fits a daily list: papers are voted on over their first day, so a paper listed a
minute ago with 2 votes must not outrank yesterday's paper with 70. GitHub stars count on a log scale: a
repository with 10k stars should not bury a paper with 30 upvotes.
docs/trending.md explains the choice with worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TypeVar

from paperboy.models import StoredPaper

COMMENT_WEIGHT = 2.0
STAR_WEIGHT = 3.0
GRAVITY = 1.5
AGE_OFFSET_HOURS = 24.0


@dataclass(frozen=True)
class Signals:
    upvotes: int
    comments: int
    github_stars: int
    featured_at: datetime


def _listed_at(day: date, submitted_at: datetime | None) -> datetime:
    return submitted_at or datetime.combine(day, time(0, 0), tzinfo=UTC)


def featured_at(item: StoredPaper) -> datetime:
    """When a paper entered the daily list (its featuring's time, else that day's start; never featured:
    its arXiv date)."""
    f = item.featuring
    if f is None:
        return item.paper.published_at or datetime(1970, 1, 1, tzinfo=UTC)
    return _listed_at(f.day, f.submitted_at)


def top_order_key(upvotes: int, listed_at: datetime, arxiv_id: str) -> tuple[int, datetime, str]:
    """The list pages' default order ("Top", as on huggingface.co/papers), highest key first: most upvoted,
    ties to the latest listed, then the higher id. The "#1 Paper of the day" badge uses the same key, so the
    badge goes to the paper a period's page shows first."""
    return (upvotes, listed_at, arxiv_id)


def listed_at(day: date, submitted_at: datetime | None) -> datetime:
    """When a featuring entered the list: its time, else its day's start (UTC)."""
    return _listed_at(day, submitted_at)


def paper_signals(item: StoredPaper) -> Signals:
    """A stored paper's trending signals: upvotes and comments (upstream + members), stars, when listed."""
    return Signals(item.upvotes, item.num_comments, item.paper.github_stars or 0, featured_at(item))


def engagement(s: Signals) -> float:
    return (
        max(0, s.upvotes)
        + COMMENT_WEIGHT * max(0, s.comments)
        + STAR_WEIGHT * math.log10(1 + max(0, s.github_stars))
    )


def trending_score(s: Signals, now: datetime) -> float:
    """Higher is hotter. A paper featured in the future (clock skew) counts as featured now."""
    age_hours = max(0.0, (now - s.featured_at).total_seconds() / 3600)
    return (engagement(s) + 1) / (age_hours + AGE_OFFSET_HOURS) ** GRAVITY


T = TypeVar("T")


def rank_trending(items: Sequence[T], signals: Callable[[T], Signals], now: datetime) -> list[T]:
    """Items hottest first; ties broken by engagement, then by the original order (stable)."""
    keyed = [(trending_score(signals(i), now), engagement(signals(i)), n, i) for n, i in enumerate(items)]
    keyed.sort(key=lambda k: (-k[0], -k[1], k[2]))
    return [k[3] for k in keyed]
