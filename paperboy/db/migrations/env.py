"""Alembic environment: runs on the connection that paperboy.db.upgrade hands in."""

from alembic import context

from paperboy.db.schema import include_name, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - `alembic` CLI without paperboy; use `paperboy db upgrade`
    raise SystemExit("Run migrations with `paperboy db upgrade`.")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
