"""The outbox and suppressions tables: mail waiting to be sent, and addresses never to be mailed again.

A row's life: pending → sending (claimed by a sender) → sent | failed | cancelled, or back to pending with a
later next_attempt_at after a temporary failure. A row left in `sending` by a sender that died is claimed
again once its claim is older than the lease. Each claim is one UPDATE guarded by the status the claimer saw,
so two senders never take the same row (SQLite serialises the writes; PostgreSQL re-checks the WHERE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db.schema import outbox, subscriptions, suppressions

STATUSES = ("pending", "sending", "sent", "failed", "cancelled")
_CANDIDATES = 16  # rows looked at per claim; losing them all to other senders just means looking again


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    kind: str  # digest | confirm
    to_addr: str
    message_id: str
    subject: str
    text_body: str
    html_body: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    subscription_id: int | None = None
    run_id: int | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None


def _message(row: RowMapping) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        kind=row["kind"],
        to_addr=row["to_addr"],
        message_id=row["message_id"],
        subject=row["subject"],
        text_body=row["text_body"],
        html_body=row["html_body"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        headers=dict(row["headers"] or {}),
        subscription_id=row["subscription_id"],
        run_id=row["run_id"],
        claimed_at=row["claimed_at"],
        sent_at=row["sent_at"],
        last_error=row["last_error"],
    )


def enqueue(
    conn: Connection,
    *,
    kind: str,
    to_addr: str,
    subject: str,
    text_body: str,
    html_body: str | None,
    headers: dict[str, str],
    message_id: str,
    now: datetime,
    subscription_id: int | None = None,
    run_id: int | None = None,
) -> int:
    """A pending row, due now; its id. Call it in the transaction that decided to send the mail.

    Raises sqlalchemy's IntegrityError when `run_id` or `message_id` is already in the outbox.
    """
    result = conn.execute(
        sa.insert(outbox).values(
            kind=kind,
            run_id=run_id,
            subscription_id=subscription_id,
            to_addr=to_addr.strip(),
            message_id=message_id,
            subject=subject,
            headers=dict(headers),
            text_body=text_body,
            html_body=html_body,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    (row_id,) = result.inserted_primary_key or (None,)
    assert row_id is not None  # noqa: S101 (an INSERT always has one; for mypy)
    return int(row_id)


def get(conn: Connection, row_id: int) -> OutboxMessage | None:
    row = conn.execute(sa.select(outbox).where(outbox.c.id == row_id)).mappings().first()
    return _message(row) if row is not None else None


def _stale(now: datetime, lease: timedelta) -> sa.ColumnElement[bool]:
    return sa.and_(outbox.c.status == "sending", outbox.c.claimed_at < now - lease)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)


def claim_next(conn: Connection, now: datetime, lease: timedelta) -> OutboxMessage | None:
    """Take the next row to send: first one a dead sender left in `sending` longer than `lease`, else the
    pending row due the earliest. It is `sending` (claimed_at = now) when this returns; None: nothing due.

    Commit right after: the claim is what keeps other senders off the row.
    """
    for condition, order in (
        (_stale(now, lease), (outbox.c.claimed_at, outbox.c.id)),
        (_due(now), (outbox.c.next_attempt_at, outbox.c.id)),
    ):
        while True:
            # read first, then one guarded UPDATE per row (SQLite: no write lock held while reading)
            ids = conn.execute(sa.select(outbox.c.id).where(condition).order_by(*order).limit(_CANDIDATES))
            candidates = list(ids.scalars().all())
            if not candidates:
                break
            for row_id in candidates:
                won = conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.id == row_id, condition)
                    .values(status="sending", claimed_at=now)
                ).rowcount
                if won == 1:
                    claimed = get(conn, row_id)
                    assert claimed is not None  # noqa: S101 (claimed above, same transaction; for mypy)
                    return claimed
    return None


def _finish(conn: Connection, row_id: int, **values: Any) -> bool:
    stmt = sa.update(outbox).where(outbox.c.id == row_id, outbox.c.status == "sending").values(**values)
    return conn.execute(stmt).rowcount == 1


def mark_sent(conn: Connection, row_id: int, now: datetime) -> bool:
    """The server accepted it. False when the row was no longer `sending` (nothing changes)."""
    return _finish(conn, row_id, status="sent", sent_at=now, attempts=outbox.c.attempts + 1, last_error=None)


def mark_retry(conn: Connection, row_id: int, *, next_attempt_at: datetime, error: str) -> bool:
    """A temporary failure: pending again, one more attempt counted, not before `next_attempt_at`."""
    return _finish(
        conn,
        row_id,
        status="pending",
        attempts=outbox.c.attempts + 1,
        next_attempt_at=next_attempt_at,
        claimed_at=None,
        last_error=error,
    )


def release(conn: Connection, row_id: int, *, error: str) -> bool:
    """Put a claimed row back, due at once and with no attempt counted (the server could not be reached, so
    the message was never tried)."""
    return _finish(conn, row_id, status="pending", claimed_at=None, last_error=error)


def mark_failed(conn: Connection, row_id: int, error: str) -> bool:
    """Given up: a permanent refusal, or too many temporary ones."""
    return _finish(conn, row_id, status="failed", attempts=outbox.c.attempts + 1, last_error=error)


def mark_cancelled(conn: Connection, row_id: int, reason: str) -> bool:
    """Not to be sent any more (the subscriber left, the address is suppressed). Pending rows too."""
    stmt = (
        sa.update(outbox)
        .where(outbox.c.id == row_id, outbox.c.status.in_(("pending", "sending")))
        .values(status="cancelled", last_error=reason)
    )
    return conn.execute(stmt).rowcount == 1


def subscription_status(conn: Connection, subscription_id: int) -> str | None:
    """The subscription's status now (pending | active | unsubscribed); None when it was deleted."""
    stmt = sa.select(subscriptions.c.status).where(subscriptions.c.id == subscription_id)
    return conn.execute(stmt).scalar_one_or_none()


def suppress(conn: Connection, email: str, reason: str, now: datetime) -> bool:
    """Never mail `email` again. False when it was suppressed already (the first reason is kept).

    Raises sqlalchemy's IntegrityError when another transaction suppresses the same address at the same time.
    """
    key = email.strip().lower()
    if is_suppressed(conn, key):
        return False
    conn.execute(sa.insert(suppressions).values(email=key, reason=reason, created_at=now))
    return True


def is_suppressed(conn: Connection, email: str) -> bool:
    stmt = sa.select(suppressions.c.email).where(suppressions.c.email == email.strip().lower())
    return conn.execute(stmt).first() is not None


def unsuppress(conn: Connection, email: str) -> bool:
    """Mail this address again (an admin's decision after a mistaken bounce)."""
    stmt = sa.delete(suppressions).where(suppressions.c.email == email.strip().lower())
    return conn.execute(stmt).rowcount == 1


def counts(conn: Connection) -> dict[str, int]:
    """How many rows are in each status (every status present, 0 when none)."""
    out = dict.fromkeys(STATUSES, 0)
    stmt = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
    for status, n in conn.execute(stmt):
        out[status] = n
    return out


def count_due(conn: Connection, now: datetime) -> int:
    """How many pending rows are due now (the digest sender's backlog)."""
    return conn.execute(sa.select(sa.func.count()).select_from(outbox).where(_due(now))).scalar_one()
