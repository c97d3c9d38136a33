"""The "For you" feed: `/papers/for-you` (a signed-in member's own ranking of new and recent papers, each card
saying why), its JSON twin `GET /api/papers/for-you`, and a private Atom feed whose address carries a signed
token. "Not interested" and "Less like this" (`POST /papers/{id}/not-interested`, `/less-like-this`, undone
by `/papers/{id}/feedback/undo`; the API's `PUT` / `DELETE /api/papers/{id}/feedback`) change the next
ranking at once (issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from paperboy import signing
from paperboy.db import write
from paperboy.errors import NotFound
from paperboy.models import User
from paperboy.recommend import feed
from paperboy.recommend.rank import Pick, reason_text
from paperboy.store import users as store_users
from paperboy.web import citations, deps, listings, schemas, security
from paperboy.web.deps import Pages, Site, Viewer
from paperboy.web.feeds import ATOM, entry_updated
from paperboy.web.pages import paper_path
from paperboy.web.security import Limiter

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
write_router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api", dependencies=[Depends(deps.require_csrf)])

PAGE_SIZE = 30
MAX_PAGE = feed.MAX_LIMIT // PAGE_SIZE
FEED_PURPOSE = "for-you-feed"  # what the private Atom feed's token is signed for (paperboy.signing)
FEED_LIMIT = 50

ArxivId = Annotated[str, Path(description="arXiv id, e.g. `2501.01234` or `hep-th/9901001`.")]


def _model(request: Request) -> str | None:
    """The embedding model whose vectors the feed compares (the search index's), None without one."""
    searcher = request.app.state.searcher
    vector = getattr(searcher, "vector", None) if searcher is not None else None
    return getattr(vector, "model", None)


def pool_cache(request: Request) -> feed.PoolCache:
    return request.app.state.feed_pool


def _rank(
    request: Request,
    conn: Connection,
    user: User,
    now: datetime,
    limit: int = feed.MAX_LIMIT,
    offset: int = 0,
    count: int | None = None,
) -> feed.ForYou:
    return feed.for_you(
        conn,
        user.id,
        cache=pool_cache(request),
        model=_model(request),
        now=now,
        limit=limit,
        offset=offset,
        count=count,
    )


def _why(result: feed.ForYou) -> dict[str, str]:
    return {p.arxiv_id: reason_text(p.reason, result.seeds.values()) for p in result.picks}


def feed_token(key: bytes, user: User) -> str:
    return signing.sign(key, FEED_PURPOSE, user.id, 1)


def feed_url(site: Site, key: bytes, user: User) -> str:
    return site.public_url.rstrip("/") + "/papers/for-you/feed.atom?t=" + quote(feed_token(key, user))


# --- the page -----------------------------------------------------------------------------------------------


@router.get("/papers/for-you", response_model=None)
def for_you_page(
    request: Request,
    p: int = Query(1, ge=1, le=MAX_PAGE),
    format: str | None = Query(None, description="bib, ris or csljson: this page's papers as a download."),
    who: Viewer = Depends(deps.viewer),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    """The member's feed, PAGE_SIZE cards a page; signed out: the sign-in page, coming back here."""
    if who.user is None:
        return RedirectResponse("/login?next=" + quote("/papers/for-you"), status_code=303)
    start = (p - 1) * PAGE_SIZE
    result = _rank(request, conn, who.user, now, offset=start, count=PAGE_SIZE)
    pages = max(1, -(-result.total // PAGE_SIZE))
    if p > pages:
        raise NotFound(f"page {p} is past the end of your feed ({pages} page{'s' if pages != 1 else ''})")
    shown = result.items
    if format is not None:
        return citations.citation_response(shown, format, f"for-you-{who.user.username}")
    return HTMLResponse(
        templates.render(
            "pages/for_you.html",
            site=site,
            today=now.date(),
            title="For you",
            items=shown,
            export=citations.export_links("/papers/for-you", {"p": p if p > 1 else None}),
            why=_why(result),
            personal=result.personal,
            feedback=True,
            first_index=start + 1,
            total=result.total,
            page=p,
            pages=pages,
            page_links={
                "previous": (f"/papers/for-you?p={p - 1}" if p > 2 else "/papers/for-you") if p > 1 else None,
                "next": f"/papers/for-you?p={p + 1}" if p < pages else None,
            },
            feed_url=feed_url(site, request.app.state.secret_key, who.user),
            paper_path=paper_path,
        )
    )


# --- "Not interested", "Less like this", Undo ---------------------------------------------------------------


def _tell(
    request: Request,
    conn: Connection,
    limiter: Limiter,
    templates: Pages,
    user: User,
    arxiv_id: str,
    kind: str | None,
    now: datetime,
    next_: str,
) -> Response:
    limiter.hit("vote", [f"user:{user.id}"])
    with write(conn):
        if kind is None:
            feed.untell(conn, user.id, arxiv_id)
        else:
            feed.tell(conn, user.id, arxiv_id, kind, now)
    if request.headers.get("hx-request"):
        if kind is not None:
            html = templates.render(
                "fragments/_feed_hidden.html", arxiv_id=arxiv_id, kind=kind, label=feed.FEEDBACK_LABELS[kind]
            )
        else:
            item = listings.paper(conn, arxiv_id)
            html = templates.render(
                "fragments/_card.html",
                item=item,
                card_n=f"u-{arxiv_id}",
                feedback=True,
                why={},
                today=now.date(),
                paper_path=paper_path,
            )
        return HTMLResponse(html)
    return RedirectResponse(security.safe_next(next_, default="/papers/for-you"), status_code=303)


@write_router.post("/papers/{arxiv_id:path}/not-interested", response_model=None)
def not_interested(
    request: Request,
    arxiv_id: str,
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    """Never show this paper in the member's feed again (htmx: the card becomes a line with Undo)."""
    return _tell(request, conn, limiter, templates, user, arxiv_id, "hide", now, next)


@write_router.post("/papers/{arxiv_id:path}/less-like-this", response_model=None)
def less_like_this(
    request: Request,
    arxiv_id: str,
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    """Hide this paper and rank papers like it lower."""
    return _tell(request, conn, limiter, templates, user, arxiv_id, "less", now, next)


@write_router.post("/papers/{arxiv_id:path}/feedback/undo", response_model=None)
def undo(
    request: Request,
    arxiv_id: str,
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    """Take back "Not interested" or "Less like this" (htmx: the card comes back)."""
    return _tell(request, conn, limiter, templates, user, arxiv_id, None, now, next)


# --- the private Atom feed ----------------------------------------------------------------------------------


@router.get("/papers/for-you/feed.atom", response_model=None)
def for_you_atom(
    request: Request,
    t: str = Query("", max_length=signing.MAX_TOKEN, description="The feed's signed token (from the page)."),
    conn: Connection = Depends(deps.conn),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    """The member's feed as Atom, for a feed reader: the address carries a token signed for this member (the
    reader sends no cookie); a new secret key revokes every such address."""
    claims = signing.verify(request.app.state.secret_key, FEED_PURPOSE, t, None)
    user = store_users.get_user(conn, claims.subscription_id)
    if user is None or user.disabled:
        raise NotFound("this feed's member is gone")
    result = _rank(request, conn, user, now, FEED_LIMIT)
    base = site.public_url.rstrip("/")
    why = _why(result)
    items = result.items
    body = request.app.state.templates.get_template("feeds/listing.xml").render(
        site=site,
        base=base,
        title=f"For {user.username} · {site.name}",
        subtitle="New and recent papers ranked for you" if result.personal else "Trending papers",
        page_url=base + "/papers/for-you",
        self_url=base + "/papers/for-you/feed.atom",
        updated=max((entry_updated(i) for i in items), default=now),
        items=items,
        why=why,
        paper_url=lambda arxiv_id: base + paper_path(arxiv_id),
        featured_at=listings.featured_at,
        entry_updated=entry_updated,
    )
    return Response(body, media_type=ATOM, headers={"Cache-Control": "private, no-store"})


# --- the JSON twin and the API ------------------------------------------------------------------------------


class ReasonModel(BaseModel):
    kind: Literal["similar", "author", "topic", "member", "org", "trending"] = Field(
        description="What the paper was picked for."
    )
    label: str = Field(description="The seed paper's title, the author, topic, member or organization named.")
    text: str = Field(description="The few words the card shows.")
    paper_id: str | None = Field(
        None, alias="paperId", description="For `similar` (and `author` found through one): that paper's id."
    )


class ForYouItem(schemas.DailyPaper):
    reason: ReasonModel = Field(description="Why this paper is in the member's feed.")
    score: float = Field(description="The ranking score (higher first); comparable within one response.")


class ForYouModel(BaseModel):
    personal: bool = Field(
        description="False while the member has nothing to go on (no upvotes, saves, follows, topics): then "
        "the feed is what is trending."
    )
    items: list[ForYouItem]


def _item(pick: Pick, item: Any, text: str) -> dict[str, Any]:
    data = schemas.daily_json(item)
    data["reason"] = ReasonModel(
        kind=pick.reason.kind,  # type: ignore[arg-type]
        label=pick.reason.label,
        text=text,
        paperId=pick.reason.arxiv_id,
    ).model_dump(by_alias=True)
    data["score"] = round(float(pick.score), 6)
    return data


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ApiError, "description": "No valid API token (or session)."},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    403: {
        "model": schemas.ApiError,
        "description": "No credentials at all, or a session request without its CSRF header.",
    },
    404: {"model": schemas.ApiError, "description": "No such paper in this hub."},
    429: {"model": schemas.ApiError, "description": "Too many in a minute; see `Retry-After`."},
}


@api_router.get("/papers/for-you", tags=["paperboy"], response_model=ForYouModel, responses=READ_ERRORS)
def api_for_you(
    request: Request,
    limit: int = Query(50, ge=1, le=feed.MAX_LIMIT, description="How many papers (best first)."),
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
) -> dict[str, Any]:
    """The member's "For you" feed (the JSON twin of `/papers/for-you`), each paper in the daily-papers shape
    with `reason` and `score`. Send `Authorization: Bearer <token>`."""
    result = _rank(request, conn, user, now, limit)
    why = _why(result)
    return {
        "personal": result.personal,
        "items": [_item(p, i, why[p.arxiv_id]) for p, i in zip(result.picks, result.items, strict=True)],
    }


class FeedbackIn(BaseModel):
    kind: Literal["hide", "less"] = Field(
        description="`hide`: not interested (never shown again); `less`: that, and papers like it rank lower."
    )


class FeedbackModel(BaseModel):
    id: str
    kind: Literal["hide", "less"] | None = Field(description="What the member said now (None: nothing).")


@api_router.put(
    "/papers/{arxiv_id:path}/feedback",
    tags=["paperboy"],
    response_model=FeedbackModel,
    responses=WRITE_ERRORS,
)
def api_feedback(
    arxiv_id: ArxivId,
    body: FeedbackIn,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> dict[str, Any]:
    """Tell the member's feed about a paper: "Not interested" (`hide`) or "Less like this" (`less`)."""
    limiter.hit("vote", [f"user:{user.id}"])
    with write(conn):
        feed.tell(conn, user.id, arxiv_id, body.kind, now)
    return {"id": arxiv_id, "kind": body.kind}


@api_router.delete(
    "/papers/{arxiv_id:path}/feedback",
    tags=["paperboy"],
    response_model=FeedbackModel,
    responses=WRITE_ERRORS,
)
def api_clear_feedback(
    arxiv_id: ArxivId,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
) -> dict[str, Any]:
    """Take back what the member said about a paper (nothing said: nothing changes)."""
    limiter.hit("vote", [f"user:{user.id}"])
    with write(conn):
        feed.untell(conn, user.id, arxiv_id)
    return {"id": arxiv_id, "kind": None}
