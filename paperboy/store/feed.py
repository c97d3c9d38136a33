"""What the "For you" feed reads and writes: the papers a member showed interest in (upvoted, saved, claimed,
submitted), what they told the feed ("Not interested", "Less like this"), and the recent papers it ranks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db import dialect
from paperboy.db.schema import (
    claims,
    collection_items,
    collections,
    featurings,
    feed_feedback,
    papers,
    votes,
)

FEEDBACK_KINDS = ("hide", "less")


@dataclass(frozen=True)
class Interest:
    arxiv_id: str
    kind: str  # "upvote" | "save" | "claim" | "submit"
    at: datetime


@dataclass(frozen=True)
class PoolRow:
    arxiv_id: str
    authors: list[str]
    date: datetime
    upvotes: int  # upstream (the paper's largest featuring count) + this hub's members


def interests(conn: Connection, user_id: int, limit: int) -> list[Interest]:
    """The papers `user_id` showed interest in, newest first, each kind at most `limit` (a paper kept once,
    under its newest sign)."""
    parts: list[sa.Select[Any]] = [
        sa.select(votes.c.arxiv_id, sa.literal("upvote").label("kind"), votes.c.created_at.label("at"))
        .where(votes.c.user_id == user_id)
        .order_by(votes.c.created_at.desc())
        .limit(limit),
        sa.select(
            collection_items.c.arxiv_id,
            sa.literal("save").label("kind"),
            collection_items.c.added_at.label("at"),
        )
        .join(collections, collections.c.id == collection_items.c.collection_id)
        .where(collections.c.user_id == user_id)
        .order_by(collection_items.c.added_at.desc())
        .limit(limit),
        sa.select(claims.c.arxiv_id, sa.literal("claim").label("kind"), claims.c.created_at.label("at"))
        .where(claims.c.user_id == user_id, claims.c.status == "approved")
        .order_by(claims.c.created_at.desc())
        .limit(limit),
        sa.select(
            featurings.c.arxiv_id,
            sa.literal("submit").label("kind"),
            featurings.c.submitted_at.label("at"),
        )
        .where(featurings.c.submitter_user_id == user_id, featurings.c.submitted_at.is_not(None))
        .order_by(featurings.c.submitted_at.desc())
        .limit(limit),
    ]
    found: dict[str, Interest] = {}
    rank = {"claim": 0, "submit": 1, "upvote": 2, "save": 3}  # on a tie in time, the stronger sign names it
    rows: list[Interest] = []
    for stmt in parts:
        rows.extend(Interest(r.arxiv_id, r.kind, r.at) for r in conn.execute(stmt))
    for row in sorted(rows, key=lambda r: (-r.at.timestamp(), rank[r.kind], r.arxiv_id)):
        found.setdefault(row.arxiv_id, row)
    return list(found.values())


def feedback(conn: Connection, user_id: int, limit: int) -> dict[str, str]:
    """What the member told the feed, by paper: "hide" or "less" (the newest `limit`)."""
    stmt = (
        sa.select(feed_feedback.c.arxiv_id, feed_feedback.c.kind)
        .where(feed_feedback.c.user_id == user_id)
        .order_by(feed_feedback.c.created_at.desc(), feed_feedback.c.arxiv_id)
        .limit(limit)
    )
    return {r.arxiv_id: r.kind for r in conn.execute(stmt)}


def set_feedback(conn: Connection, user_id: int, arxiv_id: str, kind: str, now: datetime) -> None:
    """Record "hide" or "less" for a paper (the newest word wins); one statement, safe against a double
    click in two requests."""
    if kind not in FEEDBACK_KINDS:
        raise ValueError(kind)
    row = {"user_id": user_id, "arxiv_id": arxiv_id, "kind": kind, "created_at": now}
    dialect.upsert(conn, feed_feedback, row, ["user_id", "arxiv_id"], ["kind", "created_at"])


def clear_feedback(conn: Connection, user_id: int, arxiv_id: str) -> bool:
    result = conn.execute(
        sa.delete(feed_feedback).where(
            feed_feedback.c.user_id == user_id, feed_feedback.c.arxiv_id == arxiv_id
        )
    )
    return bool(result.rowcount)


def count_feedback(conn: Connection, user_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(feed_feedback).where(feed_feedback.c.user_id == user_id)
    return int(conn.execute(stmt).scalar_one())


def paper_date() -> sa.ColumnElement[Any]:
    return sa.func.coalesce(papers.c.published_at, papers.c.first_seen_at)


def recent_papers(conn: Connection, since: datetime, limit: int) -> list[PoolRow]:
    """The newest papers (by arXiv date, else when first seen) from `since`, at most `limit`, with upvotes:
    what the feed ranks. Withdrawn papers are left out."""
    when = paper_date().label("at")
    base = (
        sa.select(papers.c.arxiv_id, papers.c.authors, when)
        .where(paper_date() >= since, papers.c.withdrawn.is_(sa.false()))
        .order_by(when.desc(), papers.c.arxiv_id)
        .limit(limit)
        .subquery()
    )
    upstream = (
        sa.select(featurings.c.arxiv_id, sa.func.max(featurings.c.upvotes).label("n"))
        .where(featurings.c.arxiv_id.in_(sa.select(base.c.arxiv_id)))
        .group_by(featurings.c.arxiv_id)
        .subquery()
    )
    local = (
        sa.select(votes.c.arxiv_id, sa.func.count().label("n"))
        .where(votes.c.arxiv_id.in_(sa.select(base.c.arxiv_id)))
        .group_by(votes.c.arxiv_id)
        .subquery()
    )
    stmt = (
        sa.select(
            base.c.arxiv_id,
            base.c.authors,
            base.c.at,
            sa.func.coalesce(upstream.c.n, 0).label("up"),
            sa.func.coalesce(local.c.n, 0).label("local"),
        )
        .outerjoin(upstream, upstream.c.arxiv_id == base.c.arxiv_id)
        .outerjoin(local, local.c.arxiv_id == base.c.arxiv_id)
        .order_by(base.c.at.desc(), base.c.arxiv_id)
    )
    out = []
    for r in conn.execute(stmt):
        at = r.at
        if isinstance(at, str):  # SQLite hands coalesce() back untyped
            at = datetime.fromisoformat(at)
        out.append(PoolRow(r.arxiv_id, list(r.authors or []), _utc(at), int(r.up) + int(r.local)))
    return out


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def newest_change(conn: Connection) -> int:
    """The papers' newest change sequence: a pool built at this number is still current."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(papers.c.change_seq), 0))).scalar_one())


def titles_and_authors(conn: Connection, ids: list[str]) -> dict[str, tuple[str, list[str]]]:
    """(title, authors) of the papers `ids` that exist: what a seed needs, without featurings or counts."""
    out: dict[str, tuple[str, list[str]]] = {}
    for i in range(0, len(ids), 500):
        stmt = sa.select(papers.c.arxiv_id, papers.c.title, papers.c.authors).where(
            papers.c.arxiv_id.in_(ids[i : i + 500])
        )
        out.update({r.arxiv_id: (r.title, list(r.authors or [])) for r in conn.execute(stmt)})
    return out
