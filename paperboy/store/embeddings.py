"""The embeddings table: float32 vectors per (paper, model). The vector index is rebuilt from here."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db import dialect
from paperboy.db.schema import embeddings, featurings, papers


@dataclass(frozen=True)
class PendingText:
    """A paper whose vector for the current model is missing or was computed from an older version of it."""

    arxiv_id: str
    title: str
    abstract: str
    stored_hash: str | None  # hash of the text embedded last time, if any
    paper_seq: int = 0  # the paper's change_seq when this text was read: what a vector made from it is of


def _stale(e: Any) -> sa.ColumnElement[bool]:
    # The vector was made from another version of the paper than the stored one (compared by change_seq,
    # read with the text: a change that commits while the vector is computed leaves the paper pending).
    return sa.or_(e.c.arxiv_id.is_(None), e.c.paper_seq != papers.c.change_seq)


def pending(conn: Connection, model: str, limit: int) -> list[PendingText]:
    """Up to `limit` papers needing a vector for `model`, the newest first: the papers of the newest daily
    list (what people open first), then by arXiv date, newest first, then papers without a date.

    No paging cursor: a paper leaves this list once its vector is stored, so the next call continues. Three
    small queries rather than one ORDER BY over a CASE: each walks an index (the newest day's featurings,
    `ix_papers_published_at` backwards) and stops at `limit`, where sorting every pending paper took about
    a second per call at 75,000 papers on SQLite."""
    e = embeddings.alias("e")
    joined = papers.outerjoin(e, sa.and_(e.c.arxiv_id == papers.c.arxiv_id, e.c.model == model))
    columns = sa.select(
        papers.c.arxiv_id, papers.c.title, papers.c.abstract, papers.c.change_seq, e.c.text_hash
    ).where(_stale(e))
    newest_day = sa.select(sa.func.max(featurings.c.day)).scalar_subquery()
    queries = [
        columns.select_from(joined.join(featurings, featurings.c.arxiv_id == papers.c.arxiv_id))
        .where(featurings.c.day == newest_day)
        .order_by(papers.c.arxiv_id.desc()),
        columns.select_from(joined)
        .where(papers.c.published_at.is_not(None))
        .order_by(papers.c.published_at.desc(), papers.c.arxiv_id.desc()),
        columns.select_from(joined).where(papers.c.published_at.is_(None)).order_by(papers.c.arxiv_id.desc()),
    ]
    out: dict[str, PendingText] = {}
    for stmt in queries:
        if len(out) >= limit:
            break
        for r in conn.execute(stmt.limit(limit)):  # at most `limit` new ones in each: enough to fill up
            if r.arxiv_id not in out and len(out) < limit:
                out[r.arxiv_id] = PendingText(r.arxiv_id, r.title, r.abstract, r.text_hash, r.change_seq)
    return list(out.values())


def pending_among(conn: Connection, model: str, ids: Sequence[str]) -> list[PendingText]:
    """Those of `ids` that need a vector for `model` now (missing, or made from another version)."""
    e = embeddings.alias("e")
    joined = papers.outerjoin(e, sa.and_(e.c.arxiv_id == papers.c.arxiv_id, e.c.model == model))
    out: list[PendingText] = []
    for start in range(0, len(ids), 500):
        stmt = (
            sa.select(papers.c.arxiv_id, papers.c.title, papers.c.abstract, papers.c.change_seq)
            .add_columns(e.c.text_hash)
            .select_from(joined)
            .where(_stale(e), papers.c.arxiv_id.in_(list(ids[start : start + 500])))
        )
        rows = conn.execute(stmt)
        out.extend(PendingText(r.arxiv_id, r.title, r.abstract, r.text_hash, r.change_seq) for r in rows)
    return out


def pending_ids(conn: Connection, model: str, limit: int, exclude: Collection[str] = ()) -> list[str]:
    """Up to `limit` ids of papers waiting for a vector, newest first (as `pending`), leaving out `exclude`
    (those already in a queued batch)."""
    found = pending(conn, model, limit + len(exclude))
    return [t.arxiv_id for t in found if t.arxiv_id not in exclude][:limit]


def count_pending(conn: Connection, model: str) -> int:
    e = embeddings.alias("e")
    stmt = (
        sa.select(sa.func.count())
        .select_from(papers.outerjoin(e, sa.and_(e.c.arxiv_id == papers.c.arxiv_id, e.c.model == model)))
        .where(_stale(e))
    )
    return conn.execute(stmt).scalar_one()


def save(
    conn: Connection,
    model: str,
    dim: int,
    rows: Sequence[tuple[str, bytes, str]],
    now: datetime,
    paper_seqs: Mapping[str, int] | None = None,
) -> None:
    """Store (arxiv_id, float32 vector bytes, text hash) rows for `model`, replacing older ones (one upsert:
    two processes embedding the same paper at once both succeed, the later write wins).

    `paper_seqs` are the papers' change_seq read with the texts that were embedded (`PendingText`); without
    them, the vectors count as made from the papers as stored now (an import of precomputed vectors)."""
    if not rows:
        return
    if paper_seqs is None:
        paper_seqs = {}
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            found = sa.select(papers.c.arxiv_id, papers.c.change_seq).where(papers.c.arxiv_id.in_(chunk))
            paper_seqs.update({a: s for a, s in conn.execute(found).all()})
    values = [
        {
            "arxiv_id": i,
            "model": model,
            "dim": dim,
            "vector": v,
            "text_hash": h,
            "embedded_at": now,
            "paper_seq": paper_seqs.get(i, -1),
        }
        for i, v, h in rows
    ]
    seq = dialect.next_change_seq(conn, embeddings.c.change_seq, embeddings.c.model == model)
    insert = dialect.insert(conn, embeddings).values(change_seq=seq)
    upsert = insert.on_conflict_do_update(
        index_elements=["arxiv_id", "model"],
        set_={
            **{c: insert.excluded[c] for c in ("dim", "vector", "text_hash", "embedded_at", "paper_seq")},
            "change_seq": seq,
        },
    )
    conn.execute(upsert, values)


def touch(conn: Connection, model: str, seqs: Mapping[str, int], now: datetime) -> None:
    """Mark vectors current without re-embedding (the paper changed, but not the text that was embedded):
    `seqs` maps each arxiv_id to the paper's change_seq read with its text. The vector itself is unchanged,
    so the vector index has nothing to sync (no new change_seq)."""
    if not seqs:
        return
    stmt = (
        sa.update(embeddings)
        .where(embeddings.c.model == model, embeddings.c.arxiv_id == sa.bindparam("b_arxiv_id"))
        .values(embedded_at=now, paper_seq=sa.bindparam("b_paper_seq"))
    )
    conn.execute(stmt, [{"b_arxiv_id": i, "b_paper_seq": s} for i, s in seqs.items()])


def count(conn: Connection, model: str) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(embeddings).where(embeddings.c.model == model)
    ).scalar_one()


def latest(conn: Connection, model: str) -> datetime | None:
    """When the newest vector of `model` was stored (shown by `paperboy index status`)."""
    return conn.execute(
        sa.select(sa.func.max(embeddings.c.embedded_at)).where(embeddings.c.model == model)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class StoredVector:
    arxiv_id: str
    vector: bytes
    seq: int  # change_seq: where this write stands in commit order


def vectors_after(
    conn: Connection, model: str, after: tuple[int, str], limit: int, horizon: int | None = None
) -> list[StoredVector]:
    """Vectors of `model` written after `after` = (change_seq, arxiv_id) in commit order, in keyset pages,
    only below `horizon` (db.dialect.change_horizon). For the vector index sync."""
    seq, arxiv_id = after
    stmt = (
        sa.select(embeddings.c.arxiv_id, embeddings.c.vector, embeddings.c.change_seq)
        .where(
            embeddings.c.model == model,
            sa.or_(
                embeddings.c.change_seq > seq,
                sa.and_(embeddings.c.change_seq == seq, embeddings.c.arxiv_id > arxiv_id),
            ),
        )
        .order_by(embeddings.c.change_seq, embeddings.c.arxiv_id)
        .limit(limit)
    )
    if horizon is not None:
        stmt = stmt.where(embeddings.c.change_seq < horizon)
    return [StoredVector(r.arxiv_id, bytes(r.vector), r.change_seq) for r in conn.execute(stmt)]


def change_seq_before(conn: Connection, model: str, at: datetime) -> int:
    """The largest change_seq among vectors of `model` stored before `at` (0 if none): where a vector index
    synced by the old `embedded_at` stamps continues from."""
    stmt = sa.select(sa.func.coalesce(sa.func.max(embeddings.c.change_seq), 0)).where(
        embeddings.c.model == model, embeddings.c.embedded_at < at
    )
    return int(conn.execute(stmt).scalar_one())


def iter_vectors(conn: Connection, model: str, batch: int = 5000) -> Iterator[list[tuple[str, bytes]]]:
    """All (arxiv_id, vector bytes) of `model`, in batches."""
    after = ""
    while True:
        stmt = (
            sa.select(embeddings.c.arxiv_id, embeddings.c.vector)
            .where(embeddings.c.model == model, embeddings.c.arxiv_id > after)
            .order_by(embeddings.c.arxiv_id)
            .limit(batch)
        )
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
                _stale(e).label("stale"),
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
