"""The subscriptions, topics and confirmations tables; cancelling a subscriber's queued mail.

Addresses arrive here already cleaned (lower-cased); confirmation secrets arrive already hashed. Nothing here
decides anything: digest/subscriptions.py does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db import dialect
from paperboy.db.schema import confirmations, outbox, subscriptions, topics
from paperboy.models import Subscription, Topic


@dataclass(frozen=True)
class Confirmation:
    """One confirmation link sent: what it confirms (`payload`), until when, and whether it was used."""

    id: int
    subscription_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    payload: dict[str, Any]


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _topic(row: RowMapping) -> Topic:
    filters = row["filters"] if isinstance(row["filters"], dict) else {}
    return Topic(
        id=row["id"],
        subscription_id=row["subscription_id"],
        query=row["query"],
        source=row["source"],
        created_at=row["created_at"],
        categories=_strings(filters.get("categories")),
        vector=row["vector"],
        model=row["model"],
    )


def _subscription(row: RowMapping, found: Sequence[Topic] = ()) -> Subscription:
    return Subscription(
        id=row["id"],
        email=row["email"],
        status=row["status"],
        created_at=row["created_at"],
        user_id=row["user_id"],
        cadence=row["cadence"],
        send_hour=row["send_hour"],
        weekly_day=row["weekly_day"],
        timezone=row["timezone"],
        max_papers=row["max_papers"],
        categories=_strings(row["categories"]),
        authors=_strings(row["authors"]),
        exclude=_strings(row["exclude"]),
        token_version=row["token_version"],
        confirmed_at=row["confirmed_at"],
        unsubscribed_at=row["unsubscribed_at"],
        topics=tuple(found),
    )


def topics_of(conn: Connection, subscription_ids: Iterable[int]) -> dict[int, list[Topic]]:
    """Each subscription's topics, oldest first."""
    ids = list(subscription_ids)
    out: dict[int, list[Topic]] = {i: [] for i in ids}
    if not ids:
        return out
    stmt = sa.select(topics).where(topics.c.subscription_id.in_(ids)).order_by(topics.c.id)
    for row in conn.execute(stmt).mappings():
        out[row["subscription_id"]].append(_topic(row))
    return out


def _one(conn: Connection, where: sa.ColumnElement[bool]) -> Subscription | None:
    row = conn.execute(sa.select(subscriptions).where(where)).mappings().first()
    if row is None:
        return None
    return _subscription(row, topics_of(conn, [row["id"]])[row["id"]])


def get(conn: Connection, subscription_id: int) -> Subscription | None:
    return _one(conn, subscriptions.c.id == subscription_id)


def get_by_email(conn: Connection, email: str) -> Subscription | None:
    return _one(conn, subscriptions.c.email == email)


def get_by_user(conn: Connection, user_id: int) -> Subscription | None:
    return _one(conn, subscriptions.c.user_id == user_id)


def active_subscriptions(conn: Connection) -> list[Subscription]:
    """Every confirmed, still subscribed address with its topics (what the digest planner walks)."""
    stmt = sa.select(subscriptions).where(subscriptions.c.status == "active").order_by(subscriptions.c.id)
    rows = list(conn.execute(stmt).mappings())
    found = topics_of(conn, [r["id"] for r in rows])
    return [_subscription(r, found[r["id"]]) for r in rows]


def _new_row(email: str, now: datetime) -> dict[str, Any]:
    """A new pending subscription with the default preferences."""
    return {
        "email": email,
        "status": "pending",
        "created_at": now,
        "categories": [],
        "authors": [],
        "exclude": [],
    }


def insert_subscription(conn: Connection, *, email: str, now: datetime) -> Subscription:
    """A new pending subscription with the default preferences, or the address's subscription when it has one
    already (made a moment ago by the same form sent twice: the unique address decides, in one statement)."""
    dialect.insert_ignore(conn, subscriptions, _new_row(email, now), ["email"])
    made = get_by_email(conn, email)
    assert made is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return made


def claim_subscription(conn: Connection, *, email: str, now: datetime, create: bool) -> Subscription | None:
    """The address's subscription, its row locked until the transaction ends (PostgreSQL; SQLite's write lock
    does that), so that what one request counts and writes for the address another sees whole. `create`:
    insert it first as a new pending subscription when there is none (an insert the unique address ignores
    when there is one: the same statements either way); else None when there is none."""
    if create:
        dialect.insert_ignore(conn, subscriptions, _new_row(email, now), ["email"])
    row = (
        conn.execute(sa.select(subscriptions).where(subscriptions.c.email == email).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        return None
    return _subscription(row, topics_of(conn, [row["id"]])[row["id"]])


def set_status(conn: Connection, subscription_id: int, status: str, now: datetime) -> None:
    """pending | active (confirmed now, the unsubscribe date cleared) | unsubscribed (now)."""
    values: dict[str, Any] = {"status": status}
    if status == "active":
        values.update(confirmed_at=now, unsubscribed_at=None)
    elif status == "unsubscribed":
        values["unsubscribed_at"] = now
    conn.execute(sa.update(subscriptions).where(subscriptions.c.id == subscription_id).values(**values))


def link_user(conn: Connection, subscription_id: int, user_id: int) -> None:
    """Make `user_id`'s account manage this subscription (and no other: the column is unique)."""
    conn.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.user_id == user_id, subscriptions.c.id != subscription_id)
        .values(user_id=None)
    )
    conn.execute(
        sa.update(subscriptions).where(subscriptions.c.id == subscription_id).values(user_id=user_id)
    )


