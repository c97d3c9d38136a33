"""The digest_runs table: one row per subscriber and period (the constraint that sends a digest once)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import digest_runs, topics


def planned(conn: Connection, pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (subscription id, period) pairs already have a run."""
    wanted = list(pairs)
    out: set[tuple[int, str]] = set()
    by_period: dict[str, list[int]] = {}
    for sub_id, period in wanted:
        by_period.setdefault(period, []).append(sub_id)
    for period, ids in by_period.items():
        for s in range(0, len(ids), 500):
            stmt = sa.select(digest_runs.c.subscription_id).where(
                digest_runs.c.period == period, digest_runs.c.subscription_id.in_(ids[s : s + 500])
            )
            out.update((sub_id, period) for sub_id in conn.execute(stmt).scalars())
    return out


def insert_run(conn: Connection, subscription_id: int, period: str, now: datetime, papers: int) -> int:
    """A new run; sqlalchemy's IntegrityError when this subscriber's period was planned already."""
    return conn.execute(
        sa.insert(digest_runs)
        .values(subscription_id=subscription_id, period=period, planned_at=now, papers=papers)
        .returning(digest_runs.c.id)
    ).scalar_one()


def runs_of(conn: Connection, subscription_id: int) -> list[tuple[str, int]]:
    """(period, papers) of a subscriber's runs, oldest first."""
    stmt = (
        sa.select(digest_runs.c.period, digest_runs.c.papers)
        .where(digest_runs.c.subscription_id == subscription_id)
        .order_by(digest_runs.c.id)
    )
    return [(p, n) for p, n in conn.execute(stmt).all()]


def save_topic_vectors(conn: Connection, rows: list[tuple[int, bytes, str]]) -> None:
    """Store topics' query embeddings: (topic id, float32 bytes, model)."""
    for topic_id, vector, model in rows:
        conn.execute(sa.update(topics).where(topics.c.id == topic_id).values(vector=vector, model=model))
