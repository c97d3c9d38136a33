"""Engine construction and migrations. Nothing is built at import time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Non-ASCII names stay readable in the JSON columns (and findable by a plain LIKE).
_dumps = partial(json.dumps, ensure_ascii=False)


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's own lower() folds ASCII only ("Łukasz" stays "Łukasz"); PostgreSQL's folds every letter.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Connections that background loops (index worker, scheduler, digest sender) and CLI commands in the same
# process may hold beside the web requests' own.
BACKGROUND_CONNECTIONS = 6


def pool_size_for(threads: int) -> int:
    """The pool a process needs: one connection per request thread, plus the background loops' own.

    A request holds exactly one connection for its whole life (web/deps.py) and at most `threads` requests
    hold one at a time (the rest wait for a slot without a connection), so the pool never makes anyone wait.
    """
    return threads + BACKGROUND_CONNECTIONS


def make_engine(url: str, *, pool_size: int = 5 + 10, pool_timeout: float = 30.0) -> Engine:
    """An engine for `url`; for SQLite, creates the folder and turns on WAL, foreign keys, a busy timeout.

    `pool_size` is how many connections it keeps open at most (no overflow: a pool that grows past its size
    under a burst only moves the wait elsewhere); see `pool_size_for`.
    """
    u = sa.engine.make_url(url)
    pool = {"pool_size": pool_size, "max_overflow": 0, "pool_timeout": pool_timeout}
    if u.get_backend_name() == "sqlite":
        in_memory = not u.database or u.database == ":memory:"
        if u.database and not in_memory:
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False},
            json_serializer=_dumps,
            **({} if in_memory else pool),
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, json_serializer=_dumps, **pool)


@contextmanager
def write(conn: Connection) -> Iterator[Connection]:
    """One write transaction on `conn`, which may already have read (a request's connection reads the viewer
    first): that read transaction is ended, then everything inside the block commits together or not at all.
    """
    from paperboy.db.dialect import lock_for_write

    if conn.in_transaction():
        conn.commit()
    with conn.begin():
        lock_for_write(conn)
        yield conn


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """`engine.begin()` for a writer outside a request (jobs, CLI): a connection of its own, one write
    transaction (holding SQLite's write lock from the start, see `write`)."""
    with engine.connect() as conn, write(conn):
        yield conn


MIGRATION_LOCK = 0x7061706572  # "paper": the advisory lock key migrations hold on PostgreSQL


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` with Alembic (creates it on first run).

    On PostgreSQL the migration holds a transaction-level advisory lock: several web processes and workers
    starting at once on one database migrate one after the other (the later ones find it at head), never
    side by side."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
