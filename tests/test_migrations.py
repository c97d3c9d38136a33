"""The Alembic revisions build exactly the schema in paperboy/db/schema.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from paperboy.db import upgrade
from paperboy.db.schema import include_name, metadata


def test_migrations_match_the_schema(engine: Engine) -> None:
    with engine.connect() as conn, warnings.catch_warnings():
        # Neither Alembic nor SQLite reflection compares expression indexes (ix_papers_order) and both say so;
        # that index is checked by name below.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        opts = {"compare_type": True, "include_name": include_name}  # the job queue's tables are not ours
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
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


def _downgrade(engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from paperboy.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn, warnings.catch_warnings():
        # SQLite's batch mode rebuilds tables, reflecting papers, whose expression index it says it skips
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_0012_gives_member_submissions_to_the_account_holding_the_name(engine: Engine) -> None:
    """Revision 0012 on a database with a member's submission stored by name: it is given to the account that
    holds that name; an imported Hugging Face submitter of the same name gets nothing."""
    from paperboy.db import upgrade as upgrade_to

    _downgrade(engine, "0011")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (username, username_key, email, password_hash, is_admin, disabled,"
                " created_at) VALUES ('ada', 'ada', 'ada@example.org', 'x', false, false, '2026-08-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO papers (arxiv_id, title, abstract, authors, categories, first_seen_at,"
                " changed_at) VALUES ('2608.00001', 't', 'a', '[]', '[]', '2026-08-01', '2026-08-01')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO featurings (arxiv_id, day, source, submitter_name) VALUES"
                " ('2608.00001', '2026-08-01', 'member', 'ada'),"
                " ('2608.00001', '2026-08-02', 'huggingface', 'ada')"
            )
        )
    upgrade_to(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT source, submitter_user_id FROM featurings ORDER BY day")).all()
        ada = conn.execute(sa.text("SELECT id FROM users WHERE username = 'ada'")).scalar()
    assert [tuple(r) for r in rows] == [("member", ada), ("huggingface", None)]


def test_0010_adds_upstream_organization_slug_and_discussion_id_keeping_rows(engine: Engine) -> None:
    """Revision 0010 on a database with a featuring stored before it: the row stays, its full name too, and
    the new columns read NULL until the next sync fills them."""
    from paperboy.db import upgrade as upgrade_to

    _downgrade(engine, "0009")
    with engine.begin() as conn:
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


def test_0015_turns_the_authors_a_members_digest_followed_into_follows(engine: Engine) -> None:
    """Revision 0015 on a database whose member-linked digest follows authors (the old "Follow in my digest"):
    each name becomes one author follow that goes into the digest (spacing and case aside); an email-only
    subscription's authors stay its own."""
    from paperboy.db import upgrade as upgrade_to

    _downgrade(engine, "0014")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (username, username_key, email, password_hash, is_admin, disabled,"
                " created_at) VALUES ('ada', 'ada', 'ada@example.org', 'x', false, false, '2026-08-01')"
            )
        )
        ada = conn.execute(sa.text("SELECT id FROM users WHERE username = 'ada'")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO subscriptions (email, user_id, status, categories, authors, exclude, created_at)"
                " VALUES ('ada@example.org', :ada, 'active', '[]', :mine, '[]', '2026-08-01'),"
                " ('eve@example.org', NULL, 'active', '[]', '[\"Eve Only\"]', '[]', '2026-08-01')"
            ),
            {"ada": ada, "mine": '["Jane  Doe", "jane doe", "Bob"]'},
        )
    upgrade_to(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT user_id, kind, target_key, target_name, in_digest FROM follows ORDER BY target_key"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (ada, "author", "bob", "Bob", True),
        (ada, "author", "jane doe", "Jane Doe", True),
    ]
