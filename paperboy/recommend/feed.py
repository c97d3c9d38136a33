"""The "For you" feed of one member: what they showed interest in, gathered from the store, and the recent
papers ranked for them by `rank.rank`.

The pool (every recent paper with its vector, authors and upvotes) is the same for every member: a
`PoolCache` builds it once per process and refreshes it when papers changed or its upvotes grew stale,
fetching only the vectors it does not hold yet. A member's own part (their seeds, follows, topics and
feedback) is read on every request, so that "Not interested" or an upvote changes the very next ranking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.engine import Connection

from paperboy.errors import InvalidInput, NotFound
from paperboy.models import StoredPaper
from paperboy.recommend.rank import (
    Interests,
    Pick,
    Pool,
    Seed,
    TopicSeed,
    author_index,
    has_interests,
    rank,
    reason_text,
)
from paperboy.store import embeddings as store_embeddings
from paperboy.store import feed as store
from paperboy.store import follows as store_follows
from paperboy.store import papers as store_papers
from paperboy.store import subscriptions as store_subscriptions
from paperboy.store.authors import author_key

WINDOW_DAYS = 60  # "new and recent": papers from the last two months …
POOL_LIMIT = 20_000  # … at most this many, the newest (a month of every arXiv cs listing)
POOL_TTL_S = (
    60.0  # upvotes move the "popular" prior: a pool is rebuilt at most this often when nothing else changed
)
SEED_LIMIT = 200  # of each kind of interest, the newest
FEEDBACK_LIMIT = 2000
VIA_LIMIT = 1000  # papers brought by followed members and organizations, the newest
MAX_LIMIT = 200  # a feed shows at most this many papers (pages of it)


@dataclass
class _Built:
    pool: Pool
    model: str | None
    window: tuple[datetime, int]
    change: int
    at: float  # time.monotonic()


class PoolCache:
    """The recent papers every member's feed ranks (one per process; thread-safe)."""

    def __init__(
        self,
        window_days: int = WINDOW_DAYS,
        limit: int = POOL_LIMIT,
        ttl_s: float = POOL_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_days = window_days
        self.limit = limit
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._built: _Built | None = None
        self._vectors: dict[str, np.ndarray] = {}
        self._dim: int | None = None

    def get(self, conn: Connection, model: str | None, now: datetime) -> Pool:
        change = store.newest_change(conn)
        since = (now - timedelta(days=self.window_days)).replace(minute=0, second=0, microsecond=0)
        with self._lock:
            b = self._built
            if (
                b is not None
                and b.model == model
                and b.change == change
                and b.window == (since, self.limit)
                and self._clock() - b.at < self.ttl_s
            ):
                return b.pool
            pool = self._build(conn, model, since)
            self._built = _Built(pool, model, (since, self.limit), change, self._clock())
            return pool

    def _build(self, conn: Connection, model: str | None, since: datetime) -> Pool:
        rows = store.recent_papers(conn, since, self.limit)
        if len(rows) < 50:  # a young hub (or the demo papers): rank what there is, whatever its age
            rows = store.recent_papers(conn, datetime.min.replace(tzinfo=since.tzinfo), min(self.limit, 2000))
        ids = [r.arxiv_id for r in rows]
        vectors = self._vectors_for(conn, model, ids)
        return author_index(
            Pool(
                ids=tuple(ids),
                vectors=vectors,
                authors=tuple(tuple(author_key(a) for a in r.authors) for r in rows),
                published=np.array([r.date.timestamp() for r in rows], dtype=np.float64),
                popularity=np.array([r.upvotes for r in rows], dtype=np.float64),
                author_names=tuple(tuple(r.authors) for r in rows),
            )
        )

    def _vectors_for(self, conn: Connection, model: str | None, ids: list[str]) -> np.ndarray:
        if model is None:
            return np.zeros((len(ids), 0), dtype=np.float32)
        missing = [i for i in ids if i not in self._vectors]
        if missing:
            for arxiv_id, raw in store_embeddings.get_vectors(conn, model, missing).items():
                vector = np.frombuffer(raw, dtype="<f4")
                if self._dim is None:
                    self._dim = len(vector)
                if len(vector) == self._dim:
                    self._vectors[arxiv_id] = vector
        keep = set(ids)
        for stale in [i for i in self._vectors if i not in keep]:  # papers that left the window
            del self._vectors[stale]
        dim = self._dim or 0
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for row, arxiv_id in enumerate(ids):
            found = self._vectors.get(arxiv_id)
            if found is not None:
                out[row] = found
        return out


@dataclass(frozen=True)
class ForYou:
    """One member's ranked feed: the papers, each with its reason, in order."""

    picks: list[Pick]
    items: list[StoredPaper]  # the picks' papers, in the same order (a pick whose paper is gone is left out)
    seeds: Mapping[str, Seed] = field(default_factory=dict)  # by arxiv id: what the reasons refer to
    personal: bool = False  # False: the member has no history yet, the feed is what is trending
    total: int = 0  # papers in the whole ranked feed (`picks` and `items` may be one page of it)


def interests_of(conn: Connection, user_id: int, model: str | None) -> Interests:
    """Everything the ranking knows about a member, read now."""
    signs = store.interests(conn, user_id, SEED_LIMIT)
    said = store.feedback(conn, user_id, FEEDBACK_LIMIT)
    wanted = [s.arxiv_id for s in signs] + [i for i, kind in said.items() if kind == "less"]
    found = store.titles_and_authors(conn, [s.arxiv_id for s in signs]) if signs else {}
    vectors = _vectors(conn, model, wanted)
    seeds = tuple(
        Seed(
            arxiv_id=s.arxiv_id,
            title=found[s.arxiv_id][0],
            kind=s.kind,
            at=s.at,
            vector=vectors.get(s.arxiv_id),
            authors=tuple(author_key(a) for a in found[s.arxiv_id][1]),
        )
        for s in signs
        if s.arxiv_id in found
    )
    subscription = store_subscriptions.get_by_user(conn, user_id)
    topics: list[TopicSeed] = []
    if subscription is not None and model is not None:
        for topic in subscription.topics:
            if topic.vector is not None and topic.model == model:
                topics.append(TopicSeed(topic.query, np.frombuffer(topic.vector, dtype="<f4").copy()))
    return Interests(
        seeds=seeds,
        topics=tuple(topics),
        followed_authors={
            f.target_key: f.target_name for f in store_follows.followed(conn, user_id) if f.kind == "author"
        },
        less=tuple(vectors[i] for i, kind in said.items() if kind == "less" and i in vectors),
        hidden=frozenset(said) | {s.arxiv_id for s in seeds},
    )


def _vectors(conn: Connection, model: str | None, ids: list[str]) -> dict[str, np.ndarray]:
    if model is None or not ids:
        return {}
    return {
        i: np.frombuffer(raw, dtype="<f4").copy()
        for i, raw in store_embeddings.get_vectors(conn, model, list(dict.fromkeys(ids))).items()
    }


def for_you(
    conn: Connection,
    user_id: int,
    *,
    cache: PoolCache,
    model: str | None,
    now: datetime,
    limit: int = MAX_LIMIT,
    offset: int = 0,
    count: int | None = None,
) -> ForYou:
    """`user_id`'s feed: the best `limit` recent papers for them, each with why; of those, the papers of
    `count` picks from `offset` are read (a page of the feed; all of them when `count` is None)."""
    interests = interests_of(conn, user_id, model)
    pool = cache.get(conn, model, now)
    rows = pool.index.rows_by_id if pool.index is not None else {i: n for n, i in enumerate(pool.ids)}
    via = {
        i: why
        for i, why in store_follows.papers_via_follows(
            conn, user_id, now - timedelta(days=cache.window_days), VIA_LIMIT
        ).items()
        if i in rows
    }
    if via:
        pool = replace(pool, via=via)
    picks = rank(interests, pool, now, min(limit, MAX_LIMIT))
    shown = picks[offset : None if count is None else offset + count]
    found = store_papers.get_papers(conn, [p.arxiv_id for p in shown])
    kept = [p for p in shown if p.arxiv_id in found]
    return ForYou(
        picks=kept,
        items=[found[p.arxiv_id] for p in kept],
        seeds={s.arxiv_id: s for s in interests.seeds},
        personal=has_interests(interests, pool),
        total=len(picks),
    )


FEEDBACK_LABELS = {"hide": "Not interested", "less": "Less like this"}


def tell(conn: Connection, user_id: int, arxiv_id: str, kind: str, now: datetime) -> None:
    """Record what a member said about a paper on their feed: "hide" (Not interested: never show it again) or
    "less" (Less like this: that, and papers like it rank lower). The newest word about a paper wins."""
    if kind not in FEEDBACK_LABELS:
        raise InvalidInput(f"kind: say “hide” (not interested) or “less” (less like this), not “{kind[:40]}”")
    if store_papers.get_paper(conn, arxiv_id) is None:
        raise NotFound(f"no paper {arxiv_id[:80]} in this hub")
    store.set_feedback(conn, user_id, arxiv_id, kind, now)


def untell(conn: Connection, user_id: int, arxiv_id: str) -> bool:
    """Take back what a member said about a paper (Undo); False when there was nothing to take back."""
    return store.clear_feedback(conn, user_id, arxiv_id)


# --- the digest's "For you" section -------------------------------------------------------------------------


def pool_from(items: Sequence[StoredPaper], vectors: np.ndarray | None) -> Pool:
    """A ranking pool of `items` (a digest period's new papers) with their vector rows (None: no vectors)."""
    n = len(items)
    dates = [(i.paper.published_at or i.paper.updated_at) for i in items]
    return author_index(
        Pool(
            ids=tuple(i.paper.arxiv_id for i in items),
            vectors=vectors if vectors is not None else np.zeros((n, 0), dtype=np.float32),
            authors=tuple(tuple(author_key(a) for a in i.paper.authors) for i in items),
            published=np.array([d.timestamp() if d is not None else 0.0 for d in dates], dtype=np.float64),
            popularity=np.array([i.upvotes for i in items], dtype=np.float64),
            author_names=tuple(tuple(i.paper.authors) for i in items),
        )
    )


def digest_picks(
    conn: Connection, user_id: int, model: str | None, pool: Pool, now: datetime, limit: int
) -> list[tuple[int, str]]:
    """The member's best `limit` papers of a digest's pool, as (row in the pool, why), ranked as on
    /papers/for-you; empty while they have upvoted, saved, claimed or submitted nothing (the digest's other
    sections already hold their topics, followed authors and what is trending)."""
    interests = interests_of(conn, user_id, model)
    if not interests.seeds or not len(pool.ids):
        return []
    rows = {arxiv_id: n for n, arxiv_id in enumerate(pool.ids)}
    return [
        (rows[p.arxiv_id], reason_text(p.reason, interests.seeds))
        for p in rank(interests, pool, now, limit)
        if p.arxiv_id in rows and p.reason.kind != "trending"
    ]
