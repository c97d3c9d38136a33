"""embeddings: one vector per (paper, model), the source of truth the vector index is rebuilt from

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("embedded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("arxiv_id", "model", name="pk_embeddings"),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_embeddings_arxiv_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_embeddings_model_embedded_at", "embeddings", ["model", "embedded_at"])


def downgrade() -> None:
    op.drop_table("embeddings")
