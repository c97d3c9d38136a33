"""The votes table: one upvote per member per paper."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db import dialect
from paperboy.db.schema import votes


def has_voted(conn: Connection, user_id: int, arxiv_id: str) -> bool:
    stmt = sa.select(votes.c.user_id).where(votes.c.user_id == user_id, votes.c.arxiv_id == arxiv_id)
    return conn.execute(stmt).first() is not None


def add_vote(conn: Connection, user_id: int, arxiv_id: str, now: datetime) -> bool:
    """Upvote; False when the member had already upvoted (nothing changes). One statement: the same vote
    sent twice at once inserts once and raises nothing."""
    row = {"user_id": user_id, "arxiv_id": arxiv_id, "created_at": now}
    return dialect.insert_ignore(conn, votes, row, ["user_id", "arxiv_id"])


def remove_vote(conn: Connection, user_id: int, arxiv_id: str) -> bool:
    """Take an upvote back; False when there was none."""
    stmt = sa.delete(votes).where(votes.c.user_id == user_id, votes.c.arxiv_id == arxiv_id)
    return bool(conn.execute(stmt).rowcount)


def count_votes(conn: Connection, arxiv_id: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(votes).where(votes.c.arxiv_id == arxiv_id)
    return conn.execute(stmt).scalar_one()


def voted_ids(conn: Connection, user_id: int, ids: Sequence[str]) -> set[str]:
    """Which of `ids` the member has upvoted (to draw the cards' buttons pressed)."""
    if not ids:
        return set()
    out: set[str] = set()
    for s in range(0, len(ids), 500):
        stmt = sa.select(votes.c.arxiv_id).where(
            votes.c.user_id == user_id, votes.c.arxiv_id.in_(ids[s : s + 500])
        )
        out.update(conn.execute(stmt).scalars())
    return out


def upvoted_by(conn: Connection, user_id: int, limit: int = 200) -> list[str]:
    """The papers a member upvoted, the latest vote first."""
    stmt = (
        sa.select(votes.c.arxiv_id)
        .where(votes.c.user_id == user_id)
        .order_by(votes.c.created_at.desc(), votes.c.arxiv_id)
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())
