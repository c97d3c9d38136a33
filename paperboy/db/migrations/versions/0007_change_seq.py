"""change sequences: papers.change_seq and embeddings.change_seq, in commit order, for the index sync;
embeddings.paper_seq, the paper's change_seq a vector was computed from

The search indexes used to follow `changed_at` / `embedded_at`, stamped by the app before its transaction
committed: a transaction that committed after a later-stamped one had been synced was skipped for ever.
A change sequence is in commit order (SQLite: max + 1 under the one write lock; PostgreSQL: the writing
transaction's id, read only below the oldest transaction still running), see paperboy/db/dialect.py.

Existing rows are numbered in their old stamp order, so an index synced up to a stamp can continue from
the number of the last row it had seen (with an overlap: paperboy/search/indexer.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0"))
    with op.batch_alter_table("embeddings") as batch:
        batch.add_column(sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("paper_seq", sa.BigInteger, nullable=False, server_default="-1"))
    op.execute(
        """
        UPDATE papers SET change_seq = (
            SELECT n FROM (
                SELECT arxiv_id, ROW_NUMBER() OVER (ORDER BY changed_at, arxiv_id) AS n FROM papers
            ) AS numbered WHERE numbered.arxiv_id = papers.arxiv_id
        )
        """
    )
    op.execute(
        """
        UPDATE embeddings SET change_seq = (
            SELECT n FROM (
                SELECT arxiv_id, model, ROW_NUMBER() OVER (ORDER BY embedded_at, arxiv_id, model) AS n
                FROM embeddings
            ) AS numbered WHERE numbered.arxiv_id = embeddings.arxiv_id AND numbered.model = embeddings.model
        )
        """
    )
    # A vector is current when it was stored after the paper's last change (the old rule, once more).
    op.execute(
        """
        UPDATE embeddings SET paper_seq = (
            SELECT CASE WHEN embeddings.embedded_at >= papers.changed_at THEN papers.change_seq ELSE -1 END
            FROM papers WHERE papers.arxiv_id = embeddings.arxiv_id
        )
        """
    )
    op.create_index("ix_papers_change_seq", "papers", ["change_seq", "arxiv_id"])
    op.create_index("ix_embeddings_model_change_seq", "embeddings", ["model", "change_seq", "arxiv_id"])


def downgrade() -> None:
    op.drop_index("ix_embeddings_model_change_seq", table_name="embeddings")
    op.drop_index("ix_papers_change_seq", table_name="papers")
    with op.batch_alter_table("embeddings") as batch:
        batch.drop_column("paper_seq")
        batch.drop_column("change_seq")
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("change_seq")
