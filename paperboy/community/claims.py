"""Authorship claims: a member says they are one of a paper's authors; an admin approves or rejects.

An approved claim puts the paper on the member's profile ("Authored") and a badge on that author's name on
the paper page. One claim per member per paper (the table's unique constraint); an author name confirmed
for one member cannot be claimed by another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from paperboy.errors import Conflict, FieldInvalid, Forbidden, NotFound
from paperboy.models import Claim, User
from paperboy.store import claims as store
from paperboy.store import papers

FIELD = "author_name"


@dataclass(frozen=True)
class PaperClaims:
    """What the paper page shows: which author names belong to which member, and the viewer's own claim."""

    members: dict[str, str] = field(default_factory=dict)  # author name as the paper gives it -> username
    mine: Claim | None = None


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _author(authors: tuple[str, ...], typed: str) -> str:
    """The paper's spelling of the author `typed` names (spaces and case aside), or FieldInvalid."""
    want = _norm(typed)
    if not want:
        raise FieldInvalid(FIELD, "Choose which of the paper's authors you are.")
    for name in authors:
        if _norm(name) == want:
            return name
    raise FieldInvalid(FIELD, f"{typed.strip()[:200]!r} is not one of this paper's authors.")


def _confirmed_to_other(conn: Connection, arxiv_id: str, author: str, user_id: int) -> Claim | None:
    return next(
        (
            c
            for c in store.approved_for_paper(conn, arxiv_id)
            if _norm(c.author_name) == _norm(author) and c.user_id != user_id
        ),
        None,
    )


def claim_authorship(conn: Connection, user: User, arxiv_id: str, author_name: str, now: datetime) -> Claim:
    """A pending claim that `user` is the author `author_name` of the paper.

    NotFound for an unknown paper; FieldInvalid("author_name") for a name not among its authors; Conflict
    when the member already claimed this paper, or another member is confirmed as that author.
    """
    item = papers.get_paper(conn, arxiv_id)
    if item is None:
        raise NotFound(f"paper {arxiv_id} is not in this hub")
    author = _author(item.paper.authors, author_name)
    existing = store.claim_of(conn, user.id, arxiv_id)
    if existing is not None:
        raise Conflict(
            f"You already claimed authorship of {arxiv_id} (as {existing.author_name}, {existing.status})."
        )
    if _confirmed_to_other(conn, arxiv_id, author, user.id) is not None:
        raise Conflict(f"{author} is already confirmed as another member of this hub.")
    claim_id = store.insert_claim(conn, user.id, arxiv_id, author, now)
    if claim_id is None:  # the same claim, sent twice at once
        raise Conflict(f"You already claimed authorship of {arxiv_id}.")
    claim = store.get_claim(conn, claim_id)
    assert claim is not None  # noqa: S101 (read back in the transaction that wrote it; for mypy)
    return claim


def decide_claim(conn: Connection, admin_user: User, claim_id: int, approve: bool, now: datetime) -> Claim:
    """Approve or reject a claim (an admin may change an earlier decision). Forbidden for non-admins,
    NotFound for an unknown claim, Conflict when approving a name confirmed for another member."""
    if not admin_user.is_admin:
        raise Forbidden("Only an admin can decide authorship claims.")
    claim = store.get_claim(conn, claim_id)
    if claim is None:
        raise NotFound(f"no authorship claim {claim_id}")
    if approve:
        other = _confirmed_to_other(conn, claim.arxiv_id, claim.author_name, claim.user_id)
        if other is not None:
            raise Conflict(
                f"{claim.author_name} is already confirmed as {other.username} on {claim.arxiv_id}."
            )
    store.set_status(conn, claim_id, "approved" if approve else "rejected", now)
    decided = store.get_claim(conn, claim_id)
    assert decided is not None  # noqa: S101 (read back in the transaction that wrote it; for mypy)
    return decided


def pending_claims(conn: Connection, limit: int = 100) -> list[Claim]:
    """Claims waiting for an admin's decision, the oldest first."""
    return store.pending(conn, limit)


def paper_claims(conn: Connection, arxiv_id: str, viewer: User | None) -> PaperClaims:
    """The confirmed authors of a paper (name -> username) and the viewer's claim on it, for its page."""
    members = {c.author_name: c.username for c in store.approved_for_paper(conn, arxiv_id)}
    mine = store.claim_of(conn, viewer.id, arxiv_id) if viewer is not None else None
    return PaperClaims(members, mine)


def authored_ids(conn: Connection, user_id: int, limit: int) -> list[str]:
    """The papers the member is a confirmed author of, the latest approval first."""
    return store.authored_ids(conn, user_id, limit)
