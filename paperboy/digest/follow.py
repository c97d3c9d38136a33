"""Following an author from their page ("Follow in my digest"): a signed-in member adds the name to the
authors their digest subscription follows (the same list as the preferences page's "Authors to follow"),
or takes it off. The digest's "New from …" section then holds that author's new papers (compose.py).

Only the subscription the member's account manages (linked when they confirmed from the site) changes: the
account proved that address. A member without one is told to subscribe first (Conflict).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from paperboy.digest.subscriptions import MAX_AUTHORS, MAX_ENTRY_CHARS, member_subscription
from paperboy.errors import Conflict, InvalidInput
from paperboy.models import Subscription, User
from paperboy.store import subscriptions as store


@dataclass(frozen=True)
class FollowState:
    subscription: Subscription | None  # the member's, None when they have none
    following: bool


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _clean(name: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise InvalidInput("name: an author's name is needed")
    if len(text) > MAX_ENTRY_CHARS:
        raise InvalidInput(f"name: a followed author's name has at most {MAX_ENTRY_CHARS} characters")
    return text


def follows(authors: tuple[str, ...], name: str) -> bool:
    return any(_key(a) == _key(name) for a in authors)


def follow_state(conn: Connection, user: User | None, name: str) -> FollowState:
    """Whether `user`'s digest follows `name` (case and spacing aside)."""
    found = member_subscription(conn, user) if user is not None else None
    return FollowState(found, found is not None and follows(found.authors, name))


def _subscription(conn: Connection, user: User) -> Subscription:
    found = member_subscription(conn, user)
    if found is None:
        raise Conflict(
            "Your account has no email digest yet. Subscribe from your settings page first, then follow "
            "authors from their pages."
        )
    return found


def follow(conn: Connection, user: User, name: str) -> FollowState:
    """Add `name` to the member's followed authors (nothing changes when it is there already). Run inside a
    write transaction."""
    text = _clean(name)
    sub = _subscription(conn, user)
    authors = store.followed_authors(conn, sub.id)
    if not follows(authors, text):
        if len(authors) >= MAX_AUTHORS:
            raise Conflict(
                f"Your digest already follows {MAX_AUTHORS} authors: remove one in your preferences first."
            )
        store.set_authors(conn, sub.id, (*authors, text))
    return follow_state(conn, user, text)


def unfollow(conn: Connection, user: User, name: str) -> FollowState:
    """Take `name` off the member's followed authors. Run inside a write transaction."""
    text = _clean(name)
    sub = _subscription(conn, user)
    authors = store.followed_authors(conn, sub.id)
    kept = tuple(a for a in authors if _key(a) != _key(text))
    if kept != authors:
        store.set_authors(conn, sub.id, kept)
    return follow_state(conn, user, text)
