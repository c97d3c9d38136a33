"""The background_status table: how each background loop of `paperboy serve` is doing, one row per loop.

The loop writes its row (scheduler.LoopHealth); `paperboy index status`, /admin and /readyz read it, from
this process or another. A write is one upsert that sets only the columns the writer knows, so a process
that starts afresh does not erase the last error an earlier one recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db import dialect
from paperboy.db.schema import background_status

# Always written: the rest only when known (not None).
_ALWAYS = ("failures", "updated_at")
_OPTIONAL = ("last_success_at", "last_error_at", "last_error", "backlog", "detail")


@dataclass(frozen=True)
class LoopStatus:
    """One background loop's state: its last success, its last error, how many runs in a row failed, and
    the work waiting for it (`backlog`: papers to index, mails due; None where it has no such measure)."""

    name: str
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    backlog: int | None = None
    detail: dict[str, Any] | None = None
    updated_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """Its latest run succeeded (or it has not failed yet)."""
        return self.failures == 0


def record(conn: Connection, status: LoopStatus) -> None:
    """Write `status` in one statement: failures and updated_at always, the other columns when not None."""
    if status.updated_at is None:
        raise ValueError("a recorded status needs updated_at")
    known = [c for c in _OPTIONAL if getattr(status, c) is not None]
    values = {"name": status.name, **{c: getattr(status, c) for c in (*_ALWAYS, *known)}}
    dialect.upsert(conn, background_status, values, keys=["name"], update=[*_ALWAYS, *known])


def _status(row: RowMapping) -> LoopStatus:
    return LoopStatus(
        name=row["name"],
        last_success_at=row["last_success_at"],
        last_error_at=row["last_error_at"],
        last_error=row["last_error"],
        failures=row["failures"],
        backlog=row["backlog"],
        detail=row["detail"],
        updated_at=row["updated_at"],
    )


def all_statuses(conn: Connection) -> list[LoopStatus]:
    """Every loop that has reported, by name."""
    rows = conn.execute(sa.select(background_status).order_by(background_status.c.name)).mappings()
    return [_status(r) for r in rows]


def get(conn: Connection, name: str) -> LoopStatus | None:
    stmt = sa.select(background_status).where(background_status.c.name == name)
    row = conn.execute(stmt).mappings().first()
    return _status(row) if row is not None else None
