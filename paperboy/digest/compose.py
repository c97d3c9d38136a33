"""What one subscriber's digest holds: pure functions over a `Pool`, the papers of one period.

Sections, in order: what is trending (the period's featured papers, hottest first), then "For you" (a
member's new papers ranked by paperboy.recommend from what they upvoted, saved and claimed, each with why;
given to `compose` ready-made, up to half of what trending leaves), then one section per
topic (a free-text search, or a search saved from the search page), then one per followed author, member
and organization (the subscription's own authors and, for a member's digest, their follows that go into it:
`Followed`, gathered by digest/followed.py; an author's new papers are matched among the period's, a
member's or an organization's papers come ready-made: what they upvoted, submitted or featured). Every
paper appears once (in its first section). The subscriber's categories, when set, narrow every section; their
excluded words and a topic's own `-word`s leave papers out. `max_papers` bounds the whole digest: trending
takes a third of it when there are topics or authors (all of it otherwise), the rest is shared among them.

A topic matches a new paper the way search does, in two ways fused by reciprocal rank: by keyword (every word
of the topic in the title or abstract, scored by BM25-style idf weights over the period's papers) and by
meaning (cosine similarity of the topic's embedding to the paper's of at least MIN_SIMILARITY). The
embeddings are those already stored for search, so composing runs no model.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from paperboy.models import StoredPaper, Subscription, Topic, in_category
from paperboy.search.fusion import rrf

MIN_SIMILARITY = 0.45  # all-MiniLM-L6-v2: related abstracts score 0.45-0.8 against a short query
PER_TOPIC_CANDIDATES = 50
STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it"),
        *("of", "on", "or", "the", "to", "with", "via", "using", "towards", "toward"),
    }
)
_WORD = re.compile(r"\w+", re.UNICODE)
_NEGATIVE = re.compile(r'(?:^|\s)-(?:"([^"]+)"|(\S+))')


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.casefold()) if len(w) > 1 or not w.isascii()]


def _stem(w: str) -> str:
    """A light plural fold (attention/attentions, caches/cache) so topics match either form."""
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def parse_topic(query: str) -> tuple[str, tuple[str, ...]]:
    """("speculative decoding", ("medical",)) from "speculative decoding -medical" (also -"two words")."""
    negatives = tuple(" ".join(words(a or b)) for a, b in _NEGATIVE.findall(query) if words(a or b))
    positive = _NEGATIVE.sub(" ", query)
    return " ".join(positive.split()), negatives


def _phrase_in(phrase: str, text_words: Sequence[str]) -> bool:
    wanted = [_stem(w) for w in phrase.split()]
    if not wanted:
        return False
    stems = [_stem(w) for w in text_words]
    n = len(wanted)
    return any(stems[i : i + n] == wanted for i in range(len(stems) - n + 1))


def category_matches(categories: Sequence[str], wanted: Sequence[str]) -> bool:
    """A paper's categories against followed ones; following none means every category."""
    return not wanted or in_category(categories, wanted)


