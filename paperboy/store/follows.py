"""The follows table: the authors, members and organizations a member follows (migration 0015).

A follow is one row per (member, kind, target key), unique by constraint: following twice, or from two
requests at once, leaves one row. Keys: an author's `author_key(name)`, a member's `str(user id)`, an
organization's slug lower-cased (featurings.organization_name).

What a followed target brings: an author's papers (paper_authors, by name key), a member's upvotes and the
papers they submitted (votes, featurings.submitter_user_id), an organization's featured papers
(featurings.organization_name, case aside). Every reader here is bounded by a `limit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db import dialect
from paperboy.db.schema import featurings, follows, paper_authors, users, votes
from paperboy.models import Follow
from paperboy.store.submissions import MEMBER_SOURCE

KINDS = ("author", "member", "org")
_CHUNK = 500


def _follow(row: RowMapping) -> Follow:
    return Follow(
        id=row["id"],
        user_id=row["user_id"],
        kind=row["kind"],
        target_key=row["target_key"],
        target_name=row["target_name"],
        created_at=row["created_at"],
        in_digest=bool(row["in_digest"]),
        target_user_id=row["target_user_id"],
    )


def org_key(slug: str) -> str:
    """How an organization is matched: its slug, lower-cased."""
    return slug.strip().lower()


def lock_member(conn: Connection, user_id: int) -> None:
    """Hold the member's row until the transaction ends (PostgreSQL; SQLite's writer holds the one write lock
    already), so that two follows by the same member at once count each other against the cap."""
    conn.execute(sa.select(users.c.id).where(users.c.id == user_id).with_for_update())


def add(
    conn: Connection,
    user_id: int,
    kind: str,
    target_key: str,
    target_name: str,
    now: datetime,
    *,
    cap: int,
    target_user_id: int | None = None,
    in_digest: bool = True,
) -> bool:
    """Follow, unless the member follows it already or follows `cap` things: True when a row was written.
    One statement: the member's count is read in it, and the unique constraint decides a duplicate."""
    count = (
        sa.select(sa.func.count()).select_from(follows).where(follows.c.user_id == user_id).scalar_subquery()
    )
    values = sa.select(
        sa.literal(user_id, sa.Integer).label("user_id"),
        sa.literal(kind, sa.String).label("kind"),
        sa.literal(target_key, sa.String).label("target_key"),
        sa.literal(target_name, sa.Text).label("target_name"),
        sa.literal(target_user_id, sa.Integer).label("target_user_id"),
        sa.literal(in_digest, sa.Boolean).label("in_digest"),
        sa.literal(now, follows.c.created_at.type).label("created_at"),
    ).where(count < cap)
    columns = ["user_id", "kind", "target_key", "target_name", "target_user_id", "in_digest", "created_at"]
    stmt: Any = (
        dialect.insert(conn, follows)
        .from_select(columns, values)
        .on_conflict_do_nothing(index_elements=["user_id", "kind", "target_key"])
        .returning(follows.c.id)
    )
    return conn.execute(stmt).first() is not None


def remove(conn: Connection, user_id: int, kind: str, target_key: str) -> bool:
    """Unfollow; False when there was nothing to remove."""
    stmt = sa.delete(follows).where(
        follows.c.user_id == user_id, follows.c.kind == kind, follows.c.target_key == target_key
    )
    return bool(conn.execute(stmt).rowcount)


def set_in_digest(conn: Connection, user_id: int, kind: str, target_key: str, in_digest: bool) -> bool:
    """Whether the follow's new papers go into the member's digest; False when there is no such follow."""
    stmt = (
        sa.update(follows)
        .where(follows.c.user_id == user_id, follows.c.kind == kind, follows.c.target_key == target_key)
        .values(in_digest=in_digest)
    )
    return bool(conn.execute(stmt).rowcount)


def get(conn: Connection, user_id: int, kind: str, target_key: str) -> Follow | None:
    stmt = sa.select(follows).where(
        follows.c.user_id == user_id, follows.c.kind == kind, follows.c.target_key == target_key
    )
    row = conn.execute(stmt).mappings().first()
    return _follow(row) if row else None


def count(conn: Connection, user_id: int) -> int:
    stmt = sa.select(sa.func.count()).select_from(follows).where(follows.c.user_id == user_id)
    return int(conn.execute(stmt).scalar_one())


