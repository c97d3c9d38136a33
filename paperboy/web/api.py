"""The JSON API. The routes tagged "Hugging Face compatible" speak huggingface.co's dialect (paths,
parameters, field names), so `huggingface_hub` with `HF_ENDPOINT` / `HfApi(endpoint=...)` pointed here works
unchanged; the others are our own additions. Data comes from `listings`, shapes from `schemas`. Bad input is
a 400 naming the parameter (app.py maps InvalidInput and validation errors), an unknown paper a 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.engine import Connection

from paperboy.errors import InvalidInput
from paperboy.models import parse_arxiv_id
from paperboy.periods import Period, day_period, parse_day, parse_month, parse_week
from paperboy.search.query import MAX_PAGE
from paperboy.web import badges, deps, listings, schemas
from paperboy.web.deps import Site

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ApiError, "description": "A parameter is malformed; the message names it."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": schemas.ApiError, "description": "No such paper in this hub."},
}

router = APIRouter(prefix="/api", responses=ERRORS)

Conn = Annotated[Connection, Depends(deps.conn)]
SearcherDep = Annotated["Searcher | None", Depends(deps.searcher)]
Now = Annotated[datetime, Depends(deps.now)]
SiteDep = Annotated[Site, Depends(deps.site)]
Page = Annotated[int, Query(ge=0, le=1_000_000, description="Page number, from 0.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")]
Submitter = Annotated[
    str | None,
    Query(description="Only papers put on the daily list by this user name.", examples=["akhaliq"]),
]

HF = "Hugging Face compatible"
OURS = "paperboy"


def _period(day: str | None, week: str | None, month: str | None) -> Period | None:
    given = {k: v for k, v in (("date", day), ("week", week), ("month", month)) if v}
    if len(given) > 1:
        raise InvalidInput(f"give only one of date, week and month (got {', '.join(given)})")
    if day:
        return day_period(parse_day(day))
    if week:
        return parse_week(week)
    if month:
        return parse_month(month)
    return None


@router.get(
    "/daily_papers",
    tags=[HF],
    response_model=list[schemas.DailyPaper],
    response_model_exclude_none=True,
    summary="Papers on the daily list",
)
def daily_papers(
    conn: Conn,
    now: Now,
    site: SiteDep,
    date: Annotated[str | None, Query(description="A day, YYYY-MM-DD.", examples=["2026-08-12"])] = None,
    week: Annotated[str | None, Query(description="An ISO week, YYYY-Www.", examples=["2026-W33"])] = None,
    month: Annotated[str | None, Query(description="A month, YYYY-MM.", examples=["2026-08"])] = None,
    submitter: Submitter = None,
    sort: Annotated[
        Literal["publishedAt", "trending"] | None,
        Query(
            description="`publishedAt`: newest on the list first; `trending`: hottest first. Unset: most "
            "upvoted first for a period, newest first without one (what huggingface.co answers)."
        ),
    ] = None,
    p: Page = 0,
    limit: Limit = 50,
) -> Any:
    """Papers listed on a day, ISO week or month (one of `date`, `week`, `month` at most), paged by `p`.

    Orders as huggingface.co does. For a period, with no `sort`, the most upvoted first: that is the order
    of every real `?date=` response we hold (2024-2026), whatever `huggingface_hub` says its default is.
    `sort=publishedAt` puts the latest on the list first, `sort=trending` the hottest (docs/trending.md).
    Without a period: the most recent papers on the daily list, newest first, across days (page back with
    `p`), as huggingface.co returns them; with `sort=trending`, the trending window (the hub's
    `trending_days` back from the newest listed day), hottest first.
    """
    period = _period(date, week, month)
    who = submitter or None
    if period is not None:
        items = listings.period_listing(conn, period, sort or "upvotes", now, who).page(p, limit)
    elif sort == "trending":
        items = listings.trending_listing(conn, now, site.trending_days, who).page(p, limit)
    else:
        items = listings.recent_featured(conn, p, limit, who)
    return [schemas.daily_item(i) for i in items]


@router.get(
    "/papers/search",
    tags=[HF],
    response_model=list[schemas.DailyPaper],
    response_model_exclude_none=True,
    summary="Search papers",
    responses={
        200: {
            "headers": {
                "X-Search-Matches": {
                    "description": "Ours: papers holding the query's words (within the filters), all of "
                    "them, not only those returned; `100+` where the count stops (no search index).",
                    "schema": {"type": "string"},
                },
                "X-Search-Related": {
                    "description": "Ours: results found by meaning alone (none of the query's words).",
                    "schema": {"type": "integer"},
                },
                "X-Search-Results": {
                    "description": "Ours: results there are pages of (bounded: the best 100 per mode).",
                    "schema": {"type": "integer"},
                },
                "X-Search-Authors": {
                    "description": "Ours: papers by the people the query names (ranked first); absent "
                    "when it names nobody.",
                    "schema": {"type": "integer"},
                },
                "X-Search-Suggestion": {
                    "description": "Ours: when nothing matches, what to try (drop the filters, other "
                    "words), in plain ASCII.",
                    "schema": {"type": "string"},
                },
                "Link": {
                    "description": 'The next page, `<url>; rel="next"`; absent on the last page.',
                    "schema": {"type": "string"},
                },
            }
        }
    },
)
def search_papers(
    conn: Conn,
    searcher: SearcherDep,
    request: Request,
    response: Response,
    q: Annotated[
        str | None, Query(description="Words to find, or an arXiv id / URL.", examples=["sparse attention"])
    ] = None,
    limit: Limit = 50,
    from_: Annotated[
        str | None,
        Query(alias="from", description="Ours: papers with an arXiv date on or after this day, YYYY-MM-DD."),
    ] = None,
    to: Annotated[
        str | None, Query(description="Ours: papers with an arXiv date on or before this day, YYYY-MM-DD.")
    ] = None,
    category: Annotated[
        list[str] | None,
        Query(
            description="Ours: only papers in one of these arXiv categories (`cs.CL`) or archives (`cs`); "
            "repeat the parameter or separate with commas.",
            examples=[["cs.CL"]],
        ),
    ] = None,
    p: Annotated[
        int, Query(ge=0, le=MAX_PAGE, description=f"Ours: page number, from 0 (at most {MAX_PAGE}).")
    ] = 0,
) -> Any:
    """Search results, best first, as daily-papers items (the JSON twin of `/papers?q=…`).

    Hybrid search: BM25 over titles, abstracts and authors fused with nearest neighbours by meaning, once
    the hub has a searcher with vectors (keyword only before). An arXiv id or abs/pdf URL as `q` returns that
    paper first. Without words in `q` (empty, or punctuation only), an empty list. `from`, `to`, `category`
    and `p` are our additions; `huggingface_hub`'s `list_papers(query=…)` sends only `q` (and `limit`).
    """
    query = listings.search_query(q or "", start=from_, end=to, categories=category, page=p, limit=limit)
    if not query.text:
        return []
    results = listings.search(conn, searcher, query)
    # The page's counts and suggestion as headers: the body stays the list huggingface_hub reads.
    response.headers["X-Search-Matches"] = f"{results.matches}{'+' if results.matches_capped else ''}"
    response.headers["X-Search-Related"] = str(results.related)
    response.headers["X-Search-Results"] = str(results.total)
    if results.authors:
        response.headers["X-Search-Authors"] = str(results.by_authors)
    advice = listings.search_advice(conn, searcher, query, results)
    if advice is not None:
        response.headers["X-Search-Suggestion"] = advice.message
    if (p + 1) * limit < results.total and p < MAX_PAGE:
        nxt = request.url.include_query_params(p=p + 1)
        response.headers["Link"] = f'<{nxt}>; rel="next"'
    return [schemas.daily_item(h.item) for h in results.hits]


@router.get(
    "/papers/{paper_id:path}/similar",
    tags=[OURS],
    response_model=list[schemas.SimilarPaper],
    response_model_exclude_none=True,
    responses=NOT_FOUND,
    summary="Papers similar to one paper",
)
def similar_papers(
    conn: Conn,
    searcher: SearcherDep,
    paper_id: Annotated[
        str, Path(description="arXiv id, old-style ids included (`hep-th/9901001`).", examples=["2512.09363"])
    ],
    limit: Annotated[int, Query(ge=1, le=100, description="How many papers (1-100).")] = 10,
) -> Any:
    """The papers nearest to this one by meaning (the paper page's "Similar papers"), nearest first, each in
    Hugging Face's paper shape plus `similarity` (cosine similarity of the two papers' vectors, higher is
    closer). An empty list while this paper's vector has not been computed, or when search by meaning is off.
    An unknown paper is a 404."""
    parsed = parse_arxiv_id(paper_id)
    if parsed is None:
        raise InvalidInput(f"id {paper_id!r} is not an arXiv id (e.g. 2512.09363 or hep-th/9901001)")
    return [schemas.similar_paper(h) for h in listings.similar(conn, searcher, parsed[0], limit)]


@router.get(
    "/papers",
    tags=[HF],
    response_model=list[schemas.PaperModel],
    response_model_exclude_none=True,
    summary="Every paper, in cursor pages",
    responses={
        200: {
            "headers": {
                "Link": {
                    "description": 'The next page, `<url>; rel="next"`; absent on the last page.',
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
def list_papers(
    conn: Conn,
    request: Request,
    response: Response,
    cursor: Annotated[str | None, Query(description='From the previous page\'s `Link: rel="next"`.')] = None,
    limit: Limit = 50,
) -> Any:
    """Every paper of the hub, newest arXiv date first. The next page's URL is in the `Link` header
    (`<…>; rel="next"`), Hugging Face's way of paging lists; the last page has none."""
    items, next_cursor = listings.papers_page(conn, cursor or None, limit)
    if next_cursor is not None:
        nxt = request.url.include_query_params(cursor=next_cursor, limit=limit)
        response.headers["Link"] = f'<{nxt}>; rel="next"'
    return [schemas.paper_model(i) for i in items]


