"""The collections tables: a member's named lists of papers (`collections`) and the papers in them, in the
member's order, with a note each (`collection_items`).

Writes are single statements a constraint decides: a paper added twice is one row (the primary key
`(collection_id, arxiv_id)`), a slug taken twice is refused by `uq_collections_user_id_slug`. Writes that
depend on what a collection holds (the next position, the size cap, a new order) first lock the collection's
row with a conditional `UPDATE` that also proves the member owns it (`touch`): on PostgreSQL the writers of
one collection then queue on that row, and each later statement of the transaction sees what the one before
it committed; on SQLite the write transaction holds the database's one write lock already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db import dialect
from paperboy.db.schema import collection_items, collections, users, votes
from paperboy.models import Collection, CollectionItem


def _collection(row: RowMapping) -> Collection:
    return Collection(
        id=row["id"],
        user_id=row["user_id"],
        slug=row["slug"],
        name=row["name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["description"],
        is_public=bool(row["is_public"]),
        size=row.get("size") or 0,
        owner=row.get("owner"),
    )


def _item(row: RowMapping) -> CollectionItem:
    return CollectionItem(
        collection_id=row["collection_id"],
        arxiv_id=row["arxiv_id"],
        position=row["position"],
        added_at=row["added_at"],
        note=row["note"],
    )


def _size() -> sa.ScalarSelect[Any]:
    return (
        sa.select(sa.func.count())
        .select_from(collection_items)
        .where(collection_items.c.collection_id == collections.c.id)
        .scalar_subquery()
    )


def _with_size_and_owner() -> sa.Select[Any]:
    return sa.select(collections, _size().label("size"), users.c.username.label("owner")).join(
        users, users.c.id == collections.c.user_id
    )


# --- collections --------------------------------------------------------------------------------------------


def lock_owner(conn: Connection, user_id: int) -> None:
    """Serialize one member's collection creations (the per-member cap is counted, then inserted): their
    user row is locked on PostgreSQL; SQLite's write transaction is already alone."""
    conn.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update())


def count_collections(conn: Connection, user_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(collections).where(collections.c.user_id == user_id)
    return conn.execute(stmt).scalar_one()


def insert_collection(
    conn: Connection,
    user_id: int,
    slug: str,
    name: str,
    description: str | None,
    is_public: bool,
    now: datetime,
) -> int | None:
    """A new collection's id, or None when the member already has one with this slug (nothing changes)."""
    row = {
        "user_id": user_id,
        "slug": slug,
        "name": name,
        "description": description,
        "is_public": is_public,
        "created_at": now,
        "updated_at": now,
    }
    found = dialect.insert_ignore_returning(conn, collections, row, collections.c.id, ["user_id", "slug"])
    return int(found) if found is not None else None


def get_collection(conn: Connection, collection_id: int) -> Collection | None:
    row = conn.execute(_with_size_and_owner().where(collections.c.id == collection_id)).mappings().first()
    return _collection(row) if row else None


def get_by_slug(conn: Connection, user_id: int, slug: str) -> Collection | None:
    stmt = _with_size_and_owner().where(collections.c.user_id == user_id, collections.c.slug == slug)
    row = conn.execute(stmt).mappings().first()
    return _collection(row) if row else None


def list_collections(
    conn: Connection, user_id: int, *, public_only: bool = False, limit: int = 500
) -> list[Collection]:
    """The member's collections, the one changed last first."""
    stmt = _with_size_and_owner().where(collections.c.user_id == user_id)
    if public_only:
        stmt = stmt.where(collections.c.is_public.is_(True))
    stmt = stmt.order_by(collections.c.updated_at.desc(), collections.c.id.desc()).limit(limit)
    return [_collection(r) for r in conn.execute(stmt).mappings()]


def update_collection(
    conn: Connection, collection_id: int, user_id: int, values: Mapping[str, Any], now: datetime
) -> bool:
    """Change the owner's collection (`name`, `slug`, `description`, `is_public`); False when it is not
    theirs or gone. A slug another of theirs holds raises IntegrityError (the caller picks a free one)."""
    stmt = (
        sa.update(collections)
        .where(collections.c.id == collection_id, collections.c.user_id == user_id)
        .values(**values, updated_at=now)
    )
    return bool(conn.execute(stmt).rowcount)


def delete_collection(conn: Connection, collection_id: int, user_id: int) -> bool:
    """Delete the owner's collection and its items (ON DELETE CASCADE); False when there was none."""
    stmt = sa.delete(collections).where(collections.c.id == collection_id, collections.c.user_id == user_id)
    return bool(conn.execute(stmt).rowcount)


def slugs_like(conn: Connection, user_id: int, base: str) -> set[str]:
    """The member's slugs that are `base` or `base-N` (to pick the next free one)."""
    stmt = sa.select(collections.c.slug).where(
        collections.c.user_id == user_id,
        sa.or_(collections.c.slug == base, collections.c.slug.like(base + "-%")),
    )
    return set(conn.execute(stmt).scalars())


def touch(conn: Connection, collection_id: int, user_id: int, now: datetime) -> bool:
    """Lock the owner's collection row for the rest of the transaction (and mark it changed); False when it
    is not theirs. Every write to a collection's items starts here."""
    stmt = (
        sa.update(collections)
        .where(collections.c.id == collection_id, collections.c.user_id == user_id)
        .values(updated_at=now)
    )
    return bool(conn.execute(stmt).rowcount)


# --- items --------------------------------------------------------------------------------------------------


def add_item(conn: Connection, collection_id: int, arxiv_id: str, now: datetime, cap: int) -> bool:
    """Put the paper last in the collection, in one statement: its position is the largest one plus one,
    and it goes in only while the collection holds fewer than `cap` papers. False when nothing was inserted
    (already there: the primary key decides; or full). Call `touch` first in the same transaction."""
    where = collection_items.c.collection_id == collection_id
    source = (
        sa.select(
            sa.literal(collection_id, sa.Integer),
            sa.literal(arxiv_id, sa.String),
            sa.func.coalesce(sa.func.max(collection_items.c.position), -1) + 1,
            sa.literal(now, collections.c.created_at.type),
        )
        .where(where)
        .having(sa.func.count() < cap)
    )
    stmt: Any = (
        dialect.insert(conn, collection_items)
        .from_select(["collection_id", "arxiv_id", "position", "added_at"], source)
        .on_conflict_do_nothing(index_elements=["collection_id", "arxiv_id"])
        .returning(sa.literal_column("1"))
    )
    return conn.execute(stmt).first() is not None


def remove_item(conn: Connection, collection_id: int, arxiv_id: str) -> bool:
    stmt = sa.delete(collection_items).where(
        collection_items.c.collection_id == collection_id, collection_items.c.arxiv_id == arxiv_id
    )
    return bool(conn.execute(stmt).rowcount)


def set_note(conn: Connection, collection_id: int, arxiv_id: str, note: str | None) -> bool:
    stmt = (
        sa.update(collection_items)
        .where(collection_items.c.collection_id == collection_id, collection_items.c.arxiv_id == arxiv_id)
        .values(note=note)
    )
    return bool(conn.execute(stmt).rowcount)


def count_items(conn: Connection, collection_id: int) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(collection_items)
        .where(collection_items.c.collection_id == collection_id)
    )
    return conn.execute(stmt).scalar_one()