def _fold_name(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or name
    return " ".join(plain.casefold().replace(".", " ").split())


def author_matches(followed: str, authors: Sequence[str]) -> bool:
    """Same name (case, accents and dots aside), or same surname and first initial ("A. Lovelace")."""
    want = _fold_name(followed).split()
    if not want:
        return False
    for a in authors:
        have = _fold_name(a).split()
        if have == want:
            return True
        if (
            have
            and have[-1] == want[-1]
            and have[0][:1] == want[0][:1]
            and (len(have[0]) == 1 or len(want[0]) == 1)
        ):
            return True
    return False


@dataclass
class Pool:
    """The papers a period's digests draw from, prepared once for every subscriber due in that period."""

    trending: list[StoredPaper]  # featured in the period, hottest first
    fresh: list[StoredPaper]  # new in the period (published in its window)
    vectors: np.ndarray | None = None  # (len(fresh), dim) float32, rows of zeros where a paper has none
    _words: list[list[str]] = field(default_factory=list)
    _stems: list[set[str]] = field(default_factory=list)
    _idf: dict[str, float] = field(default_factory=dict)
    _cache: dict[tuple[str, tuple[str, ...], bytes], list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._words = [words(f"{i.paper.title} {i.paper.abstract}") for i in self.fresh]
        self._stems = [{_stem(w) for w in ws} for ws in self._words]
        df: dict[str, int] = {}
        for stems in self._stems:
            for s in stems:
                df[s] = df.get(s, 0) + 1
        n = max(1, len(self.fresh))
        self._idf = {s: math.log(1 + (n - c + 0.5) / (c + 0.5)) for s, c in df.items()}
        self._trend_words = [words(f"{i.paper.title} {i.paper.abstract}") for i in self.trending]

    def excluded_item(self, item: StoredPaper, phrases: Sequence[str]) -> bool:
        """`excluded` for a paper from outside the pool (a followed member's upvote, an organization's)."""
        return bool(phrases) and any(
            _phrase_in(p, words(f"{item.paper.title} {item.paper.abstract}")) for p in phrases
        )

    def excluded(self, index: int, phrases: Sequence[str], *, trending: bool = False) -> bool:
        text = (self._trend_words if trending else self._words)[index]
        return any(_phrase_in(p, text) for p in phrases)

    def topic_matches(self, query: str, vector: np.ndarray | None) -> list[int]:
        """Indexes into `fresh` matching a topic's positive text, best first (cached per run)."""
        key = (query, (), vector.tobytes() if vector is not None else b"")
        if key in self._cache:
            return self._cache[key]
        terms = [_stem(w) for w in words(query) if w not in STOPWORDS] or [_stem(w) for w in words(query)]
        keyword: list[tuple[float, int]] = []
        if terms:
            for i, stems in enumerate(self._stems):
                if all(t in stems for t in terms):
                    keyword.append((sum(self._idf.get(t, 0.0) for t in terms), i))
        keyword.sort(key=lambda x: (-x[0], x[1]))
        rankings = [[str(i) for _, i in keyword[:PER_TOPIC_CANDIDATES]]]
        if vector is not None and self.vectors is not None and len(self.fresh):
            sims = self.vectors @ vector.astype(np.float32)
            top = np.argsort(-sims)[:PER_TOPIC_CANDIDATES]
            rankings.append([str(int(i)) for i in top if sims[i] >= MIN_SIMILARITY])
        fused = [int(doc) for doc, _ in rrf(rankings, weights=[0.7, 1.0][: len(rankings)])]
        self._cache[key] = fused
        return fused


@dataclass(frozen=True)
class Followed:
    """Something a member follows, for their digest: an author (matched among the period's new papers), or
    a member or organization with the papers it brought in the period (upvoted, submitted, featured)."""

    kind: str  # "author" | "member" | "org"
    name: str  # the author's name, the member's username, the organization's full name
    papers: tuple[StoredPaper, ...] = ()  # member / org: newest first


@dataclass(frozen=True)
class Section:
    kind: str  # "trending" | "for_you" | "topic" | "author" | "member" | "org"
    title: str
    items: tuple[StoredPaper, ...]
    notes: Mapping[str, str] = field(default_factory=dict)  # by arxiv id: why it is here ("For you")


@dataclass(frozen=True)
class Digest:
    subscription: Subscription
    sections: tuple[Section, ...]

    @property
    def total(self) -> int:
        return sum(len(s.items) for s in self.sections)

    @property
    def papers(self) -> list[StoredPaper]:
        return [i for s in self.sections for i in s.items]


def _vector(topic: Topic, dim: int | None) -> np.ndarray | None:
    if topic.vector is None or dim is None or len(topic.vector) != 4 * dim:
        return None
    return np.frombuffer(topic.vector, dtype=np.float32)


def compose(
    sub: Subscription,
    pool: Pool,
    for_you: Sequence[tuple[int, str]] = (),
    followed: Sequence[Followed] = (),
) -> Digest:
    """The subscriber's digest from the period's pool (see the module docstring for the rules). `for_you`:
    the member's ranked picks among `pool.fresh`, best first, as (index into `fresh`, why); `followed`: what
    the member follows that goes into their digest."""
    budget = max(1, sub.max_papers)
    authors = list(sub.authors)
    folded = {_fold_name(a) for a in authors}
    for f in followed:
        if f.kind == "author" and _fold_name(f.name) not in folded:
            authors.append(f.name)
            folded.add(_fold_name(f.name))
    others = [f for f in followed if f.kind != "author"]
    rest = len(sub.topics) + len(authors) + len(others)
    sources = rest + (1 if for_you else 0)
    trend_budget = max(1, budget // 3) if sources else budget
    seen: set[str] = set()
    sections: list[Section] = []
    dim = pool.vectors.shape[1] if pool.vectors is not None else None

    def keep(item: StoredPaper) -> bool:
        return item.paper.arxiv_id not in seen and category_matches(item.paper.categories, sub.categories)

    trending: list[StoredPaper] = []
    for i, item in enumerate(pool.trending):
        if len(trending) >= trend_budget:
            break
        if keep(item) and not pool.excluded(i, sub.exclude, trending=True):
            trending.append(item)
            seen.add(item.paper.arxiv_id)
    if trending:
        sections.append(Section("trending", "Trending", tuple(trending)))

    left = budget - len(trending)
    mine: list[StoredPaper] = []
    notes: dict[str, str] = {}
    share = max(1, left // 2) if rest else left
    for i, why in for_you:
        if len(mine) >= min(share, left):
            break
        item = pool.fresh[i]
        if keep(item) and not pool.excluded(i, sub.exclude):
            mine.append(item)
            notes[item.paper.arxiv_id] = why
            seen.add(item.paper.arxiv_id)
    if mine:
        sections.append(Section("for_you", "For you", tuple(mine), notes))
    left -= len(mine)
    wanted: list[tuple[str, str, list[StoredPaper]]] = []
    for topic in sub.topics:
        positive, negatives = parse_topic(topic.query)
        if not positive:
            continue
        hits = [
            pool.fresh[i]
            for i in pool.topic_matches(positive, _vector(topic, dim))
            if not pool.excluded(i, (*sub.exclude, *negatives))
            and category_matches(pool.fresh[i].paper.categories, topic.categories)
        ]
        wanted.append(("topic", topic.query, hits))
    for name in authors:
        hits = [
            item
            for i, item in enumerate(pool.fresh)
            if author_matches(name, item.paper.authors) and not pool.excluded(i, sub.exclude)
        ]
        wanted.append(("author", name, hits))
    for f in others:
        wanted.append((f.kind, f.name, [p for p in f.papers if not pool.excluded_item(p, sub.exclude)]))
    # Share what is left fairly: round-robin over the sources, best matches first.
    picked: list[list[StoredPaper]] = [[] for _ in wanted]
    cursors = [0] * len(wanted)
    while left > 0:
        progressed = False
        for n, (_, _, hits) in enumerate(wanted):
            while cursors[n] < len(hits):
                item = hits[cursors[n]]
                cursors[n] += 1
                if keep(item):
                    picked[n].append(item)
                    seen.add(item.paper.arxiv_id)
                    left -= 1
                    progressed = True
                    break
            if left <= 0:
                break
        if not progressed:
            break
    for (kind, title, _), items in zip(wanted, picked, strict=True):
        if items:
            sections.append(Section(kind, title, tuple(items)))
    return Digest(sub, tuple(sections))
