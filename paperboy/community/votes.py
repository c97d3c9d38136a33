"""Upvotes: one per member per paper, toggled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from paperboy.errors import NotFound
from paperboy.models import User
from paperboy.store import papers
from paperboy.store import votes as store


@dataclass(frozen=True)
class VoteState:
    arxiv_id: str
    voted: bool  # the member's upvote is there after the change
    upvotes: int  # the paper's total shown everywhere (upstream + members)
    local_upvotes: int  # members of this hub only


def _state(conn: Connection, user: User, arxiv_id: str) -> VoteState:
    item = papers.get_paper(conn, arxiv_id)
    if item is None:
        raise NotFound(f"no paper {arxiv_id}")
    return VoteState(arxiv_id, store.has_voted(conn, user.id, arxiv_id), item.upvotes, item.local_upvotes)


def set_vote(conn: Connection, user: User, arxiv_id: str, voted: bool, now: datetime) -> VoteState:
    """Make the member's upvote on the paper be there (`voted`) or not; doing it twice changes nothing."""
    if papers.get_paper(conn, arxiv_id) is None:
        raise NotFound(f"no paper {arxiv_id}")
    if voted:
        store.add_vote(conn, user.id, arxiv_id, now)
    else:
        store.remove_vote(conn, user.id, arxiv_id)
    return _state(conn, user, arxiv_id)


def toggle_vote(conn: Connection, user: User, arxiv_id: str, now: datetime) -> VoteState:
    """Upvote, or take the upvote back when the member had given one."""
    return set_vote(conn, user, arxiv_id, not store.has_voted(conn, user.id, arxiv_id), now)


def vote_state(conn: Connection, user: User, arxiv_id: str) -> VoteState:
    return _state(conn, user, arxiv_id)
