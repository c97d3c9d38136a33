"""Where SQLite and PostgreSQL differ, written once: atomic upserts and the write lock.

A duplicate is decided by a constraint in one statement (`insert … on conflict`), never by a `select` first:
two requests that check at the same moment both see nothing and both insert. Both dialects' insert
constructs share the `on_conflict_do_nothing` / `on_conflict_do_update` API; `insert(conn, table)` picks
the right one for the connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

Insert = sqlite.Insert | postgresql.Insert


def is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def insert(conn: Connection, table: sa.Table) -> Insert:
    """`INSERT INTO table` in the connection's dialect, with `on_conflict_do_*` and `excluded`."""
    if is_sqlite(conn):
        return sqlite.insert(table)
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no upsert for the {conn.dialect.name} dialect")  # pragma: no cover


def insert_ignore(
    conn: Connection, table: sa.Table, values: Mapping[str, Any], keys: Sequence[str] | None = None
) -> bool:
    """Insert one row unless it collides on `keys` (any unique constraint when None); True when inserted.

    (Told by a RETURNING row, not `rowcount`: SQLAlchemy adds RETURNING of the primary key on its own for
    some tables, and then psycopg reports no rowcount.)"""
    stmt: Any = (
        insert(conn, table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=keys)
        .returning(sa.literal_column("1"))
    )
    return conn.execute(stmt).first() is not None


def insert_ignore_returning(
    conn: Connection,
    table: sa.Table,
    values: Mapping[str, Any],
    column: sa.Column[Any],
    keys: Sequence[str] | None = None,
) -> Any | None:
    """Insert one row unless it collides; the new row's `column` (its id), or None when nothing was
    inserted."""
    stmt = insert(conn, table).values(**values).on_conflict_do_nothing(index_elements=keys).returning(column)
    return conn.execute(stmt).scalar()


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """Insert `rows`, or on a collision on `keys` overwrite the `update` columns (all others when None) with
    the incoming values. One statement per call: concurrent callers never raise IntegrityError."""
    many = [dict(rows)] if isinstance(rows, Mapping) else [dict(r) for r in rows]
    if not many:
        return
    columns = update if update is not None else [c for c in many[0] if c not in keys]
    plain = insert(conn, table)
    stmt: Any
    if columns:
        stmt = plain.on_conflict_do_update(
            index_elements=list(keys), set_={c: plain.excluded[c] for c in columns}
        )
    else:
        stmt = plain.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, many)


def lock_for_write(conn: Connection) -> None:
    """Take the database's write lock now, at the start of a write transaction.

    SQLite: `BEGIN IMMEDIATE`, so that a transaction that reads and then writes holds the one write lock from
    its first read (waiting up to the busy timeout for it): every write transaction runs as if alone, and
    none fails half-way on a snapshot that another writer made stale. PostgreSQL needs nothing here: its
    rows lock as they are written and constraints decide duplicates.
    """
    if is_sqlite(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- change sequences: the order in which writes became visible ---------------------------------------------


def next_change_seq(
    conn: Connection,
    column: sa.Column[Any],
    *where: sa.ColumnElement[bool],
    also: Sequence[sa.Column[Any]] = (),
) -> Any:
    """SQL for the `change_seq` of a row written now, in commit order (what index sync follows).

    SQLite has one writer at a time, so the next number after the largest committed one is in commit order
    (`also`: more columns of the same sequence, such as the numbers of deleted rows, so a deletion never
    hands its number out again). PostgreSQL's transactions commit in any order: the writing transaction's
    id is used, and readers take only rows below `change_horizon` (every transaction below it has ended), so
    a late commit is read late, never skipped.
    """
    if is_sqlite(conn):
        top: Any = sa.select(sa.func.coalesce(sa.func.max(column), 0)).where(*where).scalar_subquery()
        for other in also:  # SQLite's max() with two arguments is the larger of the two
            top = sa.func.max(top, sa.select(sa.func.coalesce(sa.func.max(other), 0)).scalar_subquery())
        return top + 1
    return sa.cast(sa.cast(sa.func.pg_current_xact_id(), sa.Text), sa.BigInteger)


def change_horizon(conn: Connection) -> int | None:
    """Rows whose `change_seq` is below this are committed and will never be joined by others below it
    (None: no limit, SQLite). Read it before the rows it bounds."""
    if is_sqlite(conn):
        return None
    xmin = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
    return int(conn.execute(sa.select(sa.cast(sa.cast(xmin, sa.Text), sa.BigInteger))).scalar_one())
