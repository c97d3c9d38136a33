"""The "#1 Paper of the day / week / month" badges, as huggingface.co shows them on cards and paper pages.

A paper earns the badge of a day, ISO week or month when it comes first on that period's list in its
default order ("Top": most upvoted, ranking.top_order_key), i.e. the paper `/papers/date/…`,
`/papers/week/…` or `/papers/month/…` shows first. Only the periods of the papers a page shows are looked
at (their featurings' day, week and month): one query for all of them (store/leaders.py), whatever the
page. Computed when a page is rendered, so a vote moves the badge at once (the page cache, when on, keeps
an anonymous page for its few seconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import Field
from sqlalchemy.engine import Connection

from paperboy.models import StoredPaper
from paperboy.periods import Period, day_period, month_period, week_period_of
from paperboy.ranking import listed_at, top_order_key
from paperboy.store.leaders import Contender, day_leaders
from paperboy.web import schemas

KINDS = ("day", "week", "month")
_NOUNS = {"day": "day", "week": "week", "month": "month"}


@dataclass(frozen=True)
class Badge:
    kind: str  # day | week | month
    period: Period

    @property
    def label(self) -> str:
        return f"#1 Paper of the {_NOUNS[self.kind]}"

    @property
    def path(self) -> str:
        return f"/papers/{'date' if self.kind == 'day' else self.kind}/{self.period.label}"


def _periods(day: date) -> tuple[Period, Period, Period]:
    return day_period(day), week_period_of(day), month_period(day)


def _merged(periods: Iterable[Period]) -> list[tuple[date, date]]:
    """The days the periods cover, as few inclusive ranges as possible."""
    spans = sorted((p.start, p.end) for p in periods)
    out: list[tuple[date, date]] = []
    for start, end in spans:
        if out and start <= out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _best(contenders: Iterable[Contender]) -> Contender | None:
    return max(
        contenders,
        key=lambda c: top_order_key(c.upvotes, listed_at(c.day, c.submitted_at), c.arxiv_id),
        default=None,
    )


def leaders(conn: Connection, periods: Sequence[Period]) -> dict[Period, str]:
    """The arXiv id each period's list shows first (periods without papers are left out)."""
    if not periods:
        return {}
    by_day: dict[date, list[Contender]] = {}
    for c in day_leaders(conn, _merged(periods)):
        by_day.setdefault(c.day, []).append(c)
    day_best = {d: b for d, cs in by_day.items() if (b := _best(cs)) is not None}
    out: dict[Period, str] = {}
    for period in periods:
        best = _best(c for d, c in day_best.items() if period.start <= d <= period.end)
        if best is not None:
            out[period] = best.arxiv_id
    return out


def badges_for(conn: Connection, items: Sequence[StoredPaper]) -> dict[str, list[Badge]]:
    """The badges each shown paper earned for the day, week and month of its featuring (day first)."""
    wanted: dict[Period, None] = {}
    for item in items:
        if item.featuring is not None:
            wanted.update(dict.fromkeys(_periods(item.featuring.day)))
    if not wanted:
        return {}
    top = leaders(conn, list(wanted))
    out: dict[str, list[Badge]] = {}
    for item in items:
        if item.featuring is None:
            continue
        arxiv_id = item.paper.arxiv_id
        earned = [Badge(p.kind, p) for p in _periods(item.featuring.day) if top.get(p) == arxiv_id]
        if earned:
            out[arxiv_id] = earned
    return out


# --- the paper page's JSON twin ----------------------------------------------------------------------------


class BadgeModel(schemas._Hf):
    """A "#1 Paper of the …" badge (our addition)."""

    kind: str = Field(description="`day`, `week` (ISO) or `month`.")
    period: str = Field(description="The period: `2025-03-05`, `2025-W10` or `2025-03`.")
    rank: int = Field(default=1, description="The paper's place on that period's list by upvotes: 1.")
    label: str = Field(description="As the page shows it: `#1 Paper of the day`.")
    path: str = Field(description="The period's list page, which shows this paper first.")


class PaperWithBadges(schemas.PaperModel):
    """A paper in Hugging Face's paper shape plus the badges its page shows (our addition)."""

    badges: list[BadgeModel] | None = Field(
        default=None,
        description="The day, week and month whose list this paper tops by upvotes (absent when none).",
    )


def paper_with_badges(conn: Connection, item: StoredPaper) -> PaperWithBadges:
    earned = badges_for(conn, [item]).get(item.paper.arxiv_id, [])
    base = schemas.paper_model(item).model_dump(by_alias=True)
    shown = [BadgeModel(kind=b.kind, period=b.period.label, label=b.label, path=b.path) for b in earned]
    return PaperWithBadges(**base, badges=shown or None)
