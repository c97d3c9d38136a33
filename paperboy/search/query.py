"""What a search asks and answers: plain data for the searcher, pages, API and CLI (no heavy imports)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from paperboy.errors import InvalidInput
from paperboy.models import StoredPaper

MAX_QUERY_CHARS = 1000  # longer queries are cut: a 10 kB paste still gets an answer, in bounded time
CANDIDATES = 100  # per mode, before fusion
MAX_PAGE = 50  # pages past this are refused: fused candidates are bounded anyway
_WORD = re.compile(r"\w", re.UNICODE)
# arXiv's archives, current and retired (https://arxiv.org/category_taxonomy): a category filter names one of
# them (`cs`) or a category in one (`cs.CL`); anything else is refused rather than silently matching nothing.
ARCHIVES = frozenset(
    """
    astro-ph cond-mat cs econ eess gr-qc hep-ex hep-lat hep-ph hep-th math math-ph nlin nucl-ex nucl-th
    physics q-bio q-fin quant-ph stat acc-phys adap-org alg-geom ao-sci atom-ph bayes-an chao-dyn chem-ph
    cmp-lg comp-gas dg-ga funct-an mtrl-th patt-sol plasm-ph q-alg solv-int supr-con
    """.split()  # noqa: SIM905 (a list literal would take one line per name)
)


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
        for c in self.categories:
            if not re.fullmatch(r"[a-z][a-z\-]*(\.[A-Za-z\-]+)?", c) or c.split(".")[0] not in ARCHIVES:
                raise InvalidInput(f"category {c!r} is not an arXiv category such as cs.CL or math")


@dataclass(frozen=True)
class Hit:
    item: StoredPaper
    score: float
    keyword_rank: int | None = None  # 1-based rank in the BM25 list, when it was there
    vector_rank: int | None = None


@dataclass(frozen=True)
class SearchResults:
    hits: list[Hit]
    total: int  # fused candidates that passed the filters (results are bounded by CANDIDATES per mode)
    modes: tuple[str, ...]  # which indexes answered: "id", "keyword", "vector"
    terms: tuple[str, ...] = field(default_factory=tuple)  # the query's words, for highlighting


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
