"""paper_authors: one row per (paper, author), for author pages (`/authors/{name}`)

papers.authors is a JSON list: finding one person's papers in it means reading every paper. This table holds
each distinct name of each paper with its match key (white space collapsed, case folded) and the paper's
arXiv date, indexed by (name_key, paper_date, arxiv_id): an author's papers, newest first, are one index
range. store/papers.py keeps it in step on every write; this revision fills it for the papers already stored,
a batch at a time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 2000
_MAX_KEY = 300


def _key(name: str) -> str:
    # Frozen copy of paperboy.store.authors.author_key as of this revision.
    return " ".join(name.split()).casefold()[:_MAX_KEY]


def upgrade() -> None:
    table = op.create_table(
        "paper_authors",
        sa.Column("arxiv_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("name_key", sa.String(_MAX_KEY), nullable=False),
        sa.Column("paper_date", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("arxiv_id", "position", name="pk_paper_authors"),
        sa.ForeignKeyConstraint(
            ["arxiv_id"],
            ["papers.arxiv_id"],
            name="fk_paper_authors_arxiv_id_papers",
            ondelete="CASCADE",
        ),
    )
    assert table is not None
    papers = sa.table(
        "papers",
        sa.column("arxiv_id", sa.String),
        sa.column("authors", sa.JSON),
        sa.column("published_at", sa.DateTime(timezone=True)),
        sa.column("first_seen_at", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    after = ""
    while True:
        batch = conn.execute(
            sa.select(papers.c.arxiv_id, papers.c.authors, papers.c.published_at, papers.c.first_seen_at)
            .where(papers.c.arxiv_id > after)
            .order_by(papers.c.arxiv_id)
            .limit(_BATCH)
        ).all()
        if not batch:
            break
        rows: list[dict[str, Any]] = []
        for arxiv_id, authors, published_at, first_seen_at in batch:
            seen: set[str] = set()
            for position, name in enumerate(authors or ()):
                key = _key(str(name))
                if not key or key in seen:
                    continue
                seen.add(key)
                rows.append(
                    {
                        "arxiv_id": arxiv_id,
                        "position": position,
                        "name": " ".join(str(name).split()),
                        "name_key": key,
                        "paper_date": published_at or first_seen_at,
                    }
                )
        if rows:
            conn.execute(table.insert(), rows)
        after = batch[-1][0]
    op.create_index("ix_paper_authors_name_key", "paper_authors", ["name_key", "paper_date", "arxiv_id"])


def downgrade() -> None:
    op.drop_index("ix_paper_authors_name_key", table_name="paper_authors")
    op.drop_table("paper_authors")
