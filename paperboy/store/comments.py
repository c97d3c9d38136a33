"""The comments table: a paper's thread, edits, soft deletion and moderation. Bodies are stored as written
(Markdown) beside their sanitised HTML, rendered when written (`paperboy.markdown`) with the renderer's
version, so that a view reads the HTML instead of rendering it again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db.schema import comments, users
from paperboy.models import Comment

_COLUMNS = (
    comments.c.id,
    comments.c.arxiv_id,
    comments.c.user_id,
    users.c.username,
    users.c.fullname,
    comments.c.parent_id,
    comments.c.body,
    comments.c.body_html,
    comments.c.html_version,
    comments.c.created_at,
    comments.c.edited_at,
    comments.c.deleted_at,
    comments.c.hidden_at,
)


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS).select_from(comments.outerjoin(users, users.c.id == comments.c.user_id))


def _comment(row: RowMapping) -> Comment:
    return Comment(
        id=row["id"],
        arxiv_id=row["arxiv_id"],
        user_id=row["user_id"],
        username=row["username"],
        parent_id=row["parent_id"],
        body=row["body"],
        created_at=row["created_at"],
        edited_at=row["edited_at"],
        deleted_at=row["deleted_at"],
        hidden_at=row["hidden_at"],
        author_fullname=row["fullname"],
        body_html=row["body_html"],
        html_version=row["html_version"],
    )


def insert_comment(
    conn: Connection,
    *,
    arxiv_id: str,
    user_id: int,
    parent_id: int | None,
    body: str,
    html: str,
    html_version: int,
    now: datetime,
) -> Comment:
    """A new comment (the caller has checked the paper, the parent and the body, and rendered it)."""
    comment_id = conn.execute(
        sa.insert(comments)
        .values(
            arxiv_id=arxiv_id,
            user_id=user_id,
            parent_id=parent_id,
            body=body,
            body_html=html,
            html_version=html_version,
            created_at=now,
        )
        .returning(comments.c.id)
    ).scalar_one()
    found = get_comment(conn, comment_id)
    assert found is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return found


def get_comment(conn: Connection, comment_id: int) -> Comment | None:
    row = conn.execute(_select().where(comments.c.id == comment_id)).mappings().first()
    return _comment(row) if row else None


def thread_comments(conn: Connection, arxiv_id: str) -> list[Comment]:
    """Every comment on a paper, deleted and hidden ones included, oldest first."""
    stmt = _select().where(comments.c.arxiv_id == arxiv_id).order_by(comments.c.created_at, comments.c.id)
    return [_comment(r) for r in conn.execute(stmt).mappings()]


def has_replies(conn: Connection, comment_id: int) -> bool:
    stmt = sa.select(comments.c.id).where(comments.c.parent_id == comment_id).limit(1)
    return conn.execute(stmt).first() is not None


def update_body(
    conn: Connection, comment_id: int, body: str, html: str, html_version: int, now: datetime
) -> None:
    """A new text for a comment, with its HTML; `edited_at` says when."""
    conn.execute(
        sa.update(comments)
        .where(comments.c.id == comment_id)
        .values(body=body, body_html=html, html_version=html_version, edited_at=now)
    )


def stale_html(conn: Connection, version: int, after_id: int, limit: int) -> list[tuple[int, str]]:
    """(id, body) of comments whose HTML is missing or from a renderer older than `version`, by id from
    `after_id` on (deleted ones have nothing to show)."""
    stmt = (
        sa.select(comments.c.id, comments.c.body)
        .where(
            comments.c.id > after_id,
            comments.c.deleted_at.is_(None),
            sa.or_(comments.c.html_version.is_(None), comments.c.html_version < version),
        )
        .order_by(comments.c.id)
        .limit(limit)
    )
    return [(row.id, row.body) for row in conn.execute(stmt)]


def store_html(conn: Connection, comment_id: int, body: str, html: str, html_version: int) -> bool:
    """Store the HTML rendered from `body`, unless the text changed since it was read or a newer renderer
    has stored its own; False then."""
    result = conn.execute(
        sa.update(comments)
        .where(
            comments.c.id == comment_id,
            comments.c.body == body,
            sa.or_(comments.c.html_version.is_(None), comments.c.html_version < html_version),
        )
        .values(body_html=html, html_version=html_version)
    )
    return bool(result.rowcount)


def soft_delete(conn: Connection, comment_id: int, now: datetime) -> None:
    """Deleted by its author: the text goes (and its HTML), the row stays (its replies keep their place)."""
    conn.execute(
        sa.update(comments)
        .where(comments.c.id == comment_id, comments.c.deleted_at.is_(None))
        .values(body="", body_html=None, html_version=None, deleted_at=now)
    )


def set_hidden(conn: Connection, comment_id: int, hidden: bool, now: datetime) -> bool:
    """Hide a comment from everyone but admins (or show it again); False when there is no such comment."""
    result = conn.execute(
        sa.update(comments)
        .where(comments.c.id == comment_id)
        .values(hidden_at=sa.func.coalesce(comments.c.hidden_at, now) if hidden else None)
    )
    return bool(result.rowcount)


def recent_comments(conn: Connection, limit: int = 50, *, include_deleted: bool = False) -> list[Comment]:
    """The newest comments on the whole hub, hidden ones included (for moderation), newest first."""
    stmt = _select().order_by(comments.c.created_at.desc(), comments.c.id.desc()).limit(limit)
    if not include_deleted:
        stmt = stmt.where(comments.c.deleted_at.is_(None))
    return [_comment(r) for r in conn.execute(stmt).mappings()]


def comments_by_user(conn: Connection, user_id: int, limit: int = 50) -> list[Comment]:
    """A member's comments that anyone can see (not deleted, not hidden), newest first (profile pages)."""
    stmt = (
        _select()
        .where(
            comments.c.user_id == user_id,
            comments.c.deleted_at.is_(None),
            comments.c.hidden_at.is_(None),
        )
        .order_by(comments.c.created_at.desc(), comments.c.id.desc())
        .limit(limit)
    )
    return [_comment(r) for r in conn.execute(stmt).mappings()]


def count_visible(conn: Connection, arxiv_id: str) -> int:
    """Comments on a paper that anyone can see (the same count `papers.with_engagement` adds)."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(comments)
        .where(
            comments.c.arxiv_id == arxiv_id,
            comments.c.deleted_at.is_(None),
            comments.c.hidden_at.is_(None),
        )
    )
    return conn.execute(stmt).scalar_one()