def update_preferences(
    conn: Connection,
    subscription_id: int,
    *,
    cadence: str,
    send_hour: int,
    weekly_day: int,
    timezone: str,
    max_papers: int,
    categories: Sequence[str],
    authors: Sequence[str],
    exclude: Sequence[str],
) -> None:
    conn.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(
            cadence=cadence,
            send_hour=send_hour,
            weekly_day=weekly_day,
            timezone=timezone,
            max_papers=max_papers,
            categories=list(categories),
            authors=list(authors),
            exclude=list(exclude),
        )
    )


def followed_authors(conn: Connection, subscription_id: int) -> tuple[str, ...]:
    """The authors a subscription follows, its row locked until the transaction ends (PostgreSQL; SQLite's
    write lock does that): a follow and an edit of the preferences at once take turns, neither is lost."""
    stmt = sa.select(subscriptions.c.authors).where(subscriptions.c.id == subscription_id).with_for_update()
    return _strings(conn.execute(stmt).scalar_one_or_none())


def set_authors(conn: Connection, subscription_id: int, authors: Sequence[str]) -> None:
    conn.execute(
        sa.update(subscriptions).where(subscriptions.c.id == subscription_id).values(authors=list(authors))
    )


def bump_token_version(conn: Connection, subscription_id: int) -> int:
    """Revoke every link made so far for this subscription; the new version."""
    return conn.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(token_version=subscriptions.c.token_version + 1)
        .returning(subscriptions.c.token_version)
    ).scalar_one()


# --- topics -------------------------------------------------------------------------------------------------


def add_topic(
    conn: Connection,
    subscription_id: int,
    query: str,
    *,
    source: str,
    categories: Sequence[str] = (),
    now: datetime,
) -> bool:
    """Add a topic unless the subscription already has that exact query; True when one was added."""
    row = {
        "subscription_id": subscription_id,
        "query": query,
        "source": source,
        "filters": {"categories": list(categories)} if categories else None,
        "created_at": now,
    }
    return dialect.insert_ignore(conn, topics, row, ["subscription_id", "query"])


def remove_topic(conn: Connection, subscription_id: int, topic_id: int) -> bool:
    result = conn.execute(
        sa.delete(topics).where(topics.c.subscription_id == subscription_id, topics.c.id == topic_id)
    )
    return result.rowcount == 1


def replace_topics(conn: Connection, subscription_id: int, queries: Sequence[str], now: datetime) -> None:
    """Keep the topics whose query is still listed (their filters and embeddings too), delete the others,
    add the new ones as plain topics."""
    current = topics_of(conn, [subscription_id])[subscription_id]
    wanted = set(queries)
    gone = [t.id for t in current if t.query not in wanted]
    if gone:
        conn.execute(sa.delete(topics).where(topics.c.id.in_(gone)))
    for query in queries:
        add_topic(conn, subscription_id, query, source="topic", now=now)


def count_topics(conn: Connection, subscription_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(topics).where(topics.c.subscription_id == subscription_id)
    return conn.execute(stmt).scalar_one()


# --- confirmations ------------------------------------------------------------------------------------------


def insert_confirmation(
    conn: Connection,
    *,
    subscription_id: int,
    token_hash: str,
    now: datetime,
    expires_at: datetime,
    payload: dict[str, Any],
) -> int:
    return conn.execute(
        sa.insert(confirmations)
        .values(
            subscription_id=subscription_id,
            token_hash=token_hash,
            created_at=now,
            expires_at=expires_at,
            payload=payload,
        )
        .returning(confirmations.c.id)
    ).scalar_one()


def find_confirmation(conn: Connection, token_hash: str) -> Confirmation | None:
    row = (
        conn.execute(sa.select(confirmations).where(confirmations.c.token_hash == token_hash))
        .mappings()
        .first()
    )
    if row is None:
        return None
    payload = row["payload"] if isinstance(row["payload"], dict) else {}
    return Confirmation(
        row["id"], row["subscription_id"], row["created_at"], row["expires_at"], row["used_at"], payload
    )


def use_confirmation(conn: Connection, confirmation_id: int, now: datetime) -> bool:
    """Mark it used; False when it already was (a concurrent click got there first)."""
    result = conn.execute(
        sa.update(confirmations)
        .where(confirmations.c.id == confirmation_id, confirmations.c.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def confirmations_sent_since(conn: Connection, subscription_id: int, since: datetime) -> list[datetime]:
    """When each confirmation mail since `since` was made, oldest first."""
    stmt = (
        sa.select(confirmations.c.created_at)
        .where(confirmations.c.subscription_id == subscription_id, confirmations.c.created_at >= since)
        .order_by(confirmations.c.created_at)
    )
    return list(conn.execute(stmt).scalars())


# --- the outbox --------------------------------------------------------------------------------------------


def cancel_pending_outbox(conn: Connection, subscription_id: int) -> int:
    """Cancel the subscription's mail not yet sent; how many rows."""
    result = conn.execute(
        sa.update(outbox)
        .where(outbox.c.subscription_id == subscription_id, outbox.c.status == "pending")
        .values(status="cancelled")
    )
    return result.rowcount
