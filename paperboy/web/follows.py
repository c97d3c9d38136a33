"""Follows (issue 14): follow authors, members and organizations; `/following` (what you follow and the newest
papers from it) and its JSON twin `GET /api/following`; organization pages `/orgs/{slug}` and
`GET /api/orgs/{slug}`.

Forms post to `/following/follow`, `/following/unfollow` and `/following/digest` with `kind` (author, member,
org) and `name` (the author's name, the username, the organization's slug), with the CSRF token; htmx gets
the button (or the `/following` row) back in place, a plain form goes back to `next`. Scripts holding a token
use `POST /api/follows` (a JSON body) and `DELETE /api/follows/{kind}/{name}`. The author page's own
`/authors/{name}/follow` and `/unfollow` (web/authors.py) make the same follows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from paperboy.community import follows
from paperboy.db import write
from paperboy.models import Follow, User
from paperboy.web import deps, schemas, security
from paperboy.web.deps import Pages, Site
from paperboy.web.pages import paper_path, url
from paperboy.web.security import Limiter

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
write_router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api", dependencies=[Depends(deps.require_csrf)])

Kind = Literal["author", "member", "org"]


def _limit(limiter: Limiter, user: User) -> None:
    """Follow clicks count against the upvote limit (60 a minute per member): both are one-click toggles."""
    limiter.hit("vote", [f"user:{user.id}"])


def why_text(via: follows.Via) -> str:
    """A card's line on /following: where the paper came from."""
    if via.kind == "member":
        done = {"upvote": "Upvoted", "submit": "Submitted"}.get(via.how, "Upvoted or submitted")
        return f"{done} by @{via.name}, whom you follow"
    if via.kind == "org":
        return f"Featured by {via.name}, which you follow"
    return f"By {via.name}, whom you follow"


# --- the page ---------------------------------------------------------------------------------------------


