"""The claims table: a member's claim to be one of a paper's authors, pending until an admin decides."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db import dialect
from paperboy.db.schema import claims, users
from paperboy.models import Claim

_COLUMNS = (
    claims.c.id,
    claims.c.user_id,
    users.c.username,
    claims.c.arxiv_id,
    claims.c.author_name,
    claims.c.status,
    claims.c.created_at,
    claims.c.decided_at,
)


def _claim(row: RowMapping) -> Claim:
    return Claim(
        id=row["id"],
        user_id=row["user_id"],
        username=row["username"],
        arxiv_id=row["arxiv_id"],
        author_name=row["author_name"],
        status=row["status"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
    )


def _select() -> sa.Select[tuple[object, ...]]:
    return sa.select(*_COLUMNS).join(users, users.c.id == claims.c.user_id)


def insert_claim(
    conn: Connection, user_id: int, arxiv_id: str, author_name: str, now: datetime
) -> int | None:
    """A new pending claim's id; None when the member already claimed the paper (nothing changes)."""
    row = {
        "user_id": user_id,
        "arxiv_id": arxiv_id,
        "author_name": author_name,
        "status": "pending",
        "created_at": now,
    }
    made = dialect.insert_ignore_returning(conn, claims, row, claims.c.id, ["user_id", "arxiv_id"])
    return int(made) if made is not None else None


def get_claim(conn: Connection, claim_id: int) -> Claim | None:
    row = conn.execute(_select().where(claims.c.id == claim_id)).mappings().first()
    return _claim(row) if row else None


def claim_of(conn: Connection, user_id: int, arxiv_id: str) -> Claim | None:
    """The member's claim on the paper, whatever its status."""
    stmt = _select().where(claims.c.user_id == user_id, claims.c.arxiv_id == arxiv_id)
    row = conn.execute(stmt).mappings().first()
    return _claim(row) if row else None


def set_status(conn: Connection, claim_id: int, status: str, now: datetime) -> None:
    conn.execute(sa.update(claims).where(claims.c.id == claim_id).values(status=status, decided_at=now))


def pending(conn: Connection, limit: int) -> list[Claim]:
    """Claims waiting for an admin, the oldest first."""
    stmt = _select().where(claims.c.status == "pending").order_by(claims.c.created_at, claims.c.id)
    return [_claim(r) for r in conn.execute(stmt.limit(limit)).mappings()]


def approved_for_paper(conn: Connection, arxiv_id: str) -> list[Claim]:
    stmt = _select().where(claims.c.arxiv_id == arxiv_id, claims.c.status == "approved")
    return [_claim(r) for r in conn.execute(stmt.order_by(claims.c.decided_at, claims.c.id)).mappings()]


def authored_ids(conn: Connection, user_id: int, limit: int) -> list[str]:
    """The papers whose authorship the member's approved claims confirm, the latest approval first."""
    stmt = (
        sa.select(claims.c.arxiv_id)
        .where(claims.c.user_id == user_id, claims.c.status == "approved")
        .order_by(claims.c.decided_at.desc(), claims.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())
