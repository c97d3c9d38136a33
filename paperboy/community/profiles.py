"""A member's public profile: the papers they submitted, upvoted and (by approved claim) authored.

One function gathers it; the profile page, its JSON twin and its Atom feed all call `profile`. Nothing here
reads or returns an email, a password hash, a session or a token: `Profile.user` is the User model, and
the web layer picks the public fields out of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from paperboy.community.claims import authored_ids
from paperboy.errors import NotFound
from paperboy.models import StoredPaper, User
from paperboy.store import papers, submissions, users, votes

PROFILE_LIMIT = 100  # papers per list


@dataclass(frozen=True)
class Profile:
    user: User
    submitted: list[StoredPaper]  # the latest submission first
    upvoted: list[StoredPaper]  # the latest upvote first
    authored: list[StoredPaper]  # the latest approval first

    def feed_items(self) -> list[StoredPaper]:
        """Submitted and authored papers, each once, newest first (by when it was listed, or published)."""
        unique = {i.paper.arxiv_id: i for i in [*self.submitted, *self.authored]}
        return sorted(unique.values(), key=lambda i: (_listed(i), i.paper.arxiv_id), reverse=True)


def _listed(item: StoredPaper) -> datetime:
    f = item.featuring
    if f is not None and f.submitted_at is not None:
        return f.submitted_at
    if f is not None:
        return datetime(f.day.year, f.day.month, f.day.day, tzinfo=UTC)
    return item.paper.published_at or datetime(1970, 1, 1, tzinfo=UTC)


def _in_order(conn: Connection, ids: list[str]) -> list[StoredPaper]:
    found = papers.get_papers(conn, ids)
    return [found[i] for i in ids if i in found]


def profile(conn: Connection, username: str, limit: int = PROFILE_LIMIT) -> Profile:
    """The member's profile; NotFound for an unknown (or disabled) member."""
    user = users.get_user_by_name(conn, username)
    if user is None or user.disabled:
        raise NotFound(f"no member named {username[:40]!r}")
    return Profile(
        user=user,
        submitted=_in_order(conn, submissions.submitted_ids(conn, user.id, limit)),
        upvoted=_in_order(conn, votes.upvoted_by(conn, user.id, limit)),
        authored=_in_order(conn, authored_ids(conn, user.id, limit)),
    )