@router.get("/following", response_model=None)
def following_page(
    p: int = Query(1, ge=1, le=follows.FEED_PAGES, description="page number, from 1"),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    """What the member follows, by kind, with unfollow and "in digest" per follow, then the newest papers
    from all of it."""
    found = follows.following_page(conn, user, p)
    by_kind = {k: [follows.state_of(f) for f in found.follows if f.kind == k] for k in follows.KINDS}
    html = templates.render(
        "pages/following.html",
        site=site,
        today=now.date(),
        q="",
        title="Following",
        by_kind=by_kind,
        total_follows=len(found.follows),
        max_follows=follows.MAX_FOLLOWS,
        has_digest=follows.has_digest(conn, user),
        items=found.items,
        why={i: why_text(v) for i, v in found.via.items()},
        first_index=(found.page - 1) * follows.FEED_PAGE + 1,
        page=found.page,
        pages=found.page + (1 if found.has_next else 0),
        total=None,
        page_links={
            "previous": url("/following", p=found.page - 1 if found.page > 2 else None)
            if found.page > 1
            else None,
            "next": url("/following", p=found.page + 1) if found.has_next else None,
        },
        target_path=follows.target_path,
        paper_path=paper_path,
    )
    return HTMLResponse(html)


# --- forms ------------------------------------------------------------------------------------------------


def _answer(
    request: Request,
    templates: Pages,
    state: follows.FollowState,
    next_path: str,
    row: bool,
    compact: bool = False,
) -> Response:
    if request.headers.get("hx-request"):
        fragment = "fragments/_follow_row.html" if row else "fragments/_follow.html"
        html = templates.render(fragment, fstate=state, next=security.safe_next(next_path), compact=compact)
        return HTMLResponse(html)
    return RedirectResponse(security.safe_next(next_path, default=state.target.path), status_code=303)


@write_router.post("/following/follow", response_model=None)
def follow_form(
    request: Request,
    kind: str = Form(...),
    name: str = Form(...),
    next: str = Form(""),
    row: str = Form(""),
    compact: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    """Follow an author, member or organization; htmx gets the button back, a form goes back to `next`."""
    _limit(limiter, user)
    with write(conn):
        state = follows.follow(conn, user, kind, name, now)
    return _answer(request, templates, state, next, bool(row), bool(compact))


@write_router.post("/following/unfollow", response_model=None)
def unfollow_form(
    request: Request,
    kind: str = Form(...),
    name: str = Form(...),
    next: str = Form(""),
    row: str = Form(""),
    compact: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
) -> Response:
    """Stop following (an author also leaves the digest's own author list)."""
    _limit(limiter, user)
    with write(conn):
        state = follows.unfollow(conn, user, kind, name)
    return _answer(request, templates, state, next, bool(row), bool(compact))


@write_router.post("/following/digest", response_model=None)
def digest_form(
    request: Request,
    kind: str = Form(...),
    name: str = Form(...),
    in_digest: str = Form(...),
    next: str = Form(""),
    row: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
) -> Response:
    """Whether a follow's new papers go into the member's digest (`in_digest` 1 or 0)."""
    _limit(limiter, user)
    with write(conn):
        state = follows.set_in_digest(
            conn, user, kind, name, in_digest.strip().lower() in ("1", "true", "on")
        )
    return _answer(request, templates, state, next or "/following", bool(row))


# --- organizations ----------------------------------------------------------------------------------------


@router.get("/orgs/{slug}", response_model=None)
def org_page(
    slug: str,
    p: int = Query(1, ge=1, le=follows.ORG_PAGES, description="page number, from 1"),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    """An organization's featured papers, the newest featuring first, with a Follow button."""
    found = follows.org_page(conn, slug, p)
    path = follows.target_path("org", found.slug)
    if slug != found.slug.lower():
        return RedirectResponse(url(path, p=p if p > 1 else None), status_code=301)
    state = follows.state(conn, templates.viewer.user, "org", found.slug)
    html = templates.render(
        "pages/org.html",
        site=site,
        today=now.date(),
        q="",
        title=f"{found.name} · Papers",
        org=found,
        fstate=state,
        next=path,
        items=found.items,
        total=found.total,
        first_index=(found.page - 1) * follows.ORG_PAGE + 1,
        page=found.page,
        pages=found.pages,
        page_links={
            "previous": url(path, p=found.page - 1 if found.page > 2 else None) if found.page > 1 else None,
            "next": url(path, p=found.page + 1) if found.page < found.pages else None,
        },
        canonical=site.public_url.rstrip("/") + path,
        paper_path=paper_path,
    )
    return HTMLResponse(html)


class _Model(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class OrgModel(_Model):
    """An organization and one page of the papers it featured here, the newest featuring first."""

    name: str = Field(description="The organization's slug, as Hugging Face spells it.")
    fullname: str = Field(description="Its full name.")
    num_papers: int = Field(alias="numPapers", description="How many papers it featured in this hub.")
    num_followers: int = Field(alias="numFollowers", description="How many members follow it.")
    page: int = Field(description="This page, from 0.")
    papers: list[schemas.DailyPaper] = Field(description="This page's papers, as daily-papers items.")


@api_router.get(
    "/orgs/{slug}",
    tags=["paperboy"],
    response_model=OrgModel,
    response_model_exclude_none=True,
    responses={
        400: {"model": schemas.ApiError, "description": "A malformed `p` or `limit`."},
        404: {"model": schemas.ApiError, "description": "No paper in this hub was featured by it."},
    },
    summary="An organization's papers",
)
def org_api(
    conn: Annotated[Connection, Depends(deps.conn)],
    slug: Annotated[str, Path(description="The organization's slug (any case).", examples=["google"])],
    p: Annotated[int, Query(ge=0, le=follows.ORG_PAGES - 1, description="Page number, from 0.")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")] = 30,
) -> Any:
    """What `/orgs/{slug}` shows: the papers featured for this organization, the newest featuring first."""
    found = follows.org_page(conn, slug, p + 1, limit)
    return OrgModel(
        name=found.slug,
        fullname=found.name,
        numPapers=found.total,
        numFollowers=found.followers,
        page=p,
        papers=[schemas.daily_item(i) for i in found.items],
    )


# --- the API ----------------------------------------------------------------------------------------------


class FollowModel(_Model):
    """One follow."""

    kind: Kind = Field(description="`author`, `member` or `org`.")
    name: str = Field(
        description="The author's name (as their newest paper spells it), the member's username, or the "
        "organization's full name."
    )
    key: str = Field(
        description="What the follow matches: the author's name folded (case and spaces aside), the member's "
        "account id, the organization's slug."
    )
    url: str = Field(description="The target's page on this hub.")
    in_digest: bool = Field(alias="inDigest", description="Whether its new papers go into your digest.")
    created_at: schemas.HfDateTime | None = Field(
        default=None, alias="createdAt", description="When you followed."
    )


class FollowStateModel(_Model):
    """A follow after the request."""

    kind: Kind
    name: str = Field(description="The target as shown (see FollowModel).")
    url: str
    following: bool = Field(description="Whether you follow it now.")
    in_digest: bool = Field(alias="inDigest", description="Whether its new papers go into your digest.")


class FollowedPaper(schemas.DailyPaper):
    """A daily-papers item, and where it came from."""

    via: dict[str, str] = Field(
        description="The followed target that brought it: `kind` (author, member, org), `name`, `url`."
    )


class FollowingModel(_Model):
    """What you follow and one page of the newest papers from it."""

    follows: list[FollowModel] = Field(description="Authors, then members, then organizations, by name.")
    page: int = Field(description="This page of `papers`, from 0.")
    has_more: bool = Field(alias="hasMore", description="Whether a next page of papers exists.")
    papers: list[FollowedPaper] = Field(description="The newest papers from what you follow, each once.")


class NewFollow(_Model):
    kind: Kind = Field(description="`author`, `member` or `org`.")
    name: str = Field(
        description="The author's name as papers spell it (case aside), the member's username, or the "
        "organization's slug.",
        examples=["Yann LeCun"],
    )
    in_digest: bool | None = Field(
        default=None,
        alias="inDigest",
        description="Whether its new papers go into your digest (a new follow: yes, unless this says no; an "
        "existing one: unchanged unless given).",
    )


WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ApiError, "description": "A malformed kind or name, or following yourself."},
    401: {"model": schemas.ApiError, "description": "No valid API token (or session)."},
    403: {
        "model": schemas.ApiError,
        "description": "No credentials at all, or a session request without its CSRF header.",
    },
    404: {"model": schemas.ApiError, "description": "No such author, member or organization in this hub."},
    409: {"model": schemas.ApiError, "description": f"You follow {follows.MAX_FOLLOWS} things already."},
    429: {"model": schemas.ApiError, "description": "Too many changes in a minute; see `Retry-After`."},
}


def follow_model(f: Follow) -> FollowModel:
    shown = f.target_key if f.kind == "org" else f.target_name
    return FollowModel(
        kind=f.kind,  # type: ignore[arg-type]
        name=f.target_name,
        key=f.target_key,
        url=follows.target_path(f.kind, shown),
        inDigest=f.in_digest,
        createdAt=f.created_at,
    )


def _state_model(state: follows.FollowState) -> FollowStateModel:
    return FollowStateModel(
        kind=state.target.kind,  # type: ignore[arg-type]
        name=state.target.name,
        url=state.target.path,
        following=state.following,
        inDigest=state.in_digest,
    )


@api_router.get(
    "/following",
    tags=["paperboy"],
    response_model=FollowingModel,
    response_model_exclude_none=True,
    responses={401: WRITE_ERRORS[401]},
    summary="What you follow, and the newest papers from it",
)
def following_api(
    p: Annotated[int, Query(ge=0, le=follows.FEED_PAGES - 1, description="Page number, from 0.")] = 0,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
) -> Any:
    """What `/following` shows: the authors, members and organizations you follow, and a page of the
    newest papers from them (an author's papers by date, a member's upvotes and submissions, an
    organization's featured papers), each with `via`, what brought it."""
    found = follows.following_page(conn, user, p + 1)
    papers = []
    for item in found.items:
        v = found.via[item.paper.arxiv_id]
        base = schemas.daily_item(item).model_dump(by_alias=True)
        papers.append(FollowedPaper(**base, via={"kind": v.kind, "name": v.name, "url": v.path}))
    return FollowingModel(
        follows=[follow_model(f) for f in found.follows], page=p, hasMore=found.has_next, papers=papers
    )


@api_router.post("/follows", tags=["paperboy"], response_model=FollowStateModel, responses=WRITE_ERRORS)
def api_follow(
    body: NewFollow,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> Any:
    """Follow an author, member or organization as the token's member (twice changes nothing), and set
    whether it goes into your digest. Send `Authorization: Bearer <token>` (make one on /settings)."""
    _limit(limiter, user)
    with write(conn):
        state = follows.follow(conn, user, body.kind, body.name, now)
        if body.in_digest is not None and body.in_digest != state.in_digest:
            state = follows.set_in_digest(conn, user, body.kind, body.name, body.in_digest)
    return _state_model(state)


@api_router.delete(
    "/follows/{kind}/{name:path}", tags=["paperboy"], response_model=FollowStateModel, responses=WRITE_ERRORS
)
def api_unfollow(
    kind: Annotated[Kind, Path(description="`author`, `member` or `org`.")],
    name: Annotated[
        str,
        Path(
            max_length=400,
            description="As for `POST /api/follows`, URL-encoded (an author's `/` as `%2F`).",
            examples=["Yann LeCun"],
        ),
    ],
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
) -> Any:
    """Stop following (when you don't, nothing changes); an author also leaves your digest."""
    _limit(limiter, user)
    with write(conn):
        state = follows.unfollow(conn, user, kind, name)
    return _state_model(state)
