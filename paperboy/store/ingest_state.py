"""Ingest cursors (where a source resumes) and the log of ingest runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paperboy.db import dialect
from paperboy.db.schema import ingest_cursors, ingest_runs
from paperboy.models import UpsertCounts


def get_cursor(conn: Connection, name: str) -> dict[str, Any] | None:
    value = conn.execute(sa.select(ingest_cursors.c.value).where(ingest_cursors.c.name == name)).scalar()
    return dict(value) if value is not None else None


def set_cursor(conn: Connection, name: str, value: dict[str, Any], now: datetime) -> None:
    """Store a cursor (one upsert); call it in the same transaction as the page it describes."""
    dialect.upsert(conn, ingest_cursors, {"name": name, "value": value, "updated_at": now}, ["name"])


def delete_cursor(conn: Connection, name: str) -> None:
    conn.execute(sa.delete(ingest_cursors).where(ingest_cursors.c.name == name))


@dataclass(frozen=True)
class IngestRun:
    id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    inserted: int
    updated: int
    unchanged: int
    featured: int
    error: str | None


def start_run(conn: Connection, source: str, now: datetime) -> int:
    result = conn.execute(sa.insert(ingest_runs).values(source=source, started_at=now, status="running"))
    pk = result.inserted_primary_key
    assert pk is not None  # noqa: S101 (an INSERT always has one; for mypy)
    return int(pk[0])


def finish_run(
    conn: Connection, run_id: int, counts: UpsertCounts, now: datetime, error: str | None = None
) -> None:
    conn.execute(
        sa.update(ingest_runs)
        .where(ingest_runs.c.id == run_id)
        .values(
            finished_at=now,
            status="failed" if error else "ok",
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            featured=counts.featured,
            error=error,
        )
    )


def recent_runs(conn: Connection, limit: int = 20) -> list[IngestRun]:
    rows = conn.execute(sa.select(ingest_runs).order_by(ingest_runs.c.id.desc()).limit(limit)).mappings()
    return [IngestRun(**dict(r)) for r in rows]
