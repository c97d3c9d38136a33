"""Server-rendered pages, at the paths huggingface.co/papers uses. GET only; data from `listings`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from sqlalchemy.engine import Connection

from paperboy import citations
from paperboy.community import claims, comments, follows
from paperboy.errors import InvalidInput, NotFound
from paperboy.models import StoredPaper, parse_arxiv_id
from paperboy.periods import (
    Period,
    day_period,
    month_period,
    parse_day,
    parse_month,
    parse_week,
    week_period_of,
)
from paperboy.search.query import (
    MAX_PAGE,
    MAX_QUERY_CHARS,
    SearchQuery,
    SearchResults,
    has_words,
)
from paperboy.web import citations as cite
from paperboy.web import deps, listings, security
from paperboy.web.deps import Pages, Site
from paperboy.web.paper_markdown import MARKDOWN_TYPE, paper_markdown, wants_markdown
from paperboy.web.schemas import MAX_LIST_PAGE

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)

PAGE_SIZE = 50  # cards per page; a day rarely has more, a week or month often does
SEARCH_PAGE_SIZE = 20  # search results per page (`p` from 1; the searcher's pages from 0)
SIMILAR_LIMIT = 8  # "Similar papers" on a paper page

SORT_LABELS = {"upvotes": "Top", "trending": "Trending", "publishedAt": "Newest"}


@dataclass(frozen=True)
class Link:
    href: str
    label: str


def url(path: str, **params: object) -> str:
    """`path` with the query parameters that are set (None and "" are left out)."""
    query = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"{path}?{urlencode(query)}" if query else path


def paper_path(arxiv_id: str) -> str:
    return "/papers/" + quote(arxiv_id, safe="/.-")


def period_path(period: Period) -> str:
    return f"/papers/{'date' if period.kind == 'day' else period.kind}/{period.label}"


def period_label(period: Period, shown: Period | None = None) -> str:
    """How a neighbouring period is named on a navigation link (with its year when that differs)."""
    other_year = shown is not None and shown.start.year != period.start.year
    if period.kind == "day":
        label = f"{period.start:%a}, {period.start:%b} {period.start.day}"
        return f"{label}, {period.start.year}" if other_year else label
    if period.kind == "week":
        y, w, _ = period.start.isocalendar()
        return f"Week {w}, {y}" if other_year else f"Week {w}"
    return f"{period.start:%B %Y}"


def period_title(period: Period) -> str:
    if period.kind == "day":
        return f"{period.start:%A}, {period.start:%B} {period.start.day}, {period.start.year}"
    if period.kind == "week":
        y, w, _ = period.start.isocalendar()
        s, e = period.start, period.end
        span = f"{s:%b} {s.day} – {e:%b} {e.day}" if s.month != e.month else f"{s:%b} {s.day} – {e.day}"
        return f"Week {w}, {y} · {span}"
    return f"{period.start:%B %Y}"


def _render(templates: Pages, name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.render(name, **context))


def _error_viewer(request: Request) -> deps.Viewer:
    seen = getattr(request.state, "viewer", None)
    if seen is not None:
        return seen
    try:
        with request.app.state.engine.connect() as conn:
            return deps.viewer(request, conn)
    except Exception:  # an error page must render even when the database is what failed
        return deps.Viewer(None, security.csrf_token(request))


def render_error(request: Request, status: int, message: str) -> str:
    """The HTML error page (app.py uses it for every non-API error)."""
    templates: Environment = request.app.state.templates
    site: Site = request.app.state.site
    titles = {
        400: "That address is not quite right",
        403: "Not allowed",
        404: "Not found",
        409: "Already there",
        429: "Slow down",
    }
    return templates.get_template("pages/error.html").render(
        viewer=_error_viewer(request),
        site=site,
        status=status,
        title=titles.get(status, "Something went wrong"),
        message=message,
        q=request.query_params.get("q", "").strip()[:MAX_QUERY_CHARS],  # a bad filter keeps the words typed
        today=request.app.state.clock().date(),
    )


# --- list pages ---------------------------------------------------------------------------------------------


def _tabs(anchor: date) -> dict[str, str]:
    """Daily / Weekly / Monthly / Trending, each pointing at the period around `anchor`."""
    return {
        "daily": period_path(day_period(anchor)),
        "weekly": period_path(week_period_of(anchor)),
        "monthly": period_path(month_period(anchor)),
        "trending": "/papers/trending",
    }


def _anchor(period: Period | None, latest: date | None, today: date) -> date:
    """The day the tabs point at: inside `period`, the newest featured day when it falls there."""
    if period is None:
        return latest or today
    if latest is not None and period.start <= latest <= period.end:
        return latest
    return period.start


def _pages(total: int, p: int) -> int:
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if p > pages:
        raise NotFound(f"page {p} is past the end of this list ({pages} page{'s' if pages != 1 else ''})")
    return pages


def _neighbour(target: Period | None, shown: Period | None, sort: str | None) -> Link | None:
    if target is None:
        return None
    return Link(url(period_path(target), sort=sort), period_label(target, shown))


def _empty_state(period: Period | None, today: date) -> dict[str, str]:
    if period is None:
        return {
            "title": "No papers yet",
            "detail": "This hub has not imported any daily papers yet. "
            "Run `paperboy ingest hf` to fetch the latest days.",
        }
    if period.kind != "day":
        return {"title": f"Nothing was announced in this {period.kind}", "detail": ""}
    day = period.start
    if day > today:
        return {
            "title": "Nothing was announced on this day (yet)",
            "detail": "This day is still to come. Papers appear here once they are announced.",
        }
    if day.weekday() >= 5:
        return {
            "title": "Nothing was announced on this day (weekend)",
            "detail": f"{day:%A}s are quiet: new papers are announced Monday to Friday.",
        }
    return {
        "title": "Nothing was announced on this day (holiday, or not synced yet)",
        "detail": f"No papers were featured on {day:%A}, {day:%B} {day.day}. It may be a holiday, "
        "or this hub has not imported that day.",
    }


def _list_page(
    templates: Pages,
    *,
    site: Site,
    now: datetime,
    listing: listings.Listing,
    latest: date | None,
    p: int,
    path: str,
    feed: str,
    heading: str,
    subtitle: str,
    tab: str | None,
    q: str = "",
    show_sort: bool = True,
    fmt: str = "",
) -> Response:
    today = now.date()
    pages = _pages(listing.total, p)
    period = listing.period
    sort_param = listing.sort if listing.sort != "upvotes" else None
    nav_period = period if listing.kind in ("day", "week", "month") else None
    items = listing.page(p - 1, PAGE_SIZE)
    if fmt:  # ?format=bib|ris|csljson: this page's papers as a citation file
        name = period_path(nav_period) if nav_period else path
        return cite.citation_response(items, fmt, f"{name}-p{p}" if p > 1 else name)
    return _render(
        templates,
        "pages/list.html",
        site=site,
        today=today,
        title=heading if not subtitle else f"{heading} · {subtitle}",
        heading=heading,
        subtitle=subtitle,
        q=q,
        tab=tab,
        tabs=_tabs(_anchor(nav_period, latest, today)),
        previous=_neighbour(listing.previous, period, sort_param),
        next=_neighbour(listing.next, period, sort_param),
        sorts=[Link(url(path, sort=None if s == "upvotes" else s), label) for s, label in SORT_LABELS.items()]
        if show_sort
        else [],
        sort_label=SORT_LABELS.get(listing.sort, ""),
        items=items,
        total=listing.total,
        export=cite.export_links(path, {"sort": sort_param, "p": p if p > 1 else None}),
        first_index=(p - 1) * PAGE_SIZE + 1,
        page=p,
        pages=pages,
        page_links={
            "previous": url(path, q=q, sort=sort_param, p=p - 1 if p > 2 else None) if p > 1 else None,
            "next": url(path, q=q, sort=sort_param, p=p + 1) if p < pages else None,
        },
        empty=_empty_state(nav_period, today) if listing.kind != "search" else None,
        period_noun=period.kind if period is not None and period.kind in ("day", "week", "month") else "",
        feed_url=feed,
        paper_path=paper_path,
    )


# --- search -------------------------------------------------------------------------------------------------


def search_params(q: SearchQuery) -> dict[str, str]:
    """A search's query parameters as the search page, its feed and its links spell them (empty ones out)."""
    params = {
        "q": q.text,
        "from": q.start.isoformat() if q.start else "",
        "to": q.end.isoformat() if q.end else "",
        "category": ",".join(q.categories),
    }
    return {k: v for k, v in params.items() if v}


