"""Ranking a member's feed: pure functions of what they showed interest in and the papers to choose from.

`rank(interests, pool, now, limit)` scores every paper of the pool for one member and returns the best, each
with the one reason a card shows ("like *Paper X* you upvoted", "matches your topic *kv cache*", "by *Author*
you follow"). The same function ranks the web feed, the digest's "For you" section and bench/recommend.py.

How a paper is scored (docs/recommend.md has the measurements behind each weight):
- **like your papers**: cosine to the member's seeds (upvoted, saved, claimed, submitted), each seed weighted
  by its kind and how recently they showed the interest; the best single seed (nearest neighbour) blended with
  the weighted centroid of all of them;
- **shared authors**: a paper by an author of a seed paper (weighted by how many seeds they are on, less for
  big teams), and a larger fixed bonus for an author the member follows;
- **topics**: cosine to the member's digest topics;
- **via**: a followed member upvoted or submitted it, or it comes from a followed organization;
- **priors**: a little popularity (log of upvotes) and freshness;
- minus **less like this**: closeness to papers the member marked so;
- never shown: the seeds themselves and `hidden`.
All cosines come from one float32 matrix product over the pool; authors are matched through an inverted index
(`author_index`), built once per pool, touching only the rows of the seeds' authors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

DAY = 86400.0

# kinds of seeds, and how much each says about the member
KIND_WEIGHT: Mapping[str, float] = {"upvote": 1.0, "save": 1.0, "claim": 1.2, "submit": 1.0}
SEED_HALF_LIFE_DAYS = 90.0  # an interest shown this long ago counts half as much beyond the floor below
SEED_FLOOR = 0.5  # ... but never less than this share: an old upvote still says something
NEAREST_WEIGHT = 2 / 3  # a soft maximum over the seeds' cosines (log-sum-exp at temperature NEAREST_T) ...
NEAREST_T = 0.05
CENTROID_WEIGHT = 1 / 3  # ... plus this much of the weighted centroid's cosine (at most 1 in all)
CENTER = 0.5  # cosines are taken after moving every query this much of the pool's mean vector away (what
# all papers share says nothing about the member: measured +0.01-0.04 recall@20, docs/recommend.md)
AUTHOR_WEIGHT = 1.0  # a paper sharing authors with the seeds: up to this much, saturating
FOLLOW_WEIGHT = 1.5  # a paper by an author the member follows: above anything similarity alone gives
TOPIC_WEIGHT = 1.0  # times the cosine to the nearest digest topic
VIA_WEIGHT = 0.35  # a followed member upvoted or submitted it, or a followed organization published it
LESS_WEIGHT = 0.6  # at most this much off for a paper like one marked "Less like this"
LESS_FROM = 0.3  # ... starting at this cosine, growing linearly to the full weight at 1
POPULARITY_WEIGHT = 0.02  # times log(1 + upvotes) ...
POPULARITY_CAP = 0.1  # ... at most this much
FRESH_WEIGHT = 0.05  # a paper published now gets this much, halving every FRESH_HALF_LIFE_DAYS
FRESH_HALF_LIFE_DAYS = 7.0


@dataclass(frozen=True)
class Seed:
    """A paper the member showed interest in."""

    arxiv_id: str
    title: str
    kind: str  # "upvote" | "save" | "claim" | "submit"
    at: datetime  # when they did it (UTC)
    vector: np.ndarray | None = None  # float32, L2-normalised; None when the paper has no embedding yet
    authors: tuple[str, ...] = ()  # author keys (paperboy.store.authors.author_key), in order


@dataclass(frozen=True)
class TopicSeed:
    """One of the member's digest topics (a search as typed) and its embedding."""

    query: str
    vector: np.ndarray  # float32, L2-normalised


@dataclass(frozen=True)
class Interests:
    """Everything about one member that ranking reads."""

    seeds: tuple[Seed, ...] = ()
    topics: tuple[TopicSeed, ...] = ()
    followed_authors: Mapping[str, str] = field(default_factory=dict)  # author key -> name as followed
    less: tuple[np.ndarray, ...] = ()  # vectors of papers marked "Less like this"
    hidden: frozenset[str] = frozenset()  # "Not interested", "Less like this", and what they already upvoted


