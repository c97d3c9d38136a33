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
        at = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert at == _head()


def _head() -> str:
    """The newest revision in paperboy/db/migrations (each engineer's new revision moves it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from paperboy.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_0010_adds_upstream_organization_slug_and_discussion_id_keeping_rows(engine: Engine) -> None:
    """Revision 0010 on a database with a featuring stored before it: the row stays, its full name too, and
    the new columns read NULL until the next sync fills them."""
    from paperboy.db import upgrade as upgrade_to

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('0009')"))
        conn.execute(sa.text("ALTER TABLE featurings DROP COLUMN organization_name"))
        conn.execute(sa.text("ALTER TABLE featurings DROP COLUMN discussion_id"))
        conn.execute(
            sa.text(
                "INSERT INTO papers (arxiv_id, title, abstract, authors, categories, first_seen_at,"
                " changed_at) VALUES ('2608.00001', 't', 'a', '[]', '[]', '2026-08-01', '2026-08-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO featurings (arxiv_id, day, source, organization)"
                " VALUES ('2608.00001', '2026-08-01', 'huggingface', 'Google')"
            )
        )
    upgrade_to(engine)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT organization, organization_name, discussion_id FROM featurings")
        ).one()
    assert tuple(row) == ("Google", None, None)