def _search_note(results: SearchResults, searcher: Searcher | None) -> str:
    """A discreet word when search by meaning did not answer: still being indexed, or off on this hub."""
    if "vector" in results.modes or "keyword" not in results.modes:
        return ""
    state = listings.meaning_state(searcher)
    if state == "indexing":
        return "search by meaning joins in once the papers' meanings are indexed"
    if state == "off":
        return "search by meaning is off on this hub"
    return ""


def _search_subtitle(results: SearchResults, q: str) -> str:
    """What matches, counted honestly: "6 papers by Song Han · 25 papers match “Song Han” · 3 related by
    meaning"; the papers holding the query's words, not the bounded list of candidates."""
    if not has_words(q):
        return ""  # the empty state says why
    return listings.search_summary(results, f"“{q}”")


def _search_page(
    templates: Pages,
    conn: Connection,
    searcher: Searcher | None,
    *,
    site: Site,
    now: datetime,
    q: str,
    p: int,
    start: str,
    end: str,
    categories: list[str],
    fmt: str = "",
) -> Response:
    """Search results like the seed page: title, abstract around the match (words marked), authors, date,
    upvotes, comments; date and category filters as plain GET fields; pages of SEARCH_PAGE_SIZE."""
    if p > MAX_PAGE + 1:
        raise InvalidInput(f"p: page {p} is out of range: search results have at most {MAX_PAGE + 1} pages")
    truncated = len(q.strip()) > MAX_QUERY_CHARS
    query = listings.search_query(
        q, start=start, end=end, categories=categories, page=p - 1, limit=SEARCH_PAGE_SIZE
    )
    results = listings.search(conn, searcher, query)
    pages = max(1, math.ceil(results.total / SEARCH_PAGE_SIZE))
    if p > pages:
        raise NotFound(f"page {p} is past the end of these results ({pages} page{'s' if pages != 1 else ''})")
    params = search_params(query)
    if fmt:  # ?format=bib|ris|csljson: this page of results as a citation file
        return cite.citation_response([h.item for h in results.hits], fmt, f"search-{query.text[:40]}-p{p}")
    filtered = bool(query.start or query.end or query.categories)
    shown = query.text if len(query.text) <= 80 else query.text[:80] + "…"
    return _render(
        templates,
        "pages/search.html",
        site=site,
        today=now.date(),
        title=f"“{shown}” · Search results",
        heading="Search results",
        subtitle=_search_subtitle(results, query.text),
        q=query.text,
        query=query,
        has_words=has_words(query.text),
        results=results,
        items=[h.item for h in results.hits],
        terms=results.terms,
        modes=listings.modes_label(results.modes),
        note=_search_note(results, searcher),
        advice=listings.search_advice(conn, searcher, query, results),
        truncated=truncated,
        max_chars=MAX_QUERY_CHARS,
        filtered=filtered,
        filters={
            "from": params.get("from", ""),
            "to": params.get("to", ""),
            "category": ", ".join(query.categories),
        },
        filter_summary=" · ".join(
            part
            for part in (
                f"from {query.start:%b} {query.start.day}, {query.start.year}" if query.start else "",
                f"to {query.end:%b} {query.end.day}, {query.end.year}" if query.end else "",
                ", ".join(query.categories),
            )
            if part
        ),
        clear_filters=url("/papers", q=query.text),
        total=results.total,
        first_index=(p - 1) * SEARCH_PAGE_SIZE + 1,
        page=p,
        pages=pages,
        page_links={
            "previous": url("/papers", **params, p=p - 1 if p > 2 else None) if p > 1 else None,
            "next": url("/papers", **params, p=p + 1) if p < pages else None,
        },
        feed_url=url("/papers/feed.atom", **params),
        export=cite.export_links("/papers", {**params, "p": p if p > 1 else None}),
        paper_path=paper_path,
    )


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/papers", status_code=302)