@dataclass(frozen=True)
class PoolIndex:
    """Lookups over a pool built once (`author_index`) and reused for every member ranked against it.

    Rows count from the start of the papers the index was built on; a pool that is a tail of those papers
    (`tail`) sets `start` to its first row, and rows before it are ignored."""

    rows_by_author: Mapping[str, np.ndarray]  # author key -> ascending int64 rows of the papers they are on
    rows_by_id: Mapping[str, int]  # arxiv id -> row
    team_size: np.ndarray  # (n,) float32: number of author keys per paper (at least 1)
    mean: np.ndarray  # (dim,) float32: the mean of the papers' vectors
    start: int = 0


@dataclass(frozen=True)
class Pool:
    """The papers to rank, as parallel arrays (row i of each is paper i)."""

    ids: tuple[str, ...]
    vectors: np.ndarray  # (n, dim) float32, L2-normalised; a row of zeros where a paper has no embedding
    authors: tuple[tuple[str, ...], ...]  # author keys per paper
    published: np.ndarray  # (n,) float64 POSIX seconds of each paper's date
    popularity: np.ndarray  # (n,) float64 >= 0: upvotes (upstream + ours); 0 when unknown
    # a reason the caller already knows, by paper id: "member:<username>" (a followed member upvoted it),
    # "submitted:<username>" (submitted it), "org:<name>" (from a followed organization)
    via: Mapping[str, str] = field(default_factory=dict)
    # optional: authors as papers print them, parallel to `authors` (a card names "Jane Doe", not the key
    # "jane doe"); when absent the key is shown
    author_names: tuple[tuple[str, ...], ...] | None = None
    # optional: built once by `author_index(pool)`; without it `rank` builds what it needs on every call
    index: PoolIndex | None = None


@dataclass(frozen=True)
class Reason:
    kind: str  # "similar" | "author" | "topic" | "member" | "org" | "trending"
    label: str  # the title, name, topic or organization the card names
    arxiv_id: str | None = None  # for "similar" and "author": the seed paper it is like
    detail: str = ""  # for "member": "submit" when the followed member submitted it (else they upvoted it)


@dataclass(frozen=True)
class Pick:
    arxiv_id: str
    score: float
    reason: Reason


def author_index(pool: Pool) -> Pool:
    """The pool with its `index` built: author key -> rows, arxiv id -> row (once per pool, O(authors))."""
    buckets: dict[str, list[int]] = {}
    team = np.ones(len(pool.ids), dtype=np.float32)
    for row, keys in enumerate(pool.authors):
        distinct = dict.fromkeys(k for k in keys if k)
        team[row] = max(1, len(distinct))
        for key in distinct:
            buckets.setdefault(key, []).append(row)
    rows_by_author = {k: np.asarray(v, dtype=np.int64) for k, v in buckets.items()}
    rows_by_id = {arxiv_id: row for row, arxiv_id in enumerate(pool.ids)}
    mean = pool.vectors.mean(axis=0, dtype=np.float64).astype(np.float32) if len(pool.ids) else None
    if mean is None:
        mean = np.zeros(pool.vectors.shape[1] if pool.vectors.ndim == 2 else 0, dtype=np.float32)
    return replace(pool, index=PoolIndex(rows_by_author, rows_by_id, team, mean))


def tail(pool: Pool, start: int) -> Pool:
    """Rows `start`.. of an indexed pool, sharing its arrays and index (no copies of the vectors): for papers
    sorted by date, the papers published after a given day."""
    indexed = pool if pool.index is not None else author_index(pool)
    index = indexed.index
    if index is None:  # author_index always builds one
        raise ValueError("pool has no index")
    pool = indexed
    base = index.start
    return replace(
        pool,
        ids=pool.ids[start:],
        vectors=pool.vectors[start:],
        authors=pool.authors[start:],
        published=pool.published[start:],
        popularity=pool.popularity[start:],
        author_names=pool.author_names[start:] if pool.author_names is not None else None,
        index=replace(index, start=base + start),
    )


def has_interests(interests: Interests, pool: Pool) -> bool:
    """Whether anything about the member can order the pool (else they see trending)."""
    return bool(interests.seeds or interests.topics or interests.followed_authors or pool.via)


def seed_weights(seeds: Sequence[Seed], now: datetime) -> np.ndarray:
    """(k,) float32: each seed's kind weight times its recency (a floor plus a half-life decay)."""
    out = np.empty(len(seeds), dtype=np.float32)
    for j, seed in enumerate(seeds):
        age_days = max(0.0, (now - seed.at).total_seconds() / DAY)
        decay = 0.5 ** (age_days / SEED_HALF_LIFE_DAYS)
        out[j] = KIND_WEIGHT.get(seed.kind, 1.0) * (SEED_FLOOR + (1.0 - SEED_FLOOR) * decay)
    return out


