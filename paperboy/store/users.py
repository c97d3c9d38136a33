"""The users, sessions and api_tokens tables. Secrets arrive here already hashed; nothing here hashes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db import dialect
from paperboy.db.schema import api_tokens, claims, comments, sessions, users, votes
from paperboy.models import ApiToken, User


def _user(row: RowMapping) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        created_at=row["created_at"],
        fullname=row["fullname"],
        is_admin=bool(row["is_admin"]),
        disabled=bool(row["disabled"]),
    )


_USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.email,
    users.c.created_at,
    users.c.fullname,
    users.c.is_admin,
    users.c.disabled,
)


def count_users(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()


def insert_user(
    conn: Connection, *, username: str, email: str, password_hash: str, is_admin: bool, now: datetime
) -> User | None:
    """A new member, or None when the username or the email is taken (nothing is inserted). One statement:
    two sign-ups with the same name at the same moment make one account and raise nothing."""
    row = {
        "username": username,
        "username_key": username.lower(),
        "email": email,
        "password_hash": password_hash,
        "is_admin": is_admin,
        "created_at": now,
    }
    user_id = dialect.insert_ignore_returning(conn, users, row, users.c.id)
    return User(user_id, username, email, now, is_admin=is_admin) if user_id is not None else None


def username_taken(conn: Connection, username: str) -> bool:
    stmt = sa.select(users.c.id).where(users.c.username_key == username.lower())
    return conn.execute(stmt).first() is not None


def email_taken(conn: Connection, email: str) -> bool:
    return conn.execute(sa.select(users.c.id).where(users.c.email == email)).first() is not None


def get_user(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.id == user_id)).mappings().first()
    return _user(row) if row else None


def get_user_by_name(conn: Connection, username: str) -> User | None:
    stmt = sa.select(*_USER_COLUMNS).where(users.c.username_key == username.lower())
    row = conn.execute(stmt).mappings().first()
    return _user(row) if row else None


def credentials(conn: Connection, login: str) -> tuple[User, str] | None:
    """The member a sign-in names (by username, or by email when it holds an @) and their password hash."""
    where = users.c.email == login.lower() if "@" in login else users.c.username_key == login.lower()
    row = conn.execute(sa.select(*_USER_COLUMNS, users.c.password_hash).where(where)).mappings().first()
    return (_user(row), row["password_hash"]) if row else None


def password_hash(conn: Connection, user_id: int) -> str | None:
    return conn.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).scalar_one_or_none()


def set_password_hash(conn: Connection, user_id: int, new_hash: str) -> None:
    conn.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=new_hash))


def list_users(conn: Connection, limit: int = 500) -> list[User]:
    rows = conn.execute(sa.select(*_USER_COLUMNS).order_by(users.c.id).limit(limit)).mappings()
    return [_user(r) for r in rows]


def set_disabled(conn: Connection, user_id: int, disabled: bool) -> bool:
    """Disable (or re-enable) a member; a disabled member's sessions end here too. False if no such member."""
    found = conn.execute(sa.update(users).where(users.c.id == user_id).values(disabled=disabled)).rowcount
    if disabled:
        conn.execute(sa.delete(sessions).where(sessions.c.user_id == user_id))
    return bool(found)


def set_admin(conn: Connection, user_id: int, is_admin: bool) -> None:
    conn.execute(sa.update(users).where(users.c.id == user_id).values(is_admin=is_admin))


def delete_user(conn: Connection, user_id: int, now: datetime) -> None:
    """Remove a member and what is theirs alone (sessions, tokens, votes, claims). Their comments stay in
    their threads as "[deleted]" with the text removed, so replies keep their context."""
    conn.execute(
        sa.update(comments)
        .where(comments.c.user_id == user_id)
        .values(
            body="",
            body_html=None,
            html_version=None,
            deleted_at=sa.func.coalesce(comments.c.deleted_at, now),
            user_id=None,
        )
    )
    for table in (sessions, api_tokens, votes, claims):
        conn.execute(sa.delete(table).where(table.c.user_id == user_id))
    conn.execute(sa.delete(users).where(users.c.id == user_id))


# --- sessions -----------------------------------------------------------------------------------------------


def insert_session(
    conn: Connection, token_hash: str, user_id: int, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        sa.insert(sessions).values(
            token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at
        )
    )


def session_user(conn: Connection, token_hash: str, now: datetime) -> User | None:
    """The enabled member whose unexpired session this is."""
    stmt = (
        sa.select(*_USER_COLUMNS)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(
            sessions.c.token_hash == token_hash, sessions.c.expires_at > now, users.c.disabled == sa.false()
        )
    )
    row = conn.execute(stmt).mappings().first()
    return _user(row) if row else None


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(sa.delete(sessions).where(sessions.c.token_hash == token_hash))


def delete_sessions(conn: Connection, user_id: int, keep: str | None = None) -> int:
    """End every session of a member (but `keep`, the one making the change)."""
    stmt = sa.delete(sessions).where(sessions.c.user_id == user_id)
    if keep is not None:
        stmt = stmt.where(sessions.c.token_hash != keep)
    return conn.execute(stmt).rowcount


def count_sessions(conn: Connection, user_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(sessions).where(sessions.c.user_id == user_id)
    return conn.execute(stmt).scalar_one()


def delete_expired_sessions(conn: Connection, now: datetime) -> int:
    return conn.execute(sa.delete(sessions).where(sessions.c.expires_at <= now)).rowcount


# --- API tokens ---------------------------------------------------------------------------------------------


def _token(row: RowMapping) -> ApiToken:
    return ApiToken(
        row["id"], row["user_id"], row["name"], row["prefix"], row["created_at"], row["last_used_at"]
    )


def insert_token(
    conn: Connection, *, user_id: int, name: str, token_hash: str, prefix: str, now: datetime
) -> ApiToken:
    token_id = conn.execute(
        sa.insert(api_tokens)
        .values(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, created_at=now)
        .returning(api_tokens.c.id)
    ).scalar_one()
    return ApiToken(token_id, user_id, name, prefix, now)


def list_tokens(conn: Connection, user_id: int) -> list[ApiToken]:
    stmt = sa.select(api_tokens).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id)
    return [_token(r) for r in conn.execute(stmt).mappings()]


def delete_token(conn: Connection, user_id: int, token_id: int) -> bool:
    stmt = sa.delete(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
    return bool(conn.execute(stmt).rowcount)


def token_user(conn: Connection, token_hash: str) -> tuple[User, int] | None:
    """The enabled member a token belongs to, and the token's id."""
    stmt = (
        sa.select(*_USER_COLUMNS, api_tokens.c.id.label("token_id"))
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == token_hash, users.c.disabled == sa.false())
    )
    row = conn.execute(stmt).mappings().first()
    return (_user(row), row["token_id"]) if row else None


def touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))
