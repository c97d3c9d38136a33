"""The data behind every list page and its JSON twin: one function per listing, called by pages, the API
and the Atom feeds alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy.engine import Connection

from paperboy.categories import check_categories
from paperboy.errors import InvalidInput, NotFound
from paperboy.models import StoredPaper, parse_arxiv_id
from paperboy.periods import Period, day_period
from paperboy.ranking import featured_at, rank_trending, top_order_key
from paperboy.ranking import paper_signals as signals
from paperboy.search.query import (
    CANDIDATES,
    MAX_PAGE,
    MAX_QUERY_CHARS,
    Hit,
    SearchQuery,
    SearchResults,
    has_words,
    query_terms,
)
from paperboy.store import papers as store

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher

Sort = Literal["upvotes", "publishedAt", "trending"]
SORTS: tuple[str, ...] = ("upvotes", "publishedAt", "trending")


def sort_items(items: list[StoredPaper], sort: Sort, now: datetime) -> list[StoredPaper]:
    if sort == "trending":
        return rank_trending(items, signals, now)
    if sort == "publishedAt":
        return sorted(items, key=lambda i: (featured_at(i), i.paper.arxiv_id), reverse=True)
    # upvotes: most voted first, as on huggingface.co/papers; ties by newest featuring
    return sorted(
        items, key=lambda i: top_order_key(i.upvotes, featured_at(i), i.paper.arxiv_id), reverse=True
    )


def parse_sort(value: str | None, default: Sort = "upvotes") -> Sort:
    if value is None or value == "":
        return default
    if value not in SORTS:
        raise InvalidInput(f"sort {value!r} is not one of {', '.join(SORTS)}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Listing:
    """A list of featured papers for a period (or the trending window), sorted, with navigation."""

    kind: str  # "day" | "week" | "month" | "trending" | "all"
    period: Period | None
    items: list[StoredPaper]
    sort: Sort
    previous: Period | None = None
    next: Period | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.items)

    def page(self, p: int, limit: int) -> list[StoredPaper]:
        return self.items[p * limit : (p + 1) * limit]


def period_listing(
    conn: Connection, period: Period, sort: Sort, now: datetime, submitter: str | None = None
) -> Listing:
    """Papers featured in a day, week or month, with the neighbouring periods that have papers."""
    items = store.featured(conn, store.FeaturedQuery(period.start, period.end, submitter))
    if period.kind == "day":
        before, after = store.neighbour_days(conn, period.start)
        prev = day_period(before) if before else None
        nxt = day_period(after) if after else None
    else:
        # A neighbour is offered only when it exists in the calendar and papers were featured in or beyond it.
        earliest, latest = store.earliest_featured_day(conn), store.latest_featured_day(conn)
        prev, nxt = _shifted(period, -1), _shifted(period, 1)
        if prev is not None and (earliest is None or prev.end < earliest):
            prev = None
        if nxt is not None and (latest is None or nxt.start > latest):
            nxt = None
    return Listing(period.kind, period, sort_items(items, sort, now), sort, prev, nxt)


def _shifted(period: Period, steps: int) -> Period | None:
    try:
        return period.shifted(steps)
    except InvalidInput:  # before year 1 or after 9999
        return None


def latest_day(conn: Connection) -> date | None:
    return store.latest_featured_day(conn)


def trending_listing(conn: Connection, now: datetime, days: int, submitter: str | None = None) -> Listing:
    """Papers featured in the last `days` days (counted back from the newest featured day), hottest first.

    Counting back from the newest featured day rather than today keeps the page useful on an instance that
    has not synced for a while (or runs on demo data).
    """
    newest = store.latest_featured_day(conn)
    if newest is None:
        return Listing("trending", None, [], "trending")
    start = newest - timedelta(days=days - 1)
    items = store.featured(conn, store.FeaturedQuery(start, None, submitter))
    # Rank as of the window's end, so a stale window still weighs engagement against age sensibly.
    ref = now if newest >= now.date() else datetime.combine(newest + timedelta(days=1), time(0), tzinfo=UTC)
    ranked = rank_trending(items, signals, ref)
    return Listing("trending", Period("trending", start, newest), ranked, "trending")


def recent_featured(conn: Connection, p: int, limit: int, submitter: str | None = None) -> list[StoredPaper]:
    """Page `p` of everything ever on the daily list, the latest listed first (by day, then time listed)."""
    return store.featured_page(conn, store.FeaturedQuery(None, None, submitter), p * limit, limit)


def all_featured(conn: Connection, sort: Sort, now: datetime, submitter: str | None = None) -> Listing:
    items = store.featured(conn, store.FeaturedQuery(None, None, submitter))
    return Listing("all", None, sort_items(items, sort, now), sort)


def paper(conn: Connection, arxiv_id: str) -> StoredPaper:
    found = store.get_paper(conn, arxiv_id)
    if found is None:
        raise NotFound(f"paper {arxiv_id} is not in this hub")
    return found


def search(conn: Connection, searcher: Searcher | None, q: SearchQuery) -> SearchResults:
    """Search results for the search page, its feed, the API and the CLI.

    With a Searcher (what `paperboy serve` builds): hybrid BM25 + vector search. Without one (an app built
    over a bare database, e.g. in tests): an arXiv id first, then the store's plain keyword scan.
    """
    if searcher is not None:
        return searcher.search(conn, q)
    text = q.text.strip()[:MAX_QUERY_CHARS]
    if not has_words(text):
        return SearchResults([], 0, ())
    parsed = parse_arxiv_id(text)
    exact = store.get_paper(conn, parsed[0]) if parsed is not None else None
    found = store.keyword_search(conn, text, CANDIDATES)
    items = [exact] if exact is not None else []
    items += [i for i in found if exact is None or i.paper.arxiv_id != exact.paper.arxiv_id]
    if q.start or q.end or q.categories:
        keep = store.filter_ids(conn, [i.paper.arxiv_id for i in items], q.start, q.end, q.categories)
        items = [i for i in items if i.paper.arxiv_id in keep]
    window = items[q.page * q.limit : (q.page + 1) * q.limit]
    hits = [Hit(i, 1.0 / (n + 1)) for n, i in enumerate(window, q.page * q.limit)]
    return SearchResults(
        hits,
        len(items),
        ("id", "keyword") if exact else ("keyword",),
        query_terms(text),
        matches=len(items),
        matches_capped=len(found) >= CANDIDATES,  # the scan stops there: at least that many
    )


def search_summary(results: SearchResults, shown: str = "") -> str:
    """A search's counts in words, for the page's subtitle and the CLI: "6 papers by Song Han · 25 papers
    match “Song Han” · 3 related by meaning" (`shown`: the query as the sentence names it, if at all)."""
    parts: list[str] = []
    if results.authors:
        n = results.by_authors
        parts.append(f"{n:,} paper{'s' if n != 1 else ''} by {' or '.join(results.authors)}")
    target = f" {shown}" if shown else ""
    n = results.matches
    if n == 0:
        parts.append(f"No papers match{target}")
    elif n == 1 and not results.matches_capped:
        parts.append(f"1 paper matches{target}")
    else:
        parts.append(f"{n:,}{'+' if results.matches_capped else ''} papers match{target}")
    if results.related:
        parts.append(f"{results.related:,} related by meaning")
    return " · ".join(parts)