def rank(
    interests: Interests,
    pool: Pool,
    now: datetime,
    limit: int,
    *,
    use_authors: bool = True,
) -> list[Pick]:
    """The member's best `limit` papers of the pool, best first, each with its strongest reason.

    Ties are broken by the newer paper, then by arxiv id. `use_authors=False` leaves shared and followed
    authors out (bench/recommend.py measures the ranker by its vectors alone that way)."""
    n = len(pool.ids)
    if n == 0 or limit <= 0:
        return []
    index = pool.index
    start = index.start if index is not None else 0
    excluded = _excluded_rows(interests, pool)

    if not has_interests(interests, pool):
        # trending: most upvoted first, then newest (the tie-break of _top)
        score = np.log1p(np.maximum(pool.popularity, 0.0))
        score[excluded] = -np.inf
        rows = _top(score, pool, limit)
        return [Pick(pool.ids[r], float(score[r]), Reason("trending", "")) for r in rows]

    seeds = [s for s in interests.seeds if s.vector is not None]
    topics = list(interests.topics)
    less = list(interests.less)
    queries: list[np.ndarray] = [np.asarray(s.vector, dtype=np.float32) for s in seeds]
    weights = seed_weights(seeds, now)
    if seeds:
        centroid = (weights[:, None] * np.stack(queries)).sum(axis=0)
        norm = float(np.linalg.norm(centroid))
        queries.append(centroid / norm if norm > 0 else centroid)
    queries += [np.asarray(t.vector, dtype=np.float32) for t in topics]
    queries += [np.asarray(v, dtype=np.float32) for v in less]

    parts: dict[str, np.ndarray] = {}  # contribution per reason kind, (n,) float32 each
    k = len(seeds)
    t0 = k + (1 if k else 0)  # first topic column
    best_seed = np.zeros(n, dtype=np.int64)
    best_topic = np.zeros(n, dtype=np.int64)
    penalty = np.zeros(n, dtype=np.float32)
    if queries:
        mean = index.mean if index is not None else pool.vectors.mean(axis=0, dtype=np.float64)
        queries.append(np.asarray(mean, dtype=np.float32))
        # (q + 1, n): the one pass over the pool's vectors; a row per query keeps what follows contiguous
        sims = np.stack(queries) @ pool.vectors.T
        # seeds, centroid and topics are compared after taking CENTER x the mean off (less like this is not)
        centered = sims[: t0 + len(topics)] - CENTER * sims[-1]
        if k:
            logits = centered[:k] * (1.0 / NEAREST_T) + np.log(weights / weights.sum())[:, None]
            best_seed = logits.argmax(axis=0)
            top = logits.max(axis=0)
            soft = NEAREST_T * (top + np.log(np.exp(logits - top).sum(axis=0)))
            parts["similar"] = NEAREST_WEIGHT * soft + CENTROID_WEIGHT * centered[k]
        if topics:
            tsims = centered[t0:]
            best_topic = tsims.argmax(axis=0)
            parts["topic"] = TOPIC_WEIGHT * tsims.max(axis=0)
        if less:
            closest = sims[t0 + len(topics) : -1].max(axis=0)
            penalty = LESS_WEIGHT * np.clip((closest - LESS_FROM) / (1.0 - LESS_FROM), 0.0, 1.0)

    shared: SharedAuthors | None = None
    followed_rows: dict[int, str] = {}  # row -> the followed author's key
    if use_authors:
        shared = _shared_authors(interests.seeds, weights_by_id(seeds, weights), pool)
        if shared is not None:
            parts["author"] = AUTHOR_WEIGHT * (1.0 - np.exp(-shared.strength))
        if interests.followed_authors:
            for key in sorted(interests.followed_authors):
                for r in _author_rows(pool, key):
                    followed_rows.setdefault(int(r), key)
            if followed_rows:
                follow = np.zeros(n, dtype=np.float32)
                follow[list(followed_rows)] = FOLLOW_WEIGHT
                parts["author"] = np.maximum(parts.get("author", 0.0), follow)

    via_rows: dict[int, str] = {}
    if pool.via:
        rows_by_id = _rows_by_id(pool)
        for arxiv_id, why in pool.via.items():
            r = rows_by_id.get(arxiv_id)
            if r is not None and 0 <= r - start < n:
                via_rows[r - start] = why
        if via_rows:
            via = np.zeros(n, dtype=np.float32)
            via[list(via_rows)] = VIA_WEIGHT
            parts["via"] = via

    score = _prior(pool, now) - penalty
    for part in parts.values():
        score = score + part
    score[excluded] = -np.inf
    rows = _top(score, pool, limit)

    picks: list[Pick] = []
    for r in rows:
        kind = max(parts, key=lambda p: (float(parts[p][r]), p)) if parts else ""
        if not parts or float(parts[kind][r]) <= 0.0:
            reason = Reason("trending", "")
        elif kind == "similar":
            seed = seeds[int(best_seed[r])]
            reason = Reason("similar", seed.title, seed.arxiv_id)
        elif kind == "topic":
            reason = Reason("topic", topics[int(best_topic[r])].query)
        elif kind == "via":
            what, _, who = via_rows[int(r)].partition(":")
            if what == "org":
                reason = Reason("org", who)
            else:
                reason = Reason("member", who, detail="submit" if what == "submitted" else "")
        elif r in followed_rows:  # a followed author outweighs any shared one (FOLLOW_WEIGHT > AUTHOR_WEIGHT)
            reason = Reason("author", interests.followed_authors[followed_rows[r]], None)
        elif shared is not None:
            key = shared.keys[int(shared.top_key[r])]
            seed = interests.seeds[shared.seed_of_key[key]]
            reason = Reason("author", _display_name(pool, r, key), seed.arxiv_id)
        else:
            reason = Reason("trending", "")
        picks.append(Pick(pool.ids[r], float(score[r]), reason))
    return picks


