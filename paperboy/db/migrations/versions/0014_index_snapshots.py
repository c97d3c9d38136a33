"""index_snapshots + index_snapshot_chunks: search index snapshots every node can start from

A new web node used to rebuild both search indexes from the database (about 25 + 30 minutes at a million
papers); it now downloads the newest snapshot a worker published (the keyword index folder and the vector
file, as a tar in chunks of a few MB) and catches up from the change sequences recorded with it
(paperboy/search/snapshot.py). On PostgreSQL the chunks' bytes are stored EXTERNAL: TOASTed out of line
without a pglz attempt (what the tar holds is already compressed or is float16 vectors).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("keyword_seq", sa.BigInteger, nullable=True),
        sa.Column("vector_seq", sa.BigInteger, nullable=True),
        sa.Column("manifest", sa.JSON, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("chunks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_index_snapshots"),
    )
    op.create_table(
        "index_snapshot_chunks",
        sa.Column("snapshot_id", sa.Integer, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "n", name="pk_index_snapshot_chunks"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["index_snapshots.id"],
            name="fk_index_snapshot_chunks_snapshot_id_index_snapshots",
            ondelete="CASCADE",
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE index_snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("index_snapshot_chunks")
    op.drop_table("index_snapshots")
