"""featurings.organization_name (the organization's slug upstream) and featurings.discussion_id (Hugging
Face's `paper.discussionId`), so that the API answers the organization as Hugging Face does (`name` "google",
`fullname` "Google") and keeps `discussionId`

Rows stored before this revision keep their full name in `organization` and get NULL in both columns (the
API then answers the full name as `name` too, as before); the next sync of their day fills them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("featurings") as batch:
        batch.add_column(sa.Column("organization_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("discussion_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("featurings") as batch:
        batch.drop_column("discussion_id")
        batch.drop_column("organization_name")
