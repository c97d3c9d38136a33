"""Deleting papers: the rows go (their featurings, vectors and claims with them), a tombstone stays.

The search indexes follow changed rows; a deleted row is not there to follow, so each deletion leaves its id
in `paper_deletions` for the indexes to drop (search/indexer.py). A paper brought back later is simply a paper
again: `deleted_ids` leaves out ids that are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db import dialect
from paperboy.db.schema import paper_deletions, papers

_CHUNK = 500


def delete_papers(conn: Connection, ids: Sequence[str], now: datetime) -> list[str]:
    """Delete the papers `ids` (inside the caller's write transaction); the ids actually deleted."""
    done: list[str] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        rows = conn.execute(
            sa.select(papers.c.arxiv_id, papers.c.change_seq).where(papers.c.arxiv_id.in_(chunk))
        ).all()
        if not rows:
            continue
        tombstones = [{"arxiv_id": i, "change_seq": seq, "deleted_at": now} for i, seq in rows]
        dialect.upsert(conn, paper_deletions, tombstones, ["arxiv_id"], ["change_seq", "deleted_at"])
        found = [i for i, _ in rows]
        conn.execute(sa.delete(papers).where(papers.c.arxiv_id.in_(found)))
        done.extend(found)
    return done


def deleted_ids(conn: Connection) -> list[str]:
    """Every deleted paper that is not stored again: what an index must not hold. (Deletions are rare — the
    demo papers, once — so the whole list is read; `count_deletions` says when it changed.)"""
    stmt = (
        sa.select(paper_deletions.c.arxiv_id)
        .where(~sa.exists().where(papers.c.arxiv_id == paper_deletions.c.arxiv_id))
        .order_by(paper_deletions.c.arxiv_id)
    )
    return list(conn.execute(stmt).scalars())


def count_deletions(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(paper_deletions)).scalar_one())