def followed(conn: Connection, user_id: int) -> list[Follow]:
    """Everything the member follows: authors, then members, then organizations, each by name."""
    order = sa.case({"author": 0, "member": 1, "org": 2}, value=follows.c.kind, else_=3)
    stmt = (
        sa.select(follows)
        .where(follows.c.user_id == user_id)
        .order_by(order, sa.func.lower(follows.c.target_name), follows.c.id)
    )
    return [_follow(r) for r in conn.execute(stmt).mappings()]


def following_keys(conn: Connection, user_id: int, kind: str, keys: Sequence[str]) -> set[str]:
    """Which of `keys` (of one kind) the member follows: to draw follow buttons pressed or not."""
    out: set[str] = set()
    wanted = list(dict.fromkeys(keys))
    for s in range(0, len(wanted), _CHUNK):
        stmt = sa.select(follows.c.target_key).where(
            follows.c.user_id == user_id,
            follows.c.kind == kind,
            follows.c.target_key.in_(wanted[s : s + _CHUNK]),
        )
        out.update(conn.execute(stmt).scalars())
    return out


def followers(conn: Connection, kind: str, target_key: str) -> int:
    """How many members follow this target."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(follows)
        .where(follows.c.kind == kind, follows.c.target_key == target_key)
    )
    return int(conn.execute(stmt).scalar_one())


def digest_follows(conn: Connection, user_ids: Iterable[int]) -> dict[int, list[Follow]]:
    """The follows of these members that go into their digests (in_digest), by member."""
    out: dict[int, list[Follow]] = {}
    ids = list(dict.fromkeys(user_ids))
    for s in range(0, len(ids), _CHUNK):
        stmt = (
            sa.select(follows)
            .where(follows.c.user_id.in_(ids[s : s + _CHUNK]), follows.c.in_digest.is_(True))
            .order_by(follows.c.user_id, follows.c.id)
        )
        for row in conn.execute(stmt).mappings():
            out.setdefault(row["user_id"], []).append(_follow(row))
    return out


# --- what followed targets bring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """A paper that reached a member through something they follow, and when."""

    arxiv_id: str
    at: datetime  # when: the upvote, the submission, the featuring day, the paper's date
    kind: str  # "author" | "member" | "org"
    target_key: str  # which followed target it came from
    how: str = ""  # a member's: "upvote" | "submit"


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def member_activity(
    conn: Connection,
    member_ids: Sequence[int],
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Activity]:
    """What these members upvoted or submitted in [since, until), newest first, at most `limit` of each kind
    (upvotes, submissions) per call. A submission counts from its submission time, else its day."""
    if not member_ids:
        return []
    ids = list(dict.fromkeys(member_ids))[:_CHUNK]
    voted = sa.select(votes.c.arxiv_id, votes.c.created_at, votes.c.user_id).where(votes.c.user_id.in_(ids))
    if since is not None:
        voted = voted.where(votes.c.created_at >= since)
    if until is not None:
        voted = voted.where(votes.c.created_at < until)
    voted = voted.order_by(votes.c.created_at.desc(), votes.c.arxiv_id).limit(limit)
    found = [
        Activity(r.arxiv_id, _aware(r.created_at), "member", str(r.user_id), "upvote")
        for r in conn.execute(voted)
    ]
    sub = sa.select(
        featurings.c.arxiv_id, featurings.c.submitted_at, featurings.c.day, featurings.c.submitter_user_id
    ).where(featurings.c.source == MEMBER_SOURCE, featurings.c.submitter_user_id.in_(ids))
    if since is not None:
        sub = sub.where(featurings.c.day >= since.date())
    if until is not None:
        sub = sub.where(featurings.c.day <= until.date())
    sub = sub.order_by(featurings.c.day.desc(), featurings.c.id.desc()).limit(limit)
    for r in conn.execute(sub):
        at = _aware(r.submitted_at) if r.submitted_at is not None else _day_start(r.day)
        if (since is None or at >= since) and (until is None or at < until):
            found.append(Activity(r.arxiv_id, at, "member", str(r.submitter_user_id), "submit"))
    found.sort(key=lambda a: (a.at, a.arxiv_id), reverse=True)
    return found


def org_activity(
    conn: Connection,
    slugs: Sequence[str],
    limit: int,
    since: date | None = None,
    until: date | None = None,
) -> list[Activity]:
    """The papers these organizations featured on days in [since, until], newest day first, at most
    `limit`."""
    if not slugs:
        return []
    keys = list(dict.fromkeys(org_key(s) for s in slugs))[:_CHUNK]
    slug = sa.func.lower(featurings.c.organization_name)
    stmt = sa.select(featurings.c.arxiv_id, featurings.c.day, slug.label("slug")).where(slug.in_(keys))
    if since is not None:
        stmt = stmt.where(featurings.c.day >= since)
    if until is not None:
        stmt = stmt.where(featurings.c.day <= until)
    stmt = stmt.order_by(featurings.c.day.desc(), featurings.c.id.desc()).limit(limit)
    return [Activity(r.arxiv_id, _day_start(r.day), "org", r.slug) for r in conn.execute(stmt)]


def author_activity(conn: Connection, keys: Sequence[str], limit: int) -> list[Activity]:
    """The newest papers (by arXiv date) of these authors (name keys), at most `limit`."""
    if not keys:
        return []
    wanted = list(dict.fromkeys(keys))[:_CHUNK]
    stmt = (
        sa.select(paper_authors.c.arxiv_id, paper_authors.c.paper_date, paper_authors.c.name_key)
        .where(paper_authors.c.name_key.in_(wanted))
        .order_by(paper_authors.c.paper_date.desc(), paper_authors.c.arxiv_id.desc())
        .limit(limit)
    )
    return [Activity(r.arxiv_id, _aware(r.paper_date), "author", r.name_key) for r in conn.execute(stmt)]


def org_name(conn: Connection, slug: str) -> tuple[str, str] | None:
    """(slug as upstream spells it, full name) of the organization's newest featuring; None: never seen."""
    stmt = (
        sa.select(featurings.c.organization_name, featurings.c.organization)
        .where(sa.func.lower(featurings.c.organization_name) == org_key(slug))
        .order_by(featurings.c.day.desc(), featurings.c.id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    if row is None:
        return None
    return row[0], row[1] or row[0]


def org_paper_ids(conn: Connection, slug: str, offset: int, limit: int) -> tuple[int, list[str]]:
    """(how many papers the organization featured, one page of their ids, the newest featuring first)."""
    where = sa.func.lower(featurings.c.organization_name) == org_key(slug)
    total = conn.execute(
        sa.select(sa.func.count(sa.distinct(featurings.c.arxiv_id))).where(where)
    ).scalar_one()
    newest = sa.func.max(featurings.c.day).label("newest")
    stmt = (
        sa.select(featurings.c.arxiv_id, newest)
        .where(where)
        .group_by(featurings.c.arxiv_id)
        .order_by(newest.desc(), featurings.c.arxiv_id.desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total), [r.arxiv_id for r in conn.execute(stmt)]


def usernames(conn: Connection, user_ids: Iterable[int]) -> dict[int, str]:
    """The usernames of these accounts, leaving out disabled ones (what they did no longer surfaces)."""
    ids = list(dict.fromkeys(user_ids))
    out: dict[int, str] = {}
    for s in range(0, len(ids), _CHUNK):
        stmt = sa.select(users.c.id, users.c.username).where(
            users.c.id.in_(ids[s : s + _CHUNK]), users.c.disabled.is_(False)
        )
        out.update({r.id: r.username for r in conn.execute(stmt)})
    return out


def papers_via_follows(conn: Connection, user_id: int, since: datetime, limit: int) -> dict[str, str]:
    """Recent papers that reached the member through a followed member (upvoted or submitted since
    `since`) or a followed organization (featured on a day since `since`), newest first: arxiv id ->
    "member:<username>" (upvoted), "submitted:<username>" or "org:<full name>" (the first source wins when
    several brought the same paper).
    Authors are left out: the feed matches followed authors itself."""
    mine = [f for f in followed(conn, user_id) if f.kind in ("member", "org")]
    member_ids = [f.target_user_id for f in mine if f.kind == "member" and f.target_user_id is not None]
    orgs = {f.target_key: f.target_name for f in mine if f.kind == "org"}
    found = member_activity(conn, [m for m in member_ids if m != user_id], limit, since=since)
    found += org_activity(conn, list(orgs), limit, since=since.date())
    found.sort(key=lambda a: (a.at, a.arxiv_id), reverse=True)
    names = usernames(conn, member_ids)  # a disabled member's doings are left out
    out: dict[str, str] = {}
    for a in found:
        if len(out) >= limit:
            break
        if a.arxiv_id in out:
            continue
        if a.kind == "member":
            name = names.get(int(a.target_key))
            if name is None:
                continue
            out[a.arxiv_id] = f"{'submitted' if a.how == 'submit' else 'member'}:{name}"
        else:
            out[a.arxiv_id] = f"org:{orgs.get(a.target_key, a.target_key)}"
    return out
