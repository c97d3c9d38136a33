"""The paper_authors table: one row per (paper, author position), kept in step with papers.authors by every
paper write (store/papers.py upsert_records calls `sync_authors`), so that an author's papers are one index
range, newest first, however many papers the hub holds.

Names match as the papers spell them, with runs of white space made one space and case folded
(`author_key`): "Yann LeCun" finds "yann  lecun" but not "Y. LeCun".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import paper_authors, papers

MAX_NAME_CHARS = 300  # a longer "name" is not a person's (the key column holds this many characters)
_CHUNK = 500


def author_key(name: str) -> str:
    """How a name is matched: white space collapsed, case folded, cut to MAX_NAME_CHARS."""
    return " ".join(name.split()).casefold()[:MAX_NAME_CHARS]


def author_rows(arxiv_id: str, authors: Iterable[str], paper_date: datetime) -> list[dict[str, Any]]:
    """A paper's rows: one per distinct name (a name listed twice counts once, at its first position)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, name in enumerate(authors):
        key = author_key(name)
        if not key or key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "arxiv_id": arxiv_id,
                "position": position,
                "name": " ".join(name.split()),
                "name_key": key,
                "paper_date": paper_date,
            }
        )
    return rows


def sync_authors(conn: Connection, ids: Sequence[str]) -> None:
    """Rewrite the author rows of `ids` from their stored papers (call after writing the papers)."""
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        stmt = sa.select(
            papers.c.arxiv_id, papers.c.authors, papers.c.published_at, papers.c.first_seen_at
        ).where(papers.c.arxiv_id.in_(chunk))
        rows: list[dict[str, Any]] = []
        for r in conn.execute(stmt):
            rows += author_rows(r.arxiv_id, r.authors or (), r.published_at or r.first_seen_at)
        conn.execute(sa.delete(paper_authors).where(paper_authors.c.arxiv_id.in_(chunk)))
        if rows:
            conn.execute(sa.insert(paper_authors), rows)


def author_name(conn: Connection, name: str) -> str | None:
    """The name as the newest of its papers spells it, or None when no paper has this author."""
    key = author_key(name)
    stmt = (
        sa.select(paper_authors.c.name)
        .where(paper_authors.c.name_key == key)
        .order_by(paper_authors.c.paper_date.desc(), paper_authors.c.arxiv_id.desc())
        .limit(1)
    )
    return conn.execute(stmt).scalar_one_or_none()


def count_papers_by(conn: Connection, name: str) -> int:
    stmt = sa.select(sa.func.count()).where(paper_authors.c.name_key == author_key(name))
    return int(conn.execute(stmt).scalar_one())


def paper_ids_by(conn: Connection, name: str, offset: int, limit: int) -> list[str]:
    """One page of the author's paper ids, newest arXiv date first (an index range: bounded work)."""
    stmt = (
        sa.select(paper_authors.c.arxiv_id)
        .where(paper_authors.c.name_key == author_key(name))
        .order_by(paper_authors.c.paper_date.desc(), paper_authors.c.arxiv_id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())
