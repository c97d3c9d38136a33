"""follows, collections, collection_items, feed_feedback: a member's own feed (issue 14)

What a member follows (authors, members, organizations; each may go into their digest), their named lists of
papers with a note per paper, and what they told the "For you" feed ("Not interested", "Less like this").
The authors a member's digest already followed (subscriptions.authors, from the author pages' old "Follow in
my digest") become author follows, so that /following and the feed know them too. An index on featurings by
(lower(organization_name), day) finds an organization's papers by its slug.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target_key", sa.String(300), nullable=False),
        sa.Column("target_name", sa.Text, nullable=False),
        sa.Column("target_user_id", sa.Integer, nullable=True),
        sa.Column("in_digest", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_follows"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_follows_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["target_user_id"], ["users.id"], name="fk_follows_target_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("user_id", "kind", "target_key", name="uq_follows_user_id_kind_target_key"),
    )
    op.create_index("ix_follows_kind_target_key", "follows", ["kind", "target_key"])
    op.create_index("ix_follows_target_user_id", "follows", ["target_user_id"])
    op.create_index(
        "ix_featurings_org_lower_day", "featurings", [sa.text("lower(organization_name)"), sa.text("day")]
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("slug", sa.String(80), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_collections"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_collections_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("user_id", "slug", name="uq_collections_user_id_slug"),
    )
    op.create_table(
        "collection_items",
        sa.Column("collection_id", sa.Integer, nullable=False),
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "arxiv_id", name="pk_collection_items"),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name="fk_collection_items_collection_id_collections",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_collection_items_arxiv_id_papers", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_collection_items_collection_id_position", "collection_items", ["collection_id", "position"]
    )
    op.create_index("ix_collection_items_arxiv_id", "collection_items", ["arxiv_id"])
    op.create_table(
        "feed_feedback",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "arxiv_id", name="pk_feed_feedback"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_feed_feedback_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["arxiv_id"], ["papers.arxiv_id"], name="fk_feed_feedback_arxiv_id_papers", ondelete="CASCADE"
        ),
    )
    _follow_digest_authors()


def _follow_digest_authors() -> None:
    """Each author a member's digest follows becomes an author follow that goes into the digest."""
    bind = op.get_bind()
    subscriptions = sa.table("subscriptions", sa.column("user_id", sa.Integer), sa.column("authors", sa.JSON))
    follows = sa.table(
        "follows",
        sa.column("user_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("target_key", sa.String),
        sa.column("target_name", sa.Text),
        sa.column("in_digest", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    stamp = now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now
    rows = []
    for user_id, authors in bind.execute(
        sa.select(subscriptions.c.user_id, subscriptions.c.authors).where(
            subscriptions.c.user_id.is_not(None)
        )
    ):
        seen: set[str] = set()
        for name in authors or []:
            text = " ".join(str(name).split())
            key = text.casefold()[:300]
            if text and key not in seen:
                seen.add(key)
                rows.append(
                    {
                        "user_id": user_id,
                        "kind": "author",
                        "target_key": key,
                        "target_name": text,
                        "in_digest": True,
                        "created_at": stamp,
                    }
                )
    if rows:
        bind.execute(sa.insert(follows), rows)


def downgrade() -> None:
    op.drop_table("feed_feedback")
    op.drop_table("collection_items")
    op.drop_table("collections")
    op.drop_index("ix_featurings_org_lower_day", "featurings")
    op.drop_index("ix_follows_target_user_id", "follows")
    op.drop_index("ix_follows_kind_target_key", "follows")
    op.drop_table("follows")
