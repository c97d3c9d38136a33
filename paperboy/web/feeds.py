"""Atom feeds of every list page, at the page's path plus `/feed.atom` (the latest day: `/papers/feed.atom`).

app.py includes this router before the pages router, so these paths win over `/papers/{arxiv_id:path}`.
Entries are the page's first FEED_LIMIT cards, in the page's order; links are absolute (`site.public_url`).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from jinja2 import Environment
from sqlalchemy.engine import Connection

from paperboy.models import StoredPaper
from paperboy.periods import Period, day_period, parse_day, parse_month, parse_week
from paperboy.web import deps, listings
from paperboy.web.deps import Site
from paperboy.web.pages import paper_path, period_path, period_title, search_params

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher

router = APIRouter(include_in_schema=False)

FEED_LIMIT = 100
ATOM = "application/atom+xml; charset=utf-8"


def entry_updated(item: StoredPaper) -> datetime:
    """When an entry last changed as far as a reader cares: its featuring, or a newer arXiv version."""
    featured = listings.featured_at(item)
    newer = item.paper.updated_at
    return max(featured, newer) if newer is not None else featured


def _feed(
    templates: Environment,
    *,
    site: Site,
    now: datetime,
    listing: listings.Listing,
    page_path: str,
    title: str,
    subtitle: str,
    self_path: str | None = None,
) -> Response:
    base = site.public_url.rstrip("/")
    items = listing.items[:FEED_LIMIT]
    if items:
        updated = max(entry_updated(i) for i in items)
    elif listing.period is not None:
        updated = datetime.combine(listing.period.end, time(0), tzinfo=UTC)
    else:
        updated = now
    body = templates.get_template("feeds/listing.xml").render(
        site=site,
        base=base,
        title=f"{title} · {site.name}",
        subtitle=subtitle,
        page_url=base + page_path,
        self_url=base + (self_path or page_path + "/feed.atom"),
        updated=updated,
        items=items,
        paper_url=lambda arxiv_id: base + paper_path(arxiv_id),
        featured_at=listings.featured_at,
        entry_updated=entry_updated,
    )
    return Response(body, media_type=ATOM)


def _period_feed(
    templates: Environment, conn: Connection, site: Site, now: datetime, period: Period, sort: str, title: str
) -> Response:
    listing = listings.period_listing(conn, period, listings.parse_sort(sort), now)
    return _feed(
        templates,
        site=site,
        now=now,
        listing=listing,
        page_path=period_path(period),
        title=title,
        subtitle=period_title(period),
    )


@router.get("/papers/feed.atom")
def latest_feed(
    q: str = "",
    sort: str = "",
    from_: str = Query("", alias="from"),
    to: str = "",
    category: list[str] = Query([]),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Environment = Depends(deps.templates),
    searcher: Searcher | None = Depends(deps.searcher),
) -> Response:
    """The newest day with papers (what `/papers` shows); with `q`, that search's results, best first, with
    the search page's filters (`from`, `to`, `category`): a saved search to follow in a feed reader."""
    if q.strip():
        query = listings.search_query(q, start=from_, end=to, categories=category, limit=FEED_LIMIT)
        results = listings.search(conn, searcher, query)
        params = search_params(query)
        filters = ", ".join(
            f"{label} {value}"
            for label, value in (
                ("from", params.get("from")),
                ("to", params.get("to")),
                ("in", ", ".join(query.categories)),
            )
            if value
        )
        return _feed(
            templates,
            site=site,
            now=now,
            listing=listings.Listing("search", None, [h.item for h in results.hits], "upvotes"),
            page_path="/papers?" + urlencode(params),
            self_path="/papers/feed.atom?" + urlencode(params),
            title=f"Papers matching “{query.text}”",
            subtitle=f"Search results for “{query.text}”" + (f" ({filters})" if filters else ""),
        )
    latest = listings.latest_day(conn)
    order = listings.parse_sort(sort)
    if latest is None:
        listing = listings.Listing("latest", None, [], order)
        subtitle = "No papers yet"
    else:
        listing = listings.period_listing(conn, day_period(latest), order, now)
        subtitle = period_title(day_period(latest))
    return _feed(
        templates,
        site=site,
        now=now,
        listing=listing,
        page_path="/papers",
        title="Daily Papers",
        subtitle=subtitle,
    )


@router.get("/papers/date/{day}/feed.atom")
def day_feed(
    day: str,
    sort: str = "",
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Environment = Depends(deps.templates),
) -> Response:
    return _period_feed(templates, conn, site, now, day_period(parse_day(day)), sort, "Daily Papers")


@router.get("/papers/week/{week}/feed.atom")
def week_feed(
    week: str,
    sort: str = "",
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Environment = Depends(deps.templates),
) -> Response:
    return _period_feed(templates, conn, site, now, parse_week(week), sort, "Weekly Papers")


@router.get("/papers/month/{month}/feed.atom")
def month_feed(
    month: str,
    sort: str = "",
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Environment = Depends(deps.templates),
) -> Response:
    return _period_feed(templates, conn, site, now, parse_month(month), sort, "Monthly Papers")


@router.get("/papers/trending/feed.atom")
def trending_feed(
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Environment = Depends(deps.templates),
) -> Response:
    listing = listings.trending_listing(conn, now, site.trending_days)
    return _feed(
        templates,
        site=site,
        now=now,
        listing=listing,
        page_path="/papers/trending",
        title="Trending Papers",
        subtitle=f"Papers featured in the last {site.trending_days} days, hottest first",
    )
