"""What a search asks and answers: plain data for the searcher, pages, API and CLI (no heavy imports)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from paperboy.categories import check_category
from paperboy.errors import InvalidInput
from paperboy.models import StoredPaper

MAX_QUERY_CHARS = 1000  # longer queries are cut: a 10 kB paste still gets an answer, in bounded time
CANDIDATES = 100  # per mode, before fusion
AUTHOR_CANDIDATES = 200  # papers of the people named in a query, ranked before the rest
MAX_PAGE = 50  # pages past this are refused: fused candidates are bounded anyway
_WORD = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class SearchQuery:
    text: str
    start: date | None = None
    end: date | None = None
    categories: tuple[str, ...] = ()
    page: int = 0
    limit: int = 20

    def __post_init__(self) -> None:
        if self.limit < 1 or self.limit > 100:
            raise InvalidInput(f"limit {self.limit} is out of range (1-100)")
        if self.page < 0 or self.page > MAX_PAGE:
            raise InvalidInput(f"page {self.page} is out of range (0-{MAX_PAGE})")
        if self.start and self.end and self.start > self.end:
            raise InvalidInput(f"the date range {self.start}..{self.end} ends before it starts")
        try:  # the one category check (paperboy/categories.py); spelled as arXiv spells them
            object.__setattr__(self, "categories", tuple(dict.fromkeys(map(check_category, self.categories))))
        except ValueError as exc:
            raise InvalidInput(f"category: {exc}") from None


@dataclass(frozen=True)
class Hit:
    item: StoredPaper
    score: float
    keyword_rank: int | None = None  # 1-based rank in the BM25 list, when it was there
    vector_rank: int | None = None


@dataclass(frozen=True)
class SearchResults:
    hits: list[Hit]
    total: int  # results there are pages of: the ranked candidates that passed the filters (bounded)
    modes: tuple[str, ...]  # which indexes answered: "id", "author", "keyword", "vector"
    terms: tuple[str, ...] = field(default_factory=tuple)  # the query's words, for highlighting
    # What matches, honestly counted (within the filters): papers holding the query's words (or the paper an
    # arXiv id names), whether or not they made the bounded results; `matches_capped`: at least that many.
    matches: int = 0
    related: int = 0  # papers among the results found by meaning alone (they share no word with the query)
    authors: tuple[str, ...] = ()  # people named in the query, as their papers spell them
    by_authors: int = 0  # their papers (all of them, within the filters): ranked first
    matches_capped: bool = False

    @property
    def empty(self) -> bool:
        """Nothing matches and nothing is related: the page says so and suggests what to change."""
        return not self.hits and self.matches == 0


def query_terms(text: str) -> tuple[str, ...]:
    """The words of a query, for highlighting (lower-cased, deduplicated, in order)."""
    seen: dict[str, None] = {}
    for w in re.findall(r"\w+", text.lower()):
        if len(w) > 1 or not w.isascii():
            seen.setdefault(w, None)
    return tuple(seen)[:32]


def has_words(text: str) -> bool:
    """False for empty and punctuation-only queries: they match nothing and run nothing."""
    return bool(_WORD.search(text))
