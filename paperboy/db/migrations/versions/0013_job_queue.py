"""The job queue's tables on PostgreSQL (procrastinate): what `paperboy worker` takes its jobs from

Several workers and web processes share one PostgreSQL; anything that must happen once per deployment (a
scheduled ingest slot, an embedding batch, a digest shard, index upkeep) is a job in procrastinate's tables,
taken with `SELECT … FOR UPDATE SKIP LOCKED`. The schema is procrastinate's own `schema.sql`, from the
installed package (the `postgres` extra pins its major version); procrastinate's later migrations are applied
by later revisions here. SQLite has no queue: `paperboy serve` runs everything in one process.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)


def schema_sql() -> str:
    """procrastinate's schema, read from the package without importing it (importing needs libpq)."""
    spec = importlib.util.find_spec("procrastinate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "PostgreSQL needs the job queue library: pip install 'paperboy[postgres]' (procrastinate), "
            "then run `paperboy db upgrade` again"
        )
    return (Path(next(iter(spec.submodule_search_locations))) / "sql" / "schema.sql").read_text()


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    exists = bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar()
    if not exists:
        # straight to the driver, without parameters: the schema's PL/pgSQL holds `%` that a parameter
        # style would read as placeholders
        cursor = bind.connection.cursor()
        try:
            cursor.execute(schema_sql())
        finally:
            cursor.close()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in TABLES:
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    # the types and functions procrastinate's schema made
    rows = bind.exec_driver_sql(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%%'"
    ).fetchall()
    for (signature,) in rows:
        bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
    types = bind.exec_driver_sql(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate%%' AND t.typtype IN ('e', 'c')"
    ).fetchall()
    for (name,) in types:
        bind.exec_driver_sql(f"DROP TYPE IF EXISTS {name} CASCADE")
