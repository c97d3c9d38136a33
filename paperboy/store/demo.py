"""The bundled demo papers (featurings with source "demo"): which there are, and taking them away.

`paperboy serve` loads them on an empty database with no network so the first page is never empty
(jobs.load_demo). Once real data arrives they must not pose as today's papers: the first successful real
ingest removes them (ingest.run_ingest), and `paperboy demo remove` does it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import claims, collection_items, comments, featurings, papers, votes
from paperboy.store.deletions import delete_papers

DEMO_SOURCE = "demo"


@dataclass(frozen=True)
class DemoRemoval:
    papers: list[str]  # deleted outright
    featurings: int  # demo featurings taken off the lists (of deleted papers and of real ones)
    kept: list[str]  # members voted on, discussed, claimed or saved these: left as they are, label and all


def has_demo(conn: Connection) -> bool:
    stmt = sa.select(sa.literal(1)).where(featurings.c.source == DEMO_SOURCE).limit(1)
    return conn.execute(stmt).first() is not None


def remove_demo(conn: Connection, now: datetime) -> DemoRemoval:
    """Inside the caller's write transaction: take every demo featuring off the lists and delete the papers
    that only the demo brought — except those a member has voted on, commented on, claimed or saved in a
    collection.

    A paper some real source brought too (it has another featuring, or an ingest changed it since the demo
    load) keeps its row and loses only its demo featuring."""
    demo_ids = set(
        conn.execute(sa.select(featurings.c.arxiv_id).where(featurings.c.source == DEMO_SOURCE)).scalars()
    )
    if not demo_ids:
        return DemoRemoval([], 0, [])
    engaged: set[str] = set()
    for table in (votes, comments, claims, collection_items):
        engaged.update(
            conn.execute(
                sa.select(table.c.arxiv_id).where(table.c.arxiv_id.in_(demo_ids)).distinct()
            ).scalars()
        )
    going = sorted(demo_ids - engaged)
    removed = 0
    if going:
        removed = conn.execute(
            sa.delete(featurings).where(featurings.c.source == DEMO_SOURCE, featurings.c.arxiv_id.in_(going))
        ).rowcount
    others = sa.exists().where(featurings.c.arxiv_id == papers.c.arxiv_id)  # any featuring left
    only_demo = conn.execute(
        sa.select(papers.c.arxiv_id).where(
            papers.c.arxiv_id.in_(going),
            ~others,
            papers.c.changed_at == papers.c.first_seen_at,  # no ingest changed it after the demo load
        )
    ).scalars()
    deleted = delete_papers(conn, sorted(only_demo), now)
    return DemoRemoval(deleted, max(removed, 0), sorted(engaged))
