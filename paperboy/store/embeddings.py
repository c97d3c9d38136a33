"""The embeddings table: float32 vectors per (paper, model). The vector index is rebuilt from here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import embeddings, papers


@dataclass(frozen=True)
class PendingText:
    """A paper whose vector for the current model is missing or older than the paper's last change."""

    arxiv_id: str
    title: str
    abstract: str
    stored_hash: str | None  # hash of the text embedded last time, if any


def pending(conn: Connection, model: str, limit: int, after: str = "") -> list[PendingText]:
    """Up to `limit` papers needing a vector for `model`, in arxiv_id order after `after` (for paging)."""
    e = embeddings.alias("e")
    stmt = (
        sa.select(papers.c.arxiv_id, papers.c.title, papers.c.abstract, e.c.text_hash)
        .select_from(papers.outerjoin(e, sa.and_(e.c.arxiv_id == papers.c.arxiv_id, e.c.model == model)))
        .where(sa.or_(e.c.arxiv_id.is_(None), papers.c.changed_at > e.c.embedded_at))
        .where(papers.c.arxiv_id > after)
        .order_by(papers.c.arxiv_id)
        .limit(limit)
    )
    return [PendingText(r.arxiv_id, r.title, r.abstract, r.text_hash) for r in conn.execute(stmt)]


def count_pending(conn: Connection, model: str) -> int:
    e = embeddings.alias("e")
    stmt = (
        sa.select(sa.func.count())
        .select_from(papers.outerjoin(e, sa.and_(e.c.arxiv_id == papers.c.arxiv_id, e.c.model == model)))
        .where(sa.or_(e.c.arxiv_id.is_(None), papers.c.changed_at > e.c.embedded_at))
    )
    return conn.execute(stmt).scalar_one()


def save(
    conn: Connection, model: str, dim: int, rows: Sequence[tuple[str, bytes, str]], now: datetime
) -> None:
    """Store (arxiv_id, float32 vector bytes, text hash) rows for `model`, replacing older ones."""
    if not rows:
        return
    ids = [r[0] for r in rows]
    conn.execute(sa.delete(embeddings).where(embeddings.c.model == model, embeddings.c.arxiv_id.in_(ids)))
    conn.execute(
        sa.insert(embeddings),
        [
            {"arxiv_id": i, "model": model, "dim": dim, "vector": v, "text_hash": h, "embedded_at": now}
            for i, v, h in rows
        ],
    )


def touch(conn: Connection, model: str, ids: Sequence[str], now: datetime) -> None:
    """Mark vectors current without re-embedding (the paper changed, but not the text that was embedded)."""
    if ids:
        conn.execute(
            sa.update(embeddings)
            .where(embeddings.c.model == model, embeddings.c.arxiv_id.in_(list(ids)))
            .values(embedded_at=now)
        )


def count(conn: Connection, model: str) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(embeddings).where(embeddings.c.model == model)
    ).scalar_one()


def latest(conn: Connection, model: str) -> datetime | None:
    """When the newest vector of `model` was stored: the index records it to tell whether it is stale."""
    return conn.execute(
        sa.select(sa.func.max(embeddings.c.embedded_at)).where(embeddings.c.model == model)
    ).scalar_one_or_none()


def iter_vectors(
    conn: Connection, model: str, batch: int = 5000, since: datetime | None = None
) -> Iterator[list[tuple[str, bytes]]]:
    """All (arxiv_id, vector bytes) of `model` (stored after `since`, when given), in batches."""
    after = ""
    while True:
        stmt = (
            sa.select(embeddings.c.arxiv_id, embeddings.c.vector)
            .where(embeddings.c.model == model, embeddings.c.arxiv_id > after)
            .order_by(embeddings.c.arxiv_id)
            .limit(batch)
        )
        if since is not None:
            stmt = stmt.where(embeddings.c.embedded_at > since)
        rows = [(r.arxiv_id, bytes(r.vector)) for r in conn.execute(stmt)]
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def get_vectors(conn: Connection, model: str, ids: Sequence[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        stmt = sa.select(embeddings.c.arxiv_id, embeddings.c.vector).where(
            embeddings.c.model == model, embeddings.c.arxiv_id.in_(chunk)
        )
        out.update({r.arxiv_id: bytes(r.vector) for r in conn.execute(stmt)})
    return out


def delete_model(conn: Connection, model: str) -> None:
    conn.execute(sa.delete(embeddings).where(embeddings.c.model == model))


@dataclass(frozen=True)
class ImportTarget:
    """A paper precomputed vectors may be imported for, with what is stored for it now (import-vectors)."""

    arxiv_id: str
    title: str
    abstract: str
    stale: bool  # no vector for the model, or the paper changed after it was stored (what `pending` selects)
    text_hash: str | None
    vector: bytes | None


def import_targets(conn: Connection, model: str, ids: Sequence[str]) -> dict[str, ImportTarget]:
    """The papers among `ids` that exist, each with its stored vector of `model` (if any)."""
    e = embeddings.alias("e")
    out: dict[str, ImportTarget] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        stmt = (
            sa.select(
                papers.c.arxiv_id,
                papers.c.title,
                papers.c.abstract,
                (e.c.arxiv_id.is_(None) | (papers.c.changed_at > e.c.embedded_at)).label("stale"),
                e.c.text_hash,
                e.c.vector,
            )
            .select_from(papers.outerjoin(e, sa.and_(e.c.arxiv_id == papers.c.arxiv_id, e.c.model == model)))
            .where(papers.c.arxiv_id.in_(chunk))
        )
        for r in conn.execute(stmt):
            vector = bytes(r.vector) if r.vector is not None else None
            out[r.arxiv_id] = ImportTarget(
                r.arxiv_id, r.title, r.abstract, bool(r.stale), r.text_hash, vector
            )
    return out


def stored_dim(conn: Connection, model: str) -> int | None:
    """The dimension of the vectors stored for `model`, or None when there are none."""
    return conn.execute(
        sa.select(embeddings.c.dim).where(embeddings.c.model == model).limit(1)
    ).scalar_one_or_none()
