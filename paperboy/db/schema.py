"""The whole schema, in one file. Alembic revisions under migrations/ create exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps them naive: we store UTC, re-attach it)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


QUEUE_PREFIX = "procrastinate_"  # the job queue's own tables (migration 0013): procrastinate's, not ours


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's filter: the tables and indexes of the job queue are procrastinate's schema, not this one's
    (compared and migrated by it, not by autogenerate)."""
    return not (name or "").startswith(QUEUE_PREFIX) and not (
        type_ == "index"
        and isinstance(parent_names, dict)
        and str(parent_names.get("table_name") or "").startswith(QUEUE_PREFIX)
    )


papers = sa.Table(
    "papers",
    metadata,
    sa.Column("arxiv_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("abstract", sa.Text, nullable=False),
    sa.Column("authors", sa.JSON, nullable=False),  # list of names, in order
    sa.Column("categories", sa.JSON, nullable=False),  # list, primary first
    sa.Column("primary_category", sa.String(64), nullable=True),
    sa.Column("published_at", UTCDateTime(), nullable=True),  # first version
    sa.Column("updated_at", UTCDateTime(), nullable=True),  # newest version
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
    sa.Column("first_seen_at", UTCDateTime(), nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
    # Migration 0007: in commit order (db/dialect.py change_seq), what the keyword index follows.
    sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0"),
)
sa.Index("ix_papers_published_at", papers.c.published_at)
sa.Index("ix_papers_changed_at", papers.c.changed_at)
sa.Index("ix_papers_change_seq", papers.c.change_seq, papers.c.arxiv_id)
# Migration 0002: the keyset order of GET /api/papers.
sa.Index(
    "ix_papers_order",
    sa.func.coalesce(papers.c.published_at, papers.c.first_seen_at).desc(),
    papers.c.arxiv_id.desc(),
)

featurings = sa.Table(
    "featurings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("submitted_at", UTCDateTime(), nullable=True),
    sa.Column("submitter_name", sa.String(200), nullable=True),
    sa.Column("submitter_fullname", sa.String(200), nullable=True),
    sa.Column("submitter_avatar_url", sa.Text, nullable=True),
    sa.Column("upvotes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("num_comments", sa.Integer, nullable=False, server_default="0"),
    sa.Column("thumbnail", sa.Text, nullable=True),
    sa.Column("organization", sa.String(200), nullable=True),  # full name ("Google")
    sa.Column("organization_name", sa.String(200), nullable=True),  # slug ("google"); migration 0010
    sa.Column("discussion_id", sa.String(64), nullable=True),  # Hugging Face's discussionId; migration 0010
    # the member who submitted it (source "member"), by id: a name registered again inherits nothing; 0012
    sa.Column("submitter_user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.UniqueConstraint("arxiv_id", "day", name="uq_featurings_arxiv_id_day"),
)
sa.Index("ix_featurings_day", featurings.c.day)
sa.Index("ix_featurings_submitter_name", featurings.c.submitter_name)
sa.Index("ix_featurings_submitter_user_id", featurings.c.submitter_user_id)

# Migration 0009: one row per (paper, author), written with the paper (store/authors.py), so that an author's
# papers are an index range, newest first (`/authors/{name}`), never a scan of every paper's JSON list.
paper_authors = sa.Table(
    "paper_authors",
    metadata,
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("position", sa.Integer, primary_key=True),  # 0 = first author
    sa.Column("name", sa.Text, nullable=False),  # as the paper spells it
    sa.Column("name_key", sa.String(300), nullable=False),  # spaces collapsed, case-folded (author_key)
    sa.Column("paper_date", UTCDateTime(), nullable=False),  # the paper's arXiv date (else first seen)
)
sa.Index(
    "ix_paper_authors_name_key",
    paper_authors.c.name_key,
    paper_authors.c.paper_date,
    paper_authors.c.arxiv_id,
)

ingest_cursors = sa.Table(
    "ingest_cursors",
    metadata,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # running | ok | failed
    sa.Column("inserted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("featured", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
)
sa.Index("ix_ingest_runs_started_at", ingest_runs.c.started_at)


embeddings = sa.Table(
    "embeddings",
    metadata,
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),  # float32, little-endian, L2-normalised
    sa.Column("text_hash", sa.String(64), nullable=False),  # of the text embedded: skip re-embedding the same
    sa.Column("embedded_at", UTCDateTime(), nullable=False),
    # Migration 0007: in commit order, what the vector index follows; and the paper's change_seq the vector
    # was computed from (the vector is stale when the paper's differs).
    sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("paper_seq", sa.BigInteger, nullable=False, server_default="-1"),
)
sa.Index("ix_embeddings_model_embedded_at", embeddings.c.model, embeddings.c.embedded_at)
sa.Index("ix_embeddings_model_change_seq", embeddings.c.model, embeddings.c.change_seq, embeddings.c.arxiv_id)


# Migration 0004: members and what they do (issue 4).
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(40), nullable=False),  # as typed; unique case-insensitively (key)
    sa.Column("username_key", sa.String(40), nullable=False, unique=True),  # lower-case
    sa.Column("email", sa.String(254), nullable=False, unique=True),  # lower-cased
    sa.Column("password_hash", sa.Text, nullable=False),  # argon2id, PHC string
    sa.Column("fullname", sa.String(100), nullable=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 of the cookie's value
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)
sa.Index("ix_sessions_user_id", sessions.c.user_id)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the token
    sa.Column("prefix", sa.String(16), nullable=False),  # shown in lists so a member can tell tokens apart
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
)
sa.Index("ix_api_tokens_user_id", api_tokens.c.user_id)

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
sa.Index("ix_votes_arxiv_id", votes.c.arxiv_id)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("comments.id", ondelete="CASCADE"), nullable=True),
    sa.Column("body", sa.Text, nullable=False),  # Markdown as written
    # rendered and sanitised once, when written (migration 0011); NULL or another renderer's
    # version (paperboy.markdown.VERSION) is rendered when shown (a view stores nothing) and stored
    # by `paperboy serve` at start (serve.start_comment_html)
    sa.Column("body_html", sa.Text, nullable=True),
    sa.Column("html_version", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("edited_at", UTCDateTime(), nullable=True),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),  # by its author (or the account's deletion)
    sa.Column("hidden_at", UTCDateTime(), nullable=True),  # by an admin
)
sa.Index("ix_comments_arxiv_id", comments.c.arxiv_id)
sa.Index("ix_comments_user_id", comments.c.user_id)

