"""The comments table: a paper's thread, edits, soft deletion and moderation. Bodies are stored as written
(Markdown); rendering and sanitising happen on display (`paperboy.markdown`)."""

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
    )


def insert_comment(
    conn: Connection, *, arxiv_id: str, user_id: int, parent_id: int | None, body: str, now: datetime
) -> Comment:
    """A new comment (the caller has checked the paper, the parent and the body)."""
    comment_id = conn.execute(
        sa.insert(comments)
        .values(arxiv_id=arxiv_id, user_id=user_id, parent_id=parent_id, body=body, created_at=now)
        .returning(comments.c.id)
    ).scalar_one()
    found = get_comment(conn, comment_id)
    assert found is not None
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


def update_body(conn: Connection, comment_id: int, body: str, now: datetime) -> None:
    """A new text for a comment; `edited_at` says when."""
    conn.execute(sa.update(comments).where(comments.c.id == comment_id).values(body=body, edited_at=now))


def soft_delete(conn: Connection, comment_id: int, now: datetime) -> None:
    """Deleted by its author: the text goes, the row stays (its replies keep their place)."""
    conn.execute(
        sa.update(comments)
        .where(comments.c.id == comment_id, comments.c.deleted_at.is_(None))
        .values(body="", deleted_at=now)
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