def weights_by_id(seeds: Sequence[Seed], weights: np.ndarray) -> dict[str, float]:
    return {s.arxiv_id: float(w) for s, w in zip(seeds, weights, strict=True)}


def reason_text(reason: Reason, seeds: Iterable[Seed] = ()) -> str:
    """The few words a card shows for a reason (plain text; the template escapes and styles it)."""
    by_id = {s.arxiv_id: s for s in seeds}  # any iterable, read once
    kinds = {i: s.kind for i, s in by_id.items()}
    if reason.kind == "similar":
        return f"Like “{_short(reason.label)}”, {_seed_clause(kinds.get(reason.arxiv_id or ''))}"
    if reason.kind == "author":
        if reason.arxiv_id is None:
            return f"By {reason.label}, whom you follow"
        seed = by_id.get(reason.arxiv_id)
        title = seed.title if seed is not None else None
        if title is None:
            return f"By {reason.label}, an author of a paper you liked"
        clause = _seed_clause(kinds.get(reason.arxiv_id))
        return f"By {reason.label}, an author of “{_short(title)}”, {clause}"
    if reason.kind == "topic":
        return f"Matches your topic “{_short(reason.label)}”"
    if reason.kind == "member":
        done = "Submitted" if reason.detail == "submit" else "Upvoted"
        return f"{done} by @{reason.label}, whom you follow"
    if reason.kind == "org":
        return f"From {reason.label}, which you follow"
    return "Trending"


TITLE_CHARS = 60  # a reason quotes at most this much of a title (a card's reason fits a line or two)