claims = sa.Table(
    "claims",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "author_name", sa.Text, nullable=False
    ),  # which of the paper's authors the member says they are
    sa.Column("status", sa.String(16), nullable=False),  # pending | approved | rejected
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("decided_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("user_id", "arxiv_id", name="uq_claims_user_id_arxiv_id"),
)
sa.Index("ix_claims_arxiv_id", claims.c.arxiv_id)

# An admin took a paper off a day's list: the featuring row is deleted and this keeps ingest from bringing it
# back on the next sync of that day.
unfeatured = sa.Table(
    "unfeatured",
    metadata,
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("removed_at", UTCDateTime(), nullable=False),
    sa.Column("removed_by", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
)


# Migration 0005: email digests (issue 5).
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),  # lower-cased
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True, unique=True
    ),
    sa.Column("status", sa.String(16), nullable=False),  # pending | active | unsubscribed
    sa.Column("cadence", sa.String(8), nullable=False, server_default="daily"),  # daily (weekdays) | weekly
    sa.Column("send_hour", sa.Integer, nullable=False, server_default="8"),  # local hour, 0-23
    sa.Column("weekly_day", sa.Integer, nullable=False, server_default="0"),  # 0 = Monday
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),  # IANA name
    sa.Column("max_papers", sa.Integer, nullable=False, server_default="10"),
    sa.Column("categories", sa.JSON, nullable=False),  # arXiv categories or archives to follow
    sa.Column("authors", sa.JSON, nullable=False),  # author names to follow
    sa.Column("exclude", sa.JSON, nullable=False),  # words or phrases: papers with them are left out
    sa.Column(
        "token_version", sa.Integer, nullable=False, server_default="1"
    ),  # bump: old links stop working
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("confirmed_at", UTCDateTime(), nullable=True),
    sa.Column("unsubscribed_at", UTCDateTime(), nullable=True),
)