@router.get(
    "/papers/{paper_id:path}",
    tags=[HF],
    response_model=badges.PaperWithBadges,
    response_model_exclude_none=True,
    responses=NOT_FOUND,
    summary="One paper",
)
def paper(
    conn: Conn,
    paper_id: Annotated[
        str, Path(description="arXiv id, old-style ids included (`hep-th/9901001`).", examples=["2512.09363"])
    ],
) -> Any:
    """A paper in Hugging Face's paper shape (`id`, `authors`, `publishedAt`, `title`, `summary`, `upvotes`,
    `ai_summary`, … at the top level). A version suffix (`v2`) is ignored: the hub keeps the newest one.
    Ours: `badges`, the "#1 Paper of the day / week / month" the paper page shows (absent when none)."""
    parsed = parse_arxiv_id(paper_id)
    if parsed is None:
        raise InvalidInput(f"id {paper_id!r} is not an arXiv id (e.g. 2512.09363 or hep-th/9901001)")
    return badges.paper_with_badges(conn, listings.paper(conn, parsed[0]))


@router.get(
    "/trending",
    tags=[OURS],
    response_model=list[schemas.DailyPaper],
    response_model_exclude_none=True,
    summary="The trending page as JSON",
)
def trending(
    conn: Conn, now: Now, site: SiteDep, submitter: Submitter = None, p: Page = 0, limit: Limit = 50
) -> Any:
    """What /papers/trending shows: papers listed in the trending window (the hub's `trending_days` back from
    the newest listed day), hottest first, as daily-papers items. docs/trending.md explains the score."""
    listing = listings.trending_listing(conn, now, site.trending_days, submitter or None)
    return [schemas.daily_item(i) for i in listing.page(p, limit)]