@dataclass(frozen=True)
class SearchAdvice:
    """What an empty search result suggests, for the page, the API (`X-Search-Suggestion`) and the CLI."""

    message: str  # plain ASCII, no user text: it also goes out as an HTTP header
    without_filters: int = 0  # papers matching the words without the filters (0: none, or none were set)


def search_advice(
    conn: Connection, searcher: Searcher | None, q: SearchQuery, results: SearchResults
) -> SearchAdvice | None:
    """None when something matched. Else what to try: dropping the filters when the words match without
    them (one more search, counted, not paged), or other words."""
    if results.hits or results.matches or not has_words(q.text):
        return None
    if q.start or q.end or q.categories:
        unfiltered = search(conn, searcher, SearchQuery(q.text, limit=1))
        n = unfiltered.matches + unfiltered.related
        if n:
            plural = "paper matches" if n == 1 else "papers match"
            more = "+" if unfiltered.matches_capped else ""
            return SearchAdvice(
                f"No papers match with these filters; {n:,}{more} {plural} without them: widen the dates or "
                "drop the categories.",
                n,
            )
        return SearchAdvice(
            "No papers match, with or without the filters: check the spelling, try fewer or other words, "
            "a person's full name, or an arXiv id."
        )
    return SearchAdvice(
        "No papers match: check the spelling, try fewer or other words, a person's full name, or an arXiv id."
    )