topics = sa.Table(
    "topics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "subscription_id", sa.Integer, sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("query", sa.Text, nullable=False),  # a search as typed ("speculative decoding -medical")
    sa.Column("source", sa.String(16), nullable=False),  # topic | search (saved from a search page)
    sa.Column("filters", sa.JSON, nullable=True),  # a saved search's category filter
    sa.Column("vector", sa.LargeBinary, nullable=True),  # the query's embedding, made when it is saved
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("subscription_id", "query", name="uq_topics_subscription_id_query"),
)

confirmations = sa.Table(
    "confirmations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "subscription_id", sa.Integer, sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the link's token
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),  # single use
    sa.Column(
        "payload", sa.JSON, nullable=True
    ),  # what confirming adds, e.g. {"topic": "...", "categories": []}
)
sa.Index("ix_confirmations_subscription_id", confirmations.c.subscription_id)

digest_runs = sa.Table(
    "digest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "subscription_id", sa.Integer, sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("period", sa.String(32), nullable=False),  # "day:2026-11-27" | "week:2026-W48" (local calendar)
    sa.Column("planned_at", UTCDateTime(), nullable=False),
    sa.Column("papers", sa.Integer, nullable=False),  # 0: nothing to send, no outbox row
    sa.UniqueConstraint("subscription_id", "period", name="uq_digest_runs_subscription_id_period"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # digest | confirm
    sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("digest_runs.id", ondelete="CASCADE"), nullable=True, unique=True
    ),
    sa.Column(
        "subscription_id", sa.Integer, sa.ForeignKey("subscriptions.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("to_addr", sa.String(254), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False, unique=True),  # stable: the same on a re-send
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),  # List-Unsubscribe, List-Id, ...
    sa.Column("text_body", sa.Text, nullable=False),
    sa.Column("html_body", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sending | sent | failed | cancelled
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),  # when a sender took it (stale: it crashed)
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
sa.Index("ix_outbox_status_next_attempt_at", outbox.c.status, outbox.c.next_attempt_at)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email", sa.String(254), primary_key=True),  # lower-cased; never mailed again
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# One row per background loop of `paperboy serve` (index worker, each sync job, digests): written by the loop,
# read by `paperboy index status`, /admin and /readyz (which may run in other processes).
background_status = sa.Table(
    "background_status",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),  # index | huggingface | arxiv:cs.CL | digests
    sa.Column("last_success_at", UTCDateTime(), nullable=True),
    sa.Column("last_error_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),  # consecutive, 0 after a success
    sa.Column("backlog", sa.Integer, nullable=True),  # work waiting (papers to index, mails due); None: n/a
    sa.Column("detail", sa.JSON, nullable=True),  # what the last success reported (backlog parts, counts)
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)


# Migration 0008: papers deleted from the hub (the bundled demo papers, once real data arrives). The search
# indexes read this to drop them; `change_seq` is the deleted row's, so that SQLite's next change sequence
# stays above every number an index has already synced.
paper_deletions = sa.Table(
    "paper_deletions",
    metadata,
    sa.Column("arxiv_id", sa.String(64), primary_key=True),
    sa.Column("change_seq", sa.BigInteger, nullable=False),
    sa.Column("deleted_at", UTCDateTime(), nullable=False),
)


# Migration 0014: search index snapshots shared through the database (search/snapshot.py). A node with an
# empty disk downloads the newest snapshot instead of rebuilding both indexes from the papers and vectors,
# then catches up from the change sequences the snapshot was synced to. The content is a tar (the keyword
# index folder, the vector file and its sidecar, a manifest) in chunks of a few MB, each written in its own
# short transaction; `completed_at` is set, in one transaction with the pruning of older snapshots, once
# every chunk is in: a snapshot without it is still being written (or its writer died) and is never read.
index_snapshots = sa.Table(
    "index_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=True),  # the vector index's model; None: keyword only
    # the change sequences the indexes were synced to (papers.change_seq, embeddings.change_seq): catch-up
    # starts after them; None where a part is absent (or was saved before change sequences)
    sa.Column("keyword_seq", sa.BigInteger, nullable=True),
    sa.Column("vector_seq", sa.BigInteger, nullable=True),
    sa.Column("manifest", sa.JSON, nullable=False),  # format, what the tar holds, counts, schema versions
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),  # of the tar
    sa.Column("chunks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sha256", sa.String(64), nullable=True),  # of the tar; set with completed_at
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),  # None: still being written, never read
)

