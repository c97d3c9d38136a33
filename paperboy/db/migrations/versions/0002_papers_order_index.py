"""index for listing all papers newest first (GET /api/papers cursor pages)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_papers_order",
        "papers",
        [sa.text("coalesce(published_at, first_seen_at) DESC"), sa.text("arxiv_id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_papers_order", table_name="papers")