def has_item(conn: Connection, collection_id: int, arxiv_id: str) -> bool:
    stmt = sa.select(collection_items.c.position).where(
        collection_items.c.collection_id == collection_id, collection_items.c.arxiv_id == arxiv_id
    )
    return conn.execute(stmt).first() is not None


def items(conn: Connection, collection_id: int, limit: int | None = None) -> list[CollectionItem]:
    """The collection's papers in the member's order (ties, which only a crash of old code could leave,
    by when they were added)."""
    stmt = (
        sa.select(collection_items)
        .where(collection_items.c.collection_id == collection_id)
        .order_by(collection_items.c.position, collection_items.c.added_at, collection_items.c.arxiv_id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_item(r) for r in conn.execute(stmt).mappings()]


def set_positions(conn: Connection, collection_id: int, positions: Mapping[str, int]) -> None:
    """Write new positions (arxiv_id -> position) in one executemany; call `touch` first."""
    if not positions:
        return
    stmt = (
        sa.update(collection_items)
        .where(
            collection_items.c.collection_id == collection_id,
            collection_items.c.arxiv_id == sa.bindparam("aid"),
        )
        .values(position=sa.bindparam("pos"))
    )
    conn.execute(stmt, [{"aid": a, "pos": p} for a, p in positions.items()])


def upvotes_of(conn: Connection, user_id: int, limit: int) -> list[tuple[str, datetime]]:
    """The papers the member upvoted with when, the latest vote first (their implicit "Upvotes" list)."""
    stmt = (
        sa.select(votes.c.arxiv_id, votes.c.created_at)
        .where(votes.c.user_id == user_id)
        .order_by(votes.c.created_at.desc(), votes.c.arxiv_id)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in conn.execute(stmt)]


def memberships(conn: Connection, user_id: int, arxiv_id: str) -> set[int]:
    """Which of the member's collections hold the paper."""
    stmt = (
        sa.select(collection_items.c.collection_id)
        .join(collections, collections.c.id == collection_items.c.collection_id)
        .where(collections.c.user_id == user_id, collection_items.c.arxiv_id == arxiv_id)
    )
    return set(conn.execute(stmt).scalars())


def saved_ids(conn: Connection, user_id: int, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are in any of the member's collections (to draw the cards' Save buttons)."""
    out: set[str] = set()
    for s in range(0, len(ids), 500):
        stmt = (
            sa.select(collection_items.c.arxiv_id)
            .join(collections, collections.c.id == collection_items.c.collection_id)
            .where(collections.c.user_id == user_id, collection_items.c.arxiv_id.in_(ids[s : s + 500]))
            .distinct()
        )
        out.update(conn.execute(stmt).scalars())
    return out
