"""The papers and featurings tables: upserts that change nothing when nothing is new; the reads pages need."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from paperboy.db import dialect
from paperboy.db.schema import comments, featurings, paper_deletions, papers, unfeatured, users, votes
from paperboy.errors import InvalidInput
from paperboy.models import Featuring, Paper, Record, StoredPaper, Submitter, UpsertCounts, in_category
from paperboy.store.authors import sync_authors
from paperboy.store.merge import merge_featuring, merge_paper
from paperboy.store.submissions import MEMBER_SOURCE

_PAPER_FIELDS = (
    "arxiv_id",
    "version",
    "title",
    "abstract",
    "authors",
    "categories",
    "primary_category",
    "published_at",
    "updated_at",
    "comments",
    "journal_ref",
    "doi",
    "license",
    "withdrawn",
    "github_repo",
    "github_stars",
    "project_page",
    "ai_summary",
    "ai_keywords",
)
# SQLite limits bound parameters per statement; keep IN-lists well under it.
_IN_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def paper_to_row(p: Paper) -> dict[str, Any]:
    row = {name: getattr(p, name) for name in _PAPER_FIELDS}
    row["authors"] = list(p.authors)
    row["categories"] = list(p.categories)
    row["ai_keywords"] = list(p.ai_keywords) if p.ai_keywords is not None else None
    return row


def row_to_paper(row: RowMapping) -> Paper:
    kw = row.get("ai_keywords")
    return Paper(
        arxiv_id=row["arxiv_id"],
        version=row["version"],
        title=row["title"],
        abstract=row["abstract"],
        authors=tuple(row["authors"] or ()),
        categories=tuple(row["categories"] or ()),
        primary_category=row["primary_category"],
        published_at=row["published_at"],
        updated_at=row["updated_at"],
        comments=row["comments"],
        journal_ref=row["journal_ref"],
        doi=row["doi"],
        license=row["license"],
        withdrawn=bool(row["withdrawn"]),
        github_repo=row["github_repo"],
        github_stars=row["github_stars"],
        project_page=row["project_page"],
        ai_summary=row["ai_summary"],
        ai_keywords=tuple(kw) if kw is not None else None,
    )


def _featuring_to_row(f: Featuring) -> dict[str, Any]:
    s = f.submitter
    return {
        "arxiv_id": f.arxiv_id,
        "day": f.day,
        "source": f.source,
        "submitted_at": f.submitted_at,
        "submitter_name": s.name if s else None,
        "submitter_fullname": s.fullname if s else None,
        "submitter_avatar_url": s.avatar_url if s else None,
        "submitter_user_id": s.user_id if s else None,
        "upvotes": f.upvotes,
        "num_comments": f.num_comments,
        "thumbnail": f.thumbnail,
        "organization": f.organization,
        "organization_name": f.organization_name,
        "discussion_id": f.discussion_id,
    }


def _row_to_featuring(row: RowMapping) -> Featuring:
    name = row["submitter_name"]
    return Featuring(
        arxiv_id=row["arxiv_id"],
        day=row["day"],
        source=row["source"],
        submitted_at=row["submitted_at"],
        submitter=(
            Submitter(name, row["submitter_fullname"], row["submitter_avatar_url"], row["submitter_user_id"])
            if name
            else None
        ),
        upvotes=row["upvotes"],
        num_comments=row["num_comments"],
        thumbnail=row["thumbnail"],
        organization=row["organization"],
        organization_name=row["organization_name"],
        discussion_id=row["discussion_id"],
    )


# --- writes -------------------------------------------------------------------------------------------------


def _stored_papers(conn: Connection, ids: Sequence[str]) -> dict[str, Paper]:
    """The stored rows of `ids`, locked until the transaction ends on PostgreSQL (two ingests merging into
    the same paper take turns instead of overwriting each other's merge; SQLite's write lock does that)."""
    stored: dict[str, Paper] = {}
    for chunk in _chunks(ids):
        stmt = sa.select(papers).where(papers.c.arxiv_id.in_(chunk)).with_for_update()
        for row in conn.execute(stmt).mappings():
            stored[row["arxiv_id"]] = row_to_paper(row)
    return stored


def upsert_records(conn: Connection, records: Sequence[Record], now: datetime) -> UpsertCounts:
    """Store a batch of records; a second call with the same records changes no row.

    New papers are inserted with `on conflict do nothing`: a paper that another transaction inserted after
    this one looked is merged into as an update instead (no IntegrityError, nothing lost). Every written row
    gets the next `change_seq` (the keyword index follows it).
    """
    incoming: dict[str, Paper] = {}
    for r in records:
        incoming[r.paper.arxiv_id] = merge_paper(incoming.get(r.paper.arxiv_id), r.paper)
    seq = dialect.next_change_seq(conn, papers.c.change_seq, also=(paper_deletions.c.change_seq,))
    inserted = updated = unchanged = 0
    authors_changed: list[str] = []  # new papers, and papers whose authors or arXiv date changed
    todo = list(incoming)
    for _attempt in range(2):  # the second pass merges into rows a concurrent writer inserted meanwhile
        stored = _stored_papers(conn, todo)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for arxiv_id in todo:
            paper, old = incoming[arxiv_id], stored.get(arxiv_id)
            merged = merge_paper(old, paper)
            if old is None:
                inserts.append({**paper_to_row(merged), "first_seen_at": now, "changed_at": now})
            elif merged != old:
                changed = paper_to_row(merged)
                changed["b_arxiv_id"] = changed.pop("arxiv_id")
                updates.append({**changed, "changed_at": now})
                if merged.authors != old.authors or merged.published_at != old.published_at:
                    authors_changed.append(arxiv_id)
            else:
                unchanged += 1
        if updates:
            values: dict[str, Any] = {name: sa.bindparam(name) for name in (*_PAPER_FIELDS[1:], "changed_at")}
            stmt = sa.update(papers).where(papers.c.arxiv_id == sa.bindparam("b_arxiv_id"))
            conn.execute(stmt.values(**values, change_seq=seq), updates)
            updated += len(updates)
        if not inserts:
            break
        new_ids = _insert_new(conn, inserts, seq)
        inserted += len(new_ids)
        authors_changed += sorted(new_ids)
        todo = [row["arxiv_id"] for row in inserts if row["arxiv_id"] not in new_ids]
        if not todo:
            break
    sync_authors(conn, authors_changed)
    featured = _upsert_featurings(conn, [r.featuring for r in records if r.featuring is not None])
    return UpsertCounts(inserted, updated, unchanged, featured)


def _insert_new(conn: Connection, rows: list[dict[str, Any]], seq: Any) -> set[str]:
    """Insert the papers that are not stored yet; the ids actually inserted (not those another writer
    inserted first)."""
    done: set[str] = set()
    for start in range(0, len(rows), 200):
        stmt = (
            dialect.insert(conn, papers)
            .values(change_seq=seq)
            .on_conflict_do_nothing(index_elements=["arxiv_id"])
            .returning(papers.c.arxiv_id)
        )
        done.update(conn.execute(stmt, rows[start : start + 200]).scalars())
    return done


def _upsert_featurings(conn: Connection, items: list[Featuring]) -> int:
    """Insert or merge featurings, unique per (paper, day) by constraint: one that another transaction
    inserted after this one looked is merged into, not inserted twice."""
    if not items:
        return 0
    incoming: dict[tuple[str, date], Featuring] = {}
    for f in items:
        key = (f.arxiv_id, f.day)
        incoming[key] = merge_featuring(incoming.get(key), f)
    ids = sorted({k[0] for k in incoming})
    for chunk in _chunks(ids):
        removed = conn.execute(
            sa.select(unfeatured.c.arxiv_id, unfeatured.c.day).where(unfeatured.c.arxiv_id.in_(chunk))
        ).all()
        for arxiv_id, day in removed:
            incoming.pop((arxiv_id, day), None)  # an admin took it off that day's list: it stays off
    written = 0
    todo = list(incoming)
    for _attempt in range(2):  # the second pass merges into rows a concurrent writer inserted meanwhile
        stored = _stored_featurings(conn, sorted({k[0] for k in todo}))
        inserts, updates = [], []
        for key in todo:
            f = incoming[key]
            if key not in stored:
                inserts.append(_featuring_to_row(f))
                continue
            row_id, old = stored[key]
            merged = merge_featuring(old, f)
            if merged != old:
                updates.append({**_featuring_to_row(merged), "b_id": row_id})
        if updates:
            cols = [c for c in _featuring_to_row(items[0]) if c not in ("arxiv_id", "day")]
            stmt = (
                sa.update(featurings)
                .where(featurings.c.id == sa.bindparam("b_id"))
                .values(**{c: sa.bindparam(c) for c in cols})
            )
            conn.execute(
                stmt, [{k: v for k, v in u.items() if k not in ("arxiv_id", "day")} for u in updates]
            )
            written += len(updates)
        if not inserts:
            break
        stmt_insert = (
            dialect.insert(conn, featurings)
            .on_conflict_do_nothing(index_elements=["arxiv_id", "day"])
            .returning(featurings.c.arxiv_id, featurings.c.day)
        )
        made = {(a, d) for a, d in conn.execute(stmt_insert, inserts).all()}
        written += len(made)
        todo = [(r["arxiv_id"], r["day"]) for r in inserts if (r["arxiv_id"], r["day"]) not in made]
        if not todo:
            break
    return written


def _stored_featurings(conn: Connection, ids: Sequence[str]) -> dict[tuple[str, date], tuple[int, Featuring]]:
    stored: dict[tuple[str, date], tuple[int, Featuring]] = {}
    for chunk in _chunks(ids):
        stmt = sa.select(featurings).where(featurings.c.arxiv_id.in_(chunk)).with_for_update()
        for row in conn.execute(stmt).mappings():
            stored[(row["arxiv_id"], row["day"])] = (row["id"], _row_to_featuring(row))
    return stored


def unfeature(conn: Connection, arxiv_id: str, day: date, now: datetime, by: int | None) -> bool:
    """Take a paper off one day's list for good (ingest will not bring it back). False if it was not on it."""
    gone = conn.execute(
        sa.delete(featurings).where(featurings.c.arxiv_id == arxiv_id, featurings.c.day == day)
    ).rowcount
    if gone:
        conn.execute(sa.insert(unfeatured).values(arxiv_id=arxiv_id, day=day, removed_at=now, removed_by=by))
    return bool(gone)


