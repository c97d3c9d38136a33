"""The index_snapshots tables: search index snapshots shared through the database (search/snapshot.py).

A snapshot is one row (what it holds, the change sequences its indexes were synced to) and its bytes in
numbered chunks. It is written in steps — `begin`, one `add_chunk` per chunk (each in its own short
transaction), then `complete` — and read only once complete, so a reader never sees half of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db.schema import embeddings, index_snapshot_chunks, index_snapshots, papers


@dataclass(frozen=True)
class Snapshot:
    """A complete snapshot (or, from `all_snapshots`, one still being written: `completed_at` None)."""

    id: int
    model: str | None
    keyword_seq: int | None
    vector_seq: int | None
    manifest: dict[str, Any]
    bytes: int
    chunks: int
    sha256: str | None
    created_at: datetime
    completed_at: datetime | None


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        id=row.id,
        model=row.model,
        keyword_seq=row.keyword_seq,
        vector_seq=row.vector_seq,
        manifest=dict(row.manifest or {}),
        bytes=row.bytes,
        chunks=row.chunks,
        sha256=row.sha256,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


def begin(conn: Connection, model: str | None, manifest: dict[str, Any], now: datetime) -> int:
    """A new snapshot row, not yet readable; its id."""
    stmt = (
        sa.insert(index_snapshots)
        .values(model=model, manifest=manifest, created_at=now)
        .returning(index_snapshots.c.id)
    )
    return int(conn.execute(stmt).scalar_one())


def add_chunk(conn: Connection, snapshot_id: int, n: int, data: bytes) -> None:
    conn.execute(sa.insert(index_snapshot_chunks).values(snapshot_id=snapshot_id, n=n, data=data))


def complete(
    conn: Connection,
    snapshot_id: int,
    *,
    keyword_seq: int | None,
    vector_seq: int | None,
    manifest: dict[str, Any],
    size: int,
    chunks: int,
    sha256: str,
    now: datetime,
) -> bool:
    """Make the snapshot readable; False when its row is gone (pruned as abandoned meanwhile)."""
    stmt = (
        sa.update(index_snapshots)
        .where(index_snapshots.c.id == snapshot_id, index_snapshots.c.completed_at.is_(None))
        .values(
            keyword_seq=keyword_seq,
            vector_seq=vector_seq,
            manifest=manifest,
            bytes=size,
            chunks=chunks,
            sha256=sha256,
            completed_at=now,
        )
    )
    return conn.execute(stmt).rowcount == 1


def delete(conn: Connection, snapshot_id: int) -> None:
    """Remove a snapshot and its chunks (the chunks go by ON DELETE CASCADE)."""
    conn.execute(sa.delete(index_snapshot_chunks).where(index_snapshot_chunks.c.snapshot_id == snapshot_id))
    conn.execute(sa.delete(index_snapshots).where(index_snapshots.c.id == snapshot_id))


def prune(conn: Connection, keep: int, abandoned_before: datetime) -> list[int]:
    """Delete complete snapshots older than the newest `keep`, and unfinished ones begun before
    `abandoned_before` (their writer died); the ids deleted."""
    complete_ids = list(
        conn.execute(
            sa.select(index_snapshots.c.id)
            .where(index_snapshots.c.completed_at.is_not(None))
            .order_by(index_snapshots.c.id.desc())
        ).scalars()
    )
    stale = list(
        conn.execute(
            sa.select(index_snapshots.c.id).where(
                index_snapshots.c.completed_at.is_(None), index_snapshots.c.created_at < abandoned_before
            )
        ).scalars()
    )
    gone = complete_ids[max(keep, 0) :] + stale
    for snapshot_id in gone:
        delete(conn, snapshot_id)
    return gone


def latest(conn: Connection, model: str | None = None) -> Snapshot | None:
    """The newest complete snapshot; with `model`, the newest whose vector index is of that model."""
    stmt = sa.select(index_snapshots).where(index_snapshots.c.completed_at.is_not(None))
    if model is not None:
        stmt = stmt.where(index_snapshots.c.model == model)
    row = conn.execute(stmt.order_by(index_snapshots.c.id.desc()).limit(1)).first()
    return _snapshot(row) if row is not None else None


def all_snapshots(conn: Connection) -> list[Snapshot]:
    """Every snapshot, complete or not, newest first (for status pages and tests)."""
    rows = conn.execute(sa.select(index_snapshots).order_by(index_snapshots.c.id.desc()))
    return [_snapshot(r) for r in rows]


def chunk(conn: Connection, snapshot_id: int, n: int) -> bytes | None:
    """Chunk `n` of a snapshot, or None when it is missing."""
    stmt = sa.select(index_snapshot_chunks.c.data).where(
        index_snapshot_chunks.c.snapshot_id == snapshot_id, index_snapshot_chunks.c.n == n
    )
    data = conn.execute(stmt).scalar()
    return bytes(data) if data is not None else None


def papers_changed_between(conn: Connection, after: int, upto: int) -> int:
    """How many papers changed after change sequence `after` up to `upto`: what a keyword index synced to
    `after` lacks that a snapshot synced to `upto` holds (an index-only count)."""
    stmt = sa.select(sa.func.count()).where(papers.c.change_seq > after, papers.c.change_seq <= upto)
    return int(conn.execute(stmt).scalar_one())


def vectors_changed_between(conn: Connection, model: str, after: int, upto: int) -> int:
    """The same for the stored vectors of `model`."""
    stmt = sa.select(sa.func.count()).where(
        embeddings.c.model == model, embeddings.c.change_seq > after, embeddings.c.change_seq <= upto
    )
    return int(conn.execute(stmt).scalar_one())
