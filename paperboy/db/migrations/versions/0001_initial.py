"""papers, featurings, ingest cursors and runs

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("primary_category", sa.String(64), nullable=True),
        sa.Column("published_at", UTC, nullable=True),
        sa.Column("updated_at", UTC, nullable=True),
        sa.Column("comments", sa.Text, nullable=True),
        sa.Column("journal_ref", sa.Text, nullable=True),
        sa.Column("doi", sa.Text, nullable=True),
        sa.Column("license", sa.Text, nullable=True),
        sa.Column("withdrawn", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("github_repo", sa.Text, nullable=True),
        sa.Column("github_stars", sa.Integer, nullable=True),
        sa.Column("project_page", sa.Text, nullable=True),
        sa.Column("ai_summary", sa.Text, nullable=True),
        sa.Column("ai_keywords", sa.JSON, nullable=True),
        sa.Column("first_seen_at", UTC, nullable=False),
        sa.Column("changed_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("arxiv_id", name="pk_papers"),
    )
    op.create_index("ix_papers_published_at", "papers", ["published_at"])
    op.create_index("ix_papers_changed_at", "papers", ["changed_at"])

    op.create_table(
        "featurings",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("submitted_at", UTC, nullable=True),
        sa.Column("submitter_name", sa.String(200), nullable=True),
        sa.Column("submitter_fullname", sa.String(200), nullable=True),
        sa.Column("submitter_avatar_url", sa.Text, nullable=True),
        sa.Column("upvotes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("num_comments", sa.Integer, nullable=False, server_default="0"),
        sa.Column("thumbnail", sa.Text, nullable=True),
        sa.Column("organization", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_featurings"),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_featurings_arxiv_id_papers", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("arxiv_id", "day", name="uq_featurings_arxiv_id_day"),
    )
    op.create_index("ix_featurings_day", "featurings", ["day"])
    op.create_index("ix_featurings_submitter_name", "featurings", ["submitter_name"])

    op.create_table(
        "ingest_cursors",
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ingest_cursors"),
    )

    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("inserted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("featured", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_runs"),
    )
    op.create_index("ix_ingest_runs_started_at", "ingest_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("ingest_runs")
    op.drop_table("ingest_cursors")
    op.drop_table("featurings")
    op.drop_table("papers")