@router.get("/papers")
def papers_latest(
    q: str = "",
    sort: str = "",
    p: int = Query(1, ge=1, le=MAX_LIST_PAGE, description="page number, from 1"),
    from_: str = Query("", alias="from", description="search: arXiv date from, YYYY-MM-DD"),
    to: str = Query("", description="search: arXiv date to, YYYY-MM-DD"),
    category: list[str] = Query([], description="search: arXiv category or archive, repeatable"),
    fmt: str = Query(
        "", alias="format", description="bib, ris or csljson: this page's papers as a citation file"
    ),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
    searcher: Searcher | None = Depends(deps.searcher),
) -> Response:
    """The newest day with papers; with `q`, search results (filters `from`, `to`, `category`)."""
    if q.strip():
        return _search_page(
            templates,
            conn,
            searcher,
            site=site,
            now=now,
            q=q,
            p=p,
            start=from_,
            end=to,
            categories=category,
            fmt=fmt,
        )
    latest = listings.latest_day(conn)
    order = listings.parse_sort(sort)
    if latest is None:
        listing = listings.Listing("latest", None, [], order)
        return _list_page(
            templates,
            site=site,
            now=now,
            listing=listing,
            latest=None,
            p=p,
            path="/papers",
            feed="/papers/feed.atom",
            heading="Daily Papers",
            subtitle="",
            tab="daily",
            show_sort=False,
            fmt=fmt,
        )
    listing = listings.period_listing(conn, day_period(latest), order, now)
    return _list_page(
        templates,
        site=site,
        now=now,
        listing=listing,
        latest=latest,
        p=p,
        path="/papers",
        feed="/papers/feed.atom",
        heading="Daily Papers",
        subtitle=period_title(day_period(latest)),
        tab="daily",
        fmt=fmt,
    )


