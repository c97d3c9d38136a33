"""digests: subscriptions, topics, confirmations, digest runs, the outbox, suppressed addresses

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk_subscription(table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["subscription_id"],
        ["subscriptions.id"],
        name=f"fk_{table}_subscription_id_subscriptions",
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cadence", sa.String(8), nullable=False, server_default="daily"),
        sa.Column("send_hour", sa.Integer, nullable=False, server_default="8"),
        sa.Column("weekly_day", sa.Integer, nullable=False, server_default="0"),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("max_papers", sa.Integer, nullable=False, server_default="10"),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("authors", sa.JSON, nullable=False),
        sa.Column("exclude", sa.JSON, nullable=False),
        sa.Column("token_version", sa.Integer, nullable=False, server_default="1"),
        _ts("created_at"),
        _ts("confirmed_at", nullable=True),
        _ts("unsubscribed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.UniqueConstraint("email", name="uq_subscriptions_email"),
        sa.UniqueConstraint("user_id", name="uq_subscriptions_user_id"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_subscriptions_user_id_users", ondelete="SET NULL"
        ),
    )
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.Integer, nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("filters", sa.JSON, nullable=True),
        sa.Column("vector", sa.LargeBinary, nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_topics"),
        sa.UniqueConstraint("subscription_id", "query", name="uq_topics_subscription_id_query"),
        _fk_subscription("topics", "CASCADE"),
    )
    op.create_table(
        "confirmations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.Column("payload", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_confirmations"),
        sa.UniqueConstraint("token_hash", name="uq_confirmations_token_hash"),
        _fk_subscription("confirmations", "CASCADE"),
    )
    op.create_index("ix_confirmations_subscription_id", "confirmations", ["subscription_id"])
    op.create_table(
        "digest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.Integer, nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        _ts("planned_at"),
        sa.Column("papers", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_digest_runs"),
        sa.UniqueConstraint("subscription_id", "period", name="uq_digest_runs_subscription_id_period"),
        _fk_subscription("digest_runs", "CASCADE"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("subscription_id", sa.Integer, nullable=True),
        sa.Column("to_addr", sa.String(254), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("text_body", sa.Text, nullable=False),
        sa.Column("html_body", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _ts("next_attempt_at"),
        _ts("claimed_at", nullable=True),
        _ts("sent_at", nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("run_id", name="uq_outbox_run_id"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["digest_runs.id"], name="fk_outbox_run_id_digest_runs", ondelete="CASCADE"
        ),
        _fk_subscription("outbox", "SET NULL"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "suppressions",
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("email", name="pk_suppressions"),
    )


def downgrade() -> None:
    for table in ("suppressions", "outbox", "digest_runs", "confirmations", "topics", "subscriptions"):
        op.drop_table(table)
