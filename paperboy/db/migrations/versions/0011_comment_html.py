"""comments.body_html and comments.html_version: a comment is rendered once, when it is written, and stored

Rendering a member's Markdown on every view let one member make every reader of a page pay for it
(issue 12). Rows stored before this revision get NULL in both columns: they are rendered on first view and
stored then, as are rows whose `html_version` is older than the renderer's (`paperboy.markdown.VERSION`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("comments") as batch:
        batch.add_column(sa.Column("body_html", sa.Text, nullable=True))
        batch.add_column(sa.Column("html_version", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("comments") as batch:
        batch.drop_column("html_version")
        batch.drop_column("body_html")
