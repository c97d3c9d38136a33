"""paper_deletions: papers deleted from the hub, for the search indexes to drop

Deleting a paper leaves nothing for the index sync to follow (it reads changed rows): the deleted ids are kept
here, each with the change sequence its row had, so SQLite's next sequence (max + 1) never falls back to a
number an index has already synced.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_deletions",
        sa.Column("arxiv_id", sa.String(64), primary_key=True),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paper_deletions")