_PERIOD_PAGES = {
    "day": ("Daily Papers", "daily"),
    "week": ("Weekly Papers", "weekly"),
    "month": ("Monthly Papers", "monthly"),
}


def _period_page(
    period: Period,
    sort: str,
    p: int,
    conn: Connection,
    now: datetime,
    site: Site,
    templates: Pages,
    fmt: str = "",
) -> Response:
    """A day, week or month page: one shape, three headings."""
    listing = listings.period_listing(conn, period, listings.parse_sort(sort), now)
    path = period_path(period)
    heading, tab = _PERIOD_PAGES[period.kind]
    return _list_page(
        templates,
        site=site,
        now=now,
        listing=listing,
        latest=listings.latest_day(conn),
        p=p,
        path=path,
        feed=path + "/feed.atom",
        heading=heading,
        subtitle=period_title(period),
        tab=tab,
        fmt=fmt,
    )


@router.get("/papers/date/{day}")
def papers_day(
    day: str,
    sort: str = "",
    p: int = Query(1, ge=1, le=MAX_LIST_PAGE, description="page number, from 1"),
    fmt: str = Query(
        "", alias="format", description="bib, ris or csljson: this page's papers as a citation file"
    ),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    return _period_page(day_period(parse_day(day)), sort, p, conn, now, site, templates, fmt)


@router.get("/papers/week/{week}")
def papers_week(
    week: str,
    sort: str = "",
    p: int = Query(1, ge=1, le=MAX_LIST_PAGE, description="page number, from 1"),
    fmt: str = Query(
        "", alias="format", description="bib, ris or csljson: this page's papers as a citation file"
    ),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    return _period_page(parse_week(week), sort, p, conn, now, site, templates, fmt)


@router.get("/papers/month/{month}")
def papers_month(
    month: str,
    sort: str = "",
    p: int = Query(1, ge=1, le=MAX_LIST_PAGE, description="page number, from 1"),
    fmt: str = Query(
        "", alias="format", description="bib, ris or csljson: this page's papers as a citation file"
    ),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    return _period_page(parse_month(month), sort, p, conn, now, site, templates, fmt)


@router.get("/papers/trending")
def papers_trending(
    p: int = Query(1, ge=1, le=MAX_LIST_PAGE, description="page number, from 1"),
    fmt: str = Query(
        "", alias="format", description="bib, ris or csljson: this page's papers as a citation file"
    ),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    listing = listings.trending_listing(conn, now, site.trending_days)
    window = listing.period
    subtitle = (
        f"Featured {window.start:%b} {window.start.day} – {window.end:%b} {window.end.day}, hottest first"
        if window
        else ""
    )
    return _list_page(
        templates,
        site=site,
        now=now,
        listing=listing,
        latest=listings.latest_day(conn),
        p=p,
        path="/papers/trending",
        feed="/papers/trending/feed.atom",
        heading="Trending Papers",
        subtitle=subtitle,
        tab="trending",
        show_sort=False,
        fmt=fmt,
    )


# --- other pages --------------------------------------------------------------------------------------------


@router.get("/about")
def about(
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> HTMLResponse:
    return _render(templates, "pages/about.html", site=site, today=now.date(), q="", title="About")


_COLLAPSED_SCHEME = re.compile(r"^(https?):/+", re.IGNORECASE)


def _paper_context(item: StoredPaper) -> dict[str, Any]:
    paper = item.paper
    primary = paper.primary_category or (paper.categories[0] if paper.categories else None)
    others = [c for c in paper.categories if c != primary]
    updated = paper.updated_at
    if updated is not None and paper.published_at is not None and updated.date() == paper.published_at.date():
        updated = None
    return {"primary_category": primary, "other_categories": others, "updated": updated}


def _markdown(item: StoredPaper, site: Site, vary: bool) -> Response:
    headers = {"Vary": "Accept"} if vary else None
    return Response(paper_markdown(item, site.public_url), media_type=MARKDOWN_TYPE, headers=headers)


@router.get("/papers/{arxiv_id:path}.md", response_model=None)
def paper_markdown_page(
    arxiv_id: str, conn: Connection = Depends(deps.conn), site: Site = Depends(deps.site)
) -> Response:
    """The paper page as Markdown, at huggingface.co's address for it (`hf papers read ID` reads it)."""
    parsed = parse_arxiv_id(_COLLAPSED_SCHEME.sub(r"\1://", arxiv_id))
    if parsed is None:
        raise NotFound(f"{arxiv_id!r} is not an arXiv id (e.g. 2504.11966 or hep-th/9901001)")
    canonical, _version = parsed
    if canonical != arxiv_id:
        return RedirectResponse(paper_path(canonical) + ".md", status_code=301)
    return _markdown(listings.paper(conn, canonical), site, vary=False)


# Registered last: `{arxiv_id:path}` matches anything under /papers/ (old-style ids contain a slash).
@router.get("/papers/{arxiv_id:path}", response_model=None)
def paper_page(
    request: Request,
    arxiv_id: str,
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
    searcher: Searcher | None = Depends(deps.searcher),
) -> Response:
    if arxiv_id.strip("/") == "":
        return RedirectResponse("/papers", status_code=301)
    parsed = parse_arxiv_id(_COLLAPSED_SCHEME.sub(r"\1://", arxiv_id))
    if parsed is None:
        raise NotFound(f"{arxiv_id!r} is not an arXiv id (e.g. 2504.11966 or hep-th/9901001)")
    canonical, _version = parsed
    if canonical != arxiv_id:
        return RedirectResponse(paper_path(canonical), status_code=301)
    item = listings.paper(conn, canonical)
    if wants_markdown(request.headers.get("accept")):  # as huggingface.co answers `Accept: text/markdown`
        return _markdown(item, site, vary=True)
    paper = item.paper
    similar = listings.similar(conn, searcher, canonical, SIMILAR_LIMIT)
    page = _render(
        templates,
        "pages/paper.html",
        site=site,
        today=now.date(),
        q="",
        title=paper.title,
        item=item,
        paper=paper,
        featuring=item.featuring,
        featured_day_path=period_path(day_period(item.featuring.day)) if item.featuring else None,
        description=" ".join(paper.abstract.split())[:300],
        similar=similar,
        # no neighbours while this paper's vector is pending: a short note where meaning search is on
        similar_pending=not similar and listings.meaning_state(searcher) != "off",
        paper_path=paper_path,
        thread=comments.thread(conn, canonical, templates.viewer.user),
        claims=claims.paper_claims(conn, canonical, templates.viewer.user),
        citation_tags=citations.highwire_tags(item),  # Zotero, Google Scholar (issue 14)
        cite_bibtex=citations.bibtex_entry(item),
        followed_authors=follows.followed_authors(conn, templates.viewer.user, paper.authors),
        now=now,
        **_paper_context(item),
    )
    page.headers["Vary"] = "Accept"  # the same URL answers Markdown to `Accept: text/markdown`
    return page