def search_results(
    conn: Connection, q: str, limit: int, searcher: Searcher | None = None
) -> list[StoredPaper]:
    """The first `limit` papers for a search box (an arXiv id or abs/pdf URL brings that paper first)."""
    return [h.item for h in search(conn, searcher, SearchQuery(q, limit=limit)).hits]


def papers_page(conn: Connection, cursor: str | None, limit: int) -> tuple[list[StoredPaper], str | None]:
    """Every paper of the hub, newest arXiv date first, a keyset page at a time (InvalidInput: bad cursor)."""
    return store.page_papers(conn, cursor, limit)


# --- search parameters, shared by the search page, its feed, the API and the CLI ---------------------------

MAX_CATEGORIES = 20  # category filters per search (any-of)
MODE_LABELS = {"id": "arXiv id", "author": "name", "keyword": "keyword", "vector": "meaning"}


def parse_search_date(field_name: str, value: str | None) -> date | None:
    """A `from` / `to` filter: YYYY-MM-DD (an arXiv date), None when empty; InvalidInput names the field."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) != 10 or text[4] != "-" or text[7] != "-":  # fromisoformat takes 20250301, 2025-W09-1
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field_name}: {text[:40]!r} is not a date in YYYY-MM-DD form") from None


def parse_categories(values: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Category filters, repeated (`category=cs.CL&category=cs.LG`) or comma-separated, deduplicated."""
    found: dict[str, None] = {}
    for value in values or ():
        for part in value.split(","):
            if part.strip():
                found.setdefault(part.strip(), None)
    if len(found) > MAX_CATEGORIES:
        raise InvalidInput(f"category: at most {MAX_CATEGORIES} categories per search (got {len(found)})")
    try:
        return check_categories(found)
    except ValueError as exc:
        raise InvalidInput(f"category: {exc}") from None


def search_query(
    text: str,
    *,
    start: str | date | None = None,
    end: str | date | None = None,
    categories: list[str] | tuple[str, ...] | None = None,
    page: int = 0,
    limit: int = 20,
) -> SearchQuery:
    """A SearchQuery from outside input: the text trimmed and cut to MAX_QUERY_CHARS, dates and categories
    checked. Bad input is InvalidInput naming the field (`from`, `to`, `category`, `p`, `limit`)."""
    first = start if isinstance(start, date) or start is None else parse_search_date("from", start)
    last = end if isinstance(end, date) or end is None else parse_search_date("to", end)
    if first and last and first > last:
        raise InvalidInput(f"from {first} is after to {last}: the date range is empty")
    if page < 0 or page > MAX_PAGE:
        raise InvalidInput(f"p: page {page} is out of range (0-{MAX_PAGE})")
    if limit < 1 or limit > 100:
        raise InvalidInput(f"limit: {limit} is out of range (1-100)")
    return SearchQuery(
        text.strip()[:MAX_QUERY_CHARS],
        first,
        last,
        parse_categories(categories),
        page=page,
        limit=limit,
    )


def modes_label(modes: tuple[str, ...]) -> str:
    """`keyword + meaning`: which indexes answered a search, in words."""
    return " + ".join(MODE_LABELS.get(m, m) for m in modes)


def meaning_state(searcher: Searcher | None) -> Literal["off", "indexing", "on"]:
    """Search by meaning: "off" (no searcher or no model), "indexing" (no vector has landed yet), or "on"."""
    if searcher is None or searcher.vector is None or searcher.embedder is None:
        return "off"
    return "on" if len(searcher.vector) > 0 else "indexing"


def similar(conn: Connection, searcher: Searcher | None, arxiv_id: str, k: int) -> list[Hit]:
    """The papers nearest to `arxiv_id` by meaning, nearest first (NotFound for a paper not in the hub).

    Empty without a searcher (or a model), and while the paper's vector has not been computed.
    """
    if searcher is None:
        paper(conn, arxiv_id)
        return []
    return searcher.similar(conn, arxiv_id, k)