def recent_featurings(conn: Connection, limit: int = 50) -> list[StoredPaper]:
    """The latest featurings of any source (an admin's moderation list), newest day and time first."""
    return featured_page(conn, FeaturedQuery(), 0, limit)


# --- reads --------------------------------------------------------------------------------------------------


def count_papers(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(papers)).scalar_one()


def count_featured(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(featurings)).scalar_one()


def local_engagement(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Members' upvotes and visible comments per paper, for the ids that have any."""
    out: dict[str, tuple[int, int]] = {}
    for chunk in _chunks(list(dict.fromkeys(ids))):
        vote_counts: dict[str, int] = dict(
            conn.execute(
                sa.select(votes.c.arxiv_id, sa.func.count())
                .where(votes.c.arxiv_id.in_(chunk))
                .group_by(votes.c.arxiv_id)
            ).all()
        )
        comment_counts: dict[str, int] = dict(
            conn.execute(
                sa.select(comments.c.arxiv_id, sa.func.count())
                .where(
                    comments.c.arxiv_id.in_(chunk),
                    comments.c.deleted_at.is_(None),
                    comments.c.hidden_at.is_(None),
                )
                .group_by(comments.c.arxiv_id)
            ).all()
        )
        for arxiv_id in vote_counts.keys() | comment_counts.keys():
            out[arxiv_id] = (vote_counts.get(arxiv_id, 0), comment_counts.get(arxiv_id, 0))
    return out


def with_engagement(conn: Connection, items: list[StoredPaper]) -> list[StoredPaper]:
    """`items` with their members' upvotes and comments counted in."""
    counts = local_engagement(conn, [i.paper.arxiv_id for i in items])
    if not counts:
        return items
    out = []
    for item in items:
        got = counts.get(item.paper.arxiv_id)
        out.append(replace(item, local_upvotes=got[0], local_comments=got[1]) if got else item)
    return out


def get_paper(conn: Connection, arxiv_id: str) -> StoredPaper | None:
    """A paper with its most recent featuring (if it was ever on the daily list)."""
    row = conn.execute(sa.select(papers).where(papers.c.arxiv_id == arxiv_id)).mappings().first()
    if row is None:
        return None
    feat = (
        conn.execute(
            sa.select(featurings)
            .where(featurings.c.arxiv_id == arxiv_id)
            .order_by(featurings.c.day.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return with_engagement(conn, [StoredPaper(row_to_paper(row), _row_to_featuring(feat) if feat else None)])[
        0
    ]


def get_papers(conn: Connection, ids: Sequence[str]) -> dict[str, StoredPaper]:
    """Papers by id with their latest featuring; ids that are unknown are left out."""
    out: dict[str, StoredPaper] = {}
    for chunk in _chunks(list(ids)):
        feats: dict[str, Featuring] = {}
        for row in conn.execute(
            sa.select(featurings).where(featurings.c.arxiv_id.in_(chunk)).order_by(featurings.c.day)
        ).mappings():
            feats[row["arxiv_id"]] = _row_to_featuring(row)
        for row in conn.execute(sa.select(papers).where(papers.c.arxiv_id.in_(chunk))).mappings():
            out[row["arxiv_id"]] = StoredPaper(row_to_paper(row), feats.get(row["arxiv_id"]))
    return {i.paper.arxiv_id: i for i in with_engagement(conn, list(out.values()))}


FeaturedSort = Literal["upvotes", "publishedAt", "trending"]


@dataclass(frozen=True)
class FeaturedQuery:
    start: date | None = None  # inclusive
    end: date | None = None  # inclusive
    submitter: str | None = None


def _featured_filters(stmt: sa.Select[Any], q: FeaturedQuery) -> sa.Select[Any]:
    if q.start is not None:
        stmt = stmt.where(featurings.c.day >= q.start)
    if q.end is not None:
        stmt = stmt.where(featurings.c.day <= q.end)
    if q.submitter is not None:
        # A member's submissions are theirs by account id: a name registered again after an account was
        # deleted does not inherit what the deleted account submitted. Upstream submitters have only a name.
        holder = sa.select(users.c.id).where(users.c.username == q.submitter).scalar_subquery()
        stmt = stmt.where(
            featurings.c.submitter_name == q.submitter,
            sa.or_(featurings.c.source != MEMBER_SOURCE, featurings.c.submitter_user_id == holder),
        )
    return stmt


def featured(conn: Connection, q: FeaturedQuery) -> list[StoredPaper]:
    """Every featuring in the range (newest day first), joined with its paper. Ranking happens above."""
    stmt = sa.select(papers, featurings).join(featurings, featurings.c.arxiv_id == papers.c.arxiv_id)
    stmt = _featured_filters(stmt, q)
    stmt = stmt.order_by(featurings.c.day.desc(), featurings.c.upvotes.desc(), papers.c.arxiv_id)
    items = [StoredPaper(row_to_paper(row), _row_to_featuring(row)) for row in conn.execute(stmt).mappings()]
    return with_engagement(conn, items)


def featured_page(conn: Connection, q: FeaturedQuery, offset: int, limit: int) -> list[StoredPaper]:
    """One page of the featurings in the range, the latest listed first: by day, then by the time it was
    listed (untimed ones last in their day), then by id. The database pages, so long histories stay cheap."""
    stmt = sa.select(papers, featurings).join(featurings, featurings.c.arxiv_id == papers.c.arxiv_id)
    stmt = _featured_filters(stmt, q).order_by(
        featurings.c.day.desc(), featurings.c.submitted_at.desc().nulls_last(), papers.c.arxiv_id.desc()
    )
    rows = conn.execute(stmt.offset(offset).limit(limit)).mappings()
    return with_engagement(conn, [StoredPaper(row_to_paper(row), _row_to_featuring(row)) for row in rows])


def latest_featured_day(conn: Connection) -> date | None:
    return conn.execute(sa.select(sa.func.max(featurings.c.day))).scalar_one_or_none()


def earliest_featured_day(conn: Connection) -> date | None:
    return conn.execute(sa.select(sa.func.min(featurings.c.day))).scalar_one_or_none()


def neighbour_days(conn: Connection, day: date) -> tuple[date | None, date | None]:
    """The nearest earlier and later days that have featured papers."""
    prev = conn.execute(sa.select(sa.func.max(featurings.c.day)).where(featurings.c.day < day)).scalar()
    nxt = conn.execute(sa.select(sa.func.min(featurings.c.day)).where(featurings.c.day > day)).scalar()
    return prev, nxt


def _encode_cursor(published: datetime | None, arxiv_id: str) -> str:
    raw = json.dumps([published.isoformat() if published else None, arxiv_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        published, arxiv_id = json.loads(raw)
        when = datetime.fromisoformat(published) if published else None
        if when is not None and when.tzinfo is None:
            raise ValueError("a cursor's date carries its UTC offset")
        return when, str(arxiv_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"cursor {cursor!r} is not one this server handed out") from exc


def page_papers(conn: Connection, cursor: str | None, limit: int) -> tuple[list[StoredPaper], str | None]:
    """All papers, newest arXiv date first, in keyset pages; returns the page and the next cursor."""
    order_date = sa.func.coalesce(papers.c.published_at, papers.c.first_seen_at)
    # Keys only: sorting whole rows (abstracts included) would cost far more; get_papers reads the page.
    stmt = sa.select(papers.c.arxiv_id, order_date.label("_order"))
    stmt = stmt.order_by(order_date.desc(), papers.c.arxiv_id.desc())
    if cursor:
        published, arxiv_id = _decode_cursor(cursor)
        if published is None:
            raise InvalidInput("cursor is malformed")
        stmt = stmt.where(
            sa.or_(order_date < published, sa.and_(order_date == published, papers.c.arxiv_id < arxiv_id))
        )
    rows = list(conn.execute(stmt.limit(limit + 1)).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    found = get_papers(conn, [r["arxiv_id"] for r in rows])
    items = [found[r["arxiv_id"]] for r in rows]
    next_cursor = _encode_cursor(rows[-1]["_order"], rows[-1]["arxiv_id"]) if more and rows else None
    return items, next_cursor


def keyword_search(conn: Connection, query: str, limit: int) -> list[StoredPaper]:
    """Papers whose title, abstract or authors contain every word of `query`; title hits first.

    A plain scan: enough for the first version. The BM25 + vector search of docs/search.md replaces it.
    """
    words = [w for w in query.lower().split() if w][:12]
    if not words:
        return []
    text = sa.func.lower(papers.c.title + " " + papers.c.abstract + " " + sa.cast(papers.c.authors, sa.Text))
    stmt = sa.select(papers.c.arxiv_id, papers.c.title)
    for w in words:
        escaped = w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(text.like(f"%{escaped}%", escape="\\"))
    title_hits = sum(
        (sa.case((sa.func.lower(papers.c.title).contains(w, autoescape=True), 1), else_=0) for w in words),
        sa.literal(0),
    )
    order_date = sa.func.coalesce(papers.c.published_at, papers.c.first_seen_at)
    stmt = stmt.order_by(title_hits.desc(), order_date.desc()).limit(limit)
    ids = [r.arxiv_id for r in conn.execute(stmt)]
    found = get_papers(conn, ids)
    return [found[i] for i in ids]


@dataclass(frozen=True)
class Change:
    """A paper as written by its latest change, and where that change stands in commit order."""

    paper: Paper
    seq: int
    changed_at: datetime


def changes_after(
    conn: Connection, after: tuple[int, str], limit: int, horizon: int | None = None
) -> list[Change]:
    """Papers whose latest change comes after `after` = (change_seq, arxiv_id) in commit order, in keyset
    pages, only below `horizon` (db.dialect.change_horizon: what is committed for good). For index syncs."""
    seq, arxiv_id = after
    stmt = (
        sa.select(papers)
        .where(
            sa.or_(
                papers.c.change_seq > seq, sa.and_(papers.c.change_seq == seq, papers.c.arxiv_id > arxiv_id)
            )
        )
        .order_by(papers.c.change_seq, papers.c.arxiv_id)
        .limit(limit)
    )
    if horizon is not None:
        stmt = stmt.where(papers.c.change_seq < horizon)
    rows = conn.execute(stmt).mappings()
    return [Change(row_to_paper(row), row["change_seq"], row["changed_at"]) for row in rows]


def change_seq_before(conn: Connection, at: datetime) -> int:
    """The largest change_seq among papers last changed before `at` (0 if none): where an index synced by the
    old `changed_at` stamps continues from."""
    stmt = sa.select(sa.func.coalesce(sa.func.max(papers.c.change_seq), 0)).where(papers.c.changed_at < at)
    return int(conn.execute(stmt).scalar_one())


def filter_ids(
    conn: Connection,
    ids: Sequence[str],
    start: date | None = None,
    end: date | None = None,
    categories: Sequence[str] = (),
) -> set[str]:
    """The subset of `ids` whose arXiv date lies in [start, end] and that carry one of `categories`.

    A category like `cs` matches every `cs.*`; `cs.CL` matches exactly.
    """
    out: set[str] = set()
    for chunk in _chunks(list(ids)):
        stmt = sa.select(papers.c.arxiv_id, papers.c.categories, papers.c.published_at).where(
            papers.c.arxiv_id.in_(chunk)
        )
        stmt = _in_date_range(stmt, start, end)
        for row in conn.execute(stmt):
            if not categories or in_category(row.categories or (), categories):
                out.add(row.arxiv_id)
    return out


def _in_date_range(stmt: sa.Select[Any], start: date | None, end: date | None) -> sa.Select[Any]:
    """Papers whose arXiv date (first version) falls in [start, end]."""
    if start is not None:
        stmt = stmt.where(papers.c.published_at >= datetime.combine(start, time(0), tzinfo=UTC))
    if end is not None:
        stmt = stmt.where(
            papers.c.published_at < datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
        )
    return stmt


def ids_matching(
    conn: Connection, start: date | None = None, end: date | None = None, categories: Sequence[str] = ()
) -> set[str]:
    """Every paper id in the date range with one of `categories` (the vector search's filter set)."""
    stmt = sa.select(papers.c.arxiv_id, papers.c.categories)
    stmt = _in_date_range(stmt, start, end)
    return {
        row.arxiv_id
        for row in conn.execute(stmt)
        if not categories or in_category(row.categories or (), categories)
    }


def published_between(
    conn: Connection, start: datetime, end: datetime, limit: int = 20_000
) -> list[StoredPaper]:
    """Papers whose first version appeared in [start, end), newest first (a digest's "new papers")."""
    stmt = (
        sa.select(papers)
        .where(papers.c.published_at >= start, papers.c.published_at < end, papers.c.withdrawn == sa.false())
        .order_by(papers.c.published_at.desc(), papers.c.arxiv_id)
        .limit(limit)
    )
    items = [StoredPaper(row_to_paper(row)) for row in conn.execute(stmt).mappings()]
    return with_engagement(conn, items)
