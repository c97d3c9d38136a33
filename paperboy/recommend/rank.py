"""Ranking a member's feed: pure functions of what they showed interest in and the papers to choose from.

`rank(interests, pool, now, limit)` scores every paper of the pool for one member and returns the best, each
with the one reason a card shows ("like *Paper X* you upvoted", "matches your topic *kv cache*", "by *Author*
you follow"). The same function ranks the web feed, the digest's "For you" section and bench/recommend.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


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
class Pool:
    """The papers to rank, as parallel arrays (row i of each is paper i)."""

    ids: tuple[str, ...]
    vectors: np.ndarray  # (n, dim) float32, L2-normalised; a row of zeros where a paper has no embedding
    authors: tuple[tuple[str, ...], ...]  # author keys per paper
    published: np.ndarray  # (n,) float64 POSIX seconds of each paper's date
    popularity: np.ndarray  # (n,) float64 >= 0: upvotes (upstream + ours); 0 when unknown
    # a reason the caller already knows, by paper id: "member:<username>" (a followed member upvoted or
    # submitted it), "org:<name>" (from a followed organization)
    via: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reason:
    kind: str  # "similar" | "author" | "topic" | "member" | "org" | "trending"
    label: str  # the title, name, topic or organization the card names
    arxiv_id: str | None = None  # for "similar" and "author": the seed paper it is like


@dataclass(frozen=True)
class Pick:
    arxiv_id: str
    score: float
    reason: Reason