index_snapshot_chunks = sa.Table(
    "index_snapshot_chunks",
    metadata,
    sa.Column(
        "snapshot_id",
        sa.Integer,
        sa.ForeignKey("index_snapshots.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("n", sa.Integer, primary_key=True),  # 0, 1, 2, … in the order of the tar's bytes
    sa.Column("data", sa.LargeBinary, nullable=False),  # PostgreSQL: storage EXTERNAL (no pglz attempt)
)


# Migration 0015: a member's own feed (issue 14). What they follow (authors, members, organizations), their
# collections of papers, and what they told the "For you" feed about a paper (not interested, less like this).
follows = sa.Table(
    "follows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # author | member | org
    # author: the name's key (spaces collapsed, case-folded, as paper_authors.name_key); member: str(user id);
    # org: the organization's slug (featurings.organization_name), lower-cased
    sa.Column("target_key", sa.String(300), nullable=False),
    sa.Column("target_name", sa.Text, nullable=False),  # as shown: the author's name as followed, a username
    # a followed member's account: the follow goes with it when it is deleted
    sa.Column("target_user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    sa.Column(
        "in_digest", sa.Boolean, nullable=False, server_default=sa.true()
    ),  # "New from …" in the digest
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("user_id", "kind", "target_key", name="uq_follows_user_id_kind_target_key"),
)
sa.Index("ix_follows_kind_target_key", follows.c.kind, follows.c.target_key)
# an organization's papers (/orgs/{slug}, followed organizations in For you and the digest) by its slug
sa.Index("ix_featurings_org_lower_day", sa.func.lower(featurings.c.organization_name), featurings.c.day)
sa.Index("ix_follows_target_user_id", follows.c.target_user_id)

collections = sa.Table(
    "collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "slug", sa.String(80), nullable=False
    ),  # in the public URL /u/{name}/c/{slug}; unique per member
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("user_id", "slug", name="uq_collections_user_id_slug"),
)

collection_items = sa.Table(
    "collection_items",
    metadata,
    sa.Column(
        "collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("position", sa.Integer, nullable=False),  # 0 first; the member's order
    sa.Column("note", sa.Text, nullable=True),  # the member's note on this paper, plain text
    sa.Column("added_at", UTCDateTime(), nullable=False),
)
sa.Index(
    "ix_collection_items_collection_id_position",
    collection_items.c.collection_id,
    collection_items.c.position,
)
sa.Index("ix_collection_items_arxiv_id", collection_items.c.arxiv_id)

feed_feedback = sa.Table(
    "feed_feedback",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "arxiv_id", sa.String(64), sa.ForeignKey("papers.arxiv_id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("kind", sa.String(8), nullable=False),  # hide ("Not interested") | less ("Less like this")
    sa.Column("created_at", UTCDateTime(), nullable=False),
)
