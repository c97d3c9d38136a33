"""community: users, sessions, API tokens, votes, comments, authorship claims, unfeatured days

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(40), nullable=False),
        sa.Column("username_key", sa.String(40), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("fullname", sa.String(100), nullable=True),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username_key", name="uq_users_username_key"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_sessions_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "votes",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("user_id", "arxiv_id", name="pk_votes"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_votes_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_votes_arxiv_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_votes_arxiv_id", "votes", ["arxiv_id"])
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("parent_id", sa.Integer, nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        _ts("created_at"),
        _ts("edited_at", nullable=True),
        _ts("deleted_at", nullable=True),
        _ts("hidden_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_comments_arxiv_id_papers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_comments_user_id_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["comments.id"], name="fk_comments_parent_id_comments", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_comments_arxiv_id", "comments", ["arxiv_id"])
    op.create_index("ix_comments_user_id", "comments", ["user_id"])
    op.create_table(
        "claims",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("author_name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("decided_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_claims"),
        sa.UniqueConstraint("user_id", "arxiv_id", name="uq_claims_user_id_arxiv_id"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_claims_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_claims_arxiv_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_claims_arxiv_id", "claims", ["arxiv_id"])
    op.create_table(
        "unfeatured",
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        _ts("removed_at"),
        sa.Column("removed_by", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("arxiv_id", "day", name="pk_unfeatured"),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_unfeatured_arxiv_id_papers", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["removed_by"], ["users.id"], name="fk_unfeatured_removed_by_users", ondelete="SET NULL"
        ),
    )


def downgrade() -> None:
    for table in ("unfeatured", "claims", "comments", "votes", "api_tokens", "sessions", "users"):
        op.drop_table(table)
