"""Who leads each day's list by upvotes: the query behind the "#1 Paper of the day / week / month" badges.

A featuring's upvotes on a list are its imported upstream count plus this hub's members' votes (what
`StoredPaper.upvotes` adds up and the list pages sort by). One statement for any set of day ranges: per day,
the featurings with the highest such count (usually one; every tied one, so that the caller breaks the tie
the way the list page does). A week's or month's leader is the best of its days' leaders. The work is one
index range of `featurings` per range (ix_featurings_day) and an indexed vote count per featuring in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import featurings, votes


@dataclass(frozen=True)
class Contender:
    arxiv_id: str
    day: date
    submitted_at: datetime | None
    upvotes: int  # upstream + members'


def day_leaders(conn: Connection, ranges: Sequence[tuple[date, date]]) -> list[Contender]:
    """For every day in the inclusive `ranges` that has featurings: those with the most upvotes (ties all)."""
    if not ranges:
        return []
    local = (
        sa.select(sa.func.count())
        .select_from(votes)
        .where(votes.c.arxiv_id == featurings.c.arxiv_id)
        .scalar_subquery()
    )
    score = featurings.c.upvotes + local
    place = sa.func.rank().over(partition_by=featurings.c.day, order_by=score.desc())
    ranked = (
        sa.select(
            featurings.c.arxiv_id,
            featurings.c.day,
            featurings.c.submitted_at,
            score.label("score"),
            place.label("place"),
        )
        .where(sa.or_(*(sa.and_(featurings.c.day >= a, featurings.c.day <= b) for a, b in ranges)))
        .subquery()
    )
    stmt = sa.select(ranked).where(ranked.c.place == 1)
    return [Contender(r.arxiv_id, r.day, r.submitted_at, int(r.score)) for r in conn.execute(stmt)]
