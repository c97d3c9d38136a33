"""featurings.submitter_user_id: a member's submission belongs to their account, not to their name

Matched by name, a deleted member's username registered again inherited their "submitted" papers (issue 12).
Rows a member submitted before this revision are given the id of the account that holds that username now
(the best that can be known); from here on the id is written with the submission and set to NULL when the
account is deleted.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    column = sa.Column("submitter_user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot add a named constraint in place: batch mode rebuilds the table, reflecting the tables
        # it refers to, whose expression index (ix_papers_order) SQLAlchemy says it skips: it is not copied
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*expression-based index.*")
            with op.batch_alter_table("featurings") as batch:
                batch.add_column(column)
    else:
        op.add_column("featurings", column)
    op.create_index("ix_featurings_submitter_user_id", "featurings", ["submitter_user_id"])
    op.execute(
        "UPDATE featurings SET submitter_user_id = "
        "(SELECT users.id FROM users WHERE users.username = featurings.submitter_name) "
        "WHERE source = 'member' AND submitter_name IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_featurings_submitter_user_id", "featurings")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with op.batch_alter_table("featurings") as batch:
            batch.drop_column("submitter_user_id")
