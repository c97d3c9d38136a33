"""The Alembic revisions build exactly the schema in paperboy/db/schema.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from paperboy.db import upgrade
from paperboy.db.schema import metadata


def test_migrations_match_the_schema(engine: Engine) -> None:
    with engine.connect() as conn, warnings.catch_warnings():
        # Neither Alembic nor SQLite reflection compares expression indexes (ix_papers_order) and both say so;
        # that index is checked by name below.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        catalog = (
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'papers'"
            if engine.dialect.name == "sqlite"
            else "SELECT indexname FROM pg_indexes WHERE tablename = 'papers'"
        )
        names = set(conn.execute(sa.text(catalog)).scalars())
    assert diff == []
    assert {"ix_papers_order", "ix_papers_published_at", "ix_papers_changed_at"} <= names


def test_upgrade_is_repeatable(engine: Engine) -> None:
    upgrade(engine)  # already at head: a no-op, not an error
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0007"