def _short(title: str) -> str:
    """`title` cut at a word boundary to TITLE_CHARS, with an ellipsis when cut (a long one made a reason
    run to four lines on a phone)."""
    text = " ".join(title.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(" ,.:;-–—")
    return (cut or text[:TITLE_CHARS]) + "…"


def _seed_clause(kind: str | None) -> str:
    return {
        "upvote": "which you upvoted",
        "save": "which you saved",
        "claim": "a paper of yours",
        "submit": "which you submitted",
    }.get(kind or "", "which you liked")


def _prior(pool: Pool, now: datetime) -> np.ndarray:
    """(n,) float32: a little popularity and freshness, added to every paper's score."""
    pop = np.minimum(POPULARITY_WEIGHT * np.log1p(np.maximum(pool.popularity, 0.0)), POPULARITY_CAP)
    age_days = np.maximum(0.0, (now.timestamp() - pool.published) / DAY).astype(np.float32)
    fresh = FRESH_WEIGHT * np.exp2(age_days * np.float32(-1.0 / FRESH_HALF_LIFE_DAYS))
    return (pop + fresh).astype(np.float32)


def _top(score: np.ndarray, pool: Pool, limit: int) -> list[int]:
    """Rows of the `limit` best scores, ties by newer then arxiv id; -inf rows never."""
    finite = np.isfinite(score)
    count = int(finite.sum())
    if count == 0:
        return []
    limit = min(limit, count)
    if limit < len(score):
        kth = np.partition(score, len(score) - limit)[len(score) - limit]
        cand = np.flatnonzero(score >= kth)
    else:
        cand = np.arange(len(score))
    cand = cand[np.isfinite(score[cand])]
    ids = np.array([pool.ids[i] for i in cand])
    order = np.lexsort((ids, -pool.published[cand], -score[cand].astype(np.float64)))
    return [int(cand[o]) for o in order[:limit]]


def _rows_by_id(pool: Pool) -> Mapping[str, int]:
    if pool.index is not None:
        return pool.index.rows_by_id
    return {arxiv_id: row for row, arxiv_id in enumerate(pool.ids)}


def _author_rows(pool: Pool, key: str) -> np.ndarray:
    """This pool's rows of the papers `key` is an author of."""
    if pool.index is None:
        return np.asarray([r for r, keys in enumerate(pool.authors) if key in keys], dtype=np.int64)
    rows = pool.index.rows_by_author.get(key)
    if rows is None:
        return np.empty(0, dtype=np.int64)
    start = pool.index.start
    if start:
        rows = rows[np.searchsorted(rows, start) :] - start
    return rows


def _team_size(pool: Pool, rows: np.ndarray) -> np.ndarray:
    if pool.index is not None:
        return pool.index.team_size[rows + pool.index.start]
    return np.asarray([max(1, len(set(pool.authors[r]))) for r in rows], dtype=np.float32)


def _excluded_rows(interests: Interests, pool: Pool) -> np.ndarray:
    """Rows never shown: the seeds and what the member hid."""
    rows_by_id = _rows_by_id(pool)
    start = pool.index.start if pool.index is not None else 0
    n = len(pool.ids)
    out = []
    for arxiv_id in (*(s.arxiv_id for s in interests.seeds), *interests.hidden):
        r = rows_by_id.get(arxiv_id)
        if r is not None and 0 <= r - start < n:
            out.append(r - start)
    return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True)
class SharedAuthors:
    strength: np.ndarray  # (n,) float32
    top_key: np.ndarray  # (n,) int64: position in `keys` of the author that gave a row the most; -1 for none
    keys: tuple[str, ...]
    seed_of_key: Mapping[str, int]  # author key -> position of the seed where they weigh the most


def _shared_authors(
    seeds: Sequence[Seed], weight_of: Mapping[str, float], pool: Pool
) -> SharedAuthors | None:
    """How much each paper shares authors with the seeds: for each seed author, the sum over the seeds they
    are on of the seed's weight divided by the square root of that seed's team size (one of two authors says
    more than one of fifty), summed over the paper's authors. Also, per matched row, the seed and author key
    that gave the most (for the reason). None when no paper shares an author."""
    by_key: dict[str, float] = {}
    best_seed_of_key: dict[str, tuple[float, int]] = {}
    for pos, seed in enumerate(seeds):
        keys = [k for k in dict.fromkeys(seed.authors) if k]
        if not keys:
            continue
        w = weight_of.get(seed.arxiv_id, float(KIND_WEIGHT.get(seed.kind, 1.0)) * SEED_FLOOR)
        share = w / np.sqrt(len(keys))
        for key in keys:
            by_key[key] = by_key.get(key, 0.0) + share
            if share > best_seed_of_key.get(key, (-1.0, 0))[0]:
                best_seed_of_key[key] = (share, pos)
    if not by_key:
        return None
    n = len(pool.ids)
    strength = np.zeros(n, dtype=np.float32)
    top_share = np.zeros(n, dtype=np.float32)
    top_key = np.full(n, -1, dtype=np.int64)
    keys_in_order = sorted(by_key, key=lambda k: (-by_key[k], k))
    for i, key in enumerate(keys_in_order):
        rows = _author_rows(pool, key)
        if rows.size == 0:
            continue
        strength[rows] += by_key[key]
        better = by_key[key] > top_share[rows]
        top_share[rows[better]] = by_key[key]
        top_key[rows[better]] = i
    matched = np.flatnonzero(top_key >= 0)
    if matched.size == 0:
        return None
    # a paper of a big team shares one of many names: damp by its own team size too
    strength[matched] /= np.sqrt(np.maximum(1.0, _team_size(pool, matched) / 4.0))
    return SharedAuthors(
        strength, top_key, tuple(keys_in_order), {k: p for k, (_, p) in best_seed_of_key.items()}
    )


def _display_name(pool: Pool, row: int, key: str) -> str:
    if pool.author_names is not None:
        for k, name in zip(pool.authors[row], pool.author_names[row], strict=False):
            if k == key:
                return name
    return key
