"""Author pages: `/authors/{name}` (a person's papers, newest first), its JSON twin `GET /api/authors/{name}`,
its Atom feed `/authors/{name}/feed.atom`, and Follow (`POST /authors/{name}/follow` and `/unfollow`, with
the CSRF token, for signed-in members: the same follows as `/following/follow`, community/follows.py).

A name matches as papers spell it, case and runs of spaces aside (store/authors.py `author_key`); the papers
come from the paper_authors index, a page at a time. Names are URL-encoded whole (templating.author_path):
a `/` in a name is `%2F`, so the raw path tells a name's slash from the `/feed.atom` after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from paperboy.community import follows
from paperboy.db import write
from paperboy.errors import InvalidInput, NotFound
from paperboy.models import StoredPaper, User
from paperboy.store import authors as store
from paperboy.store import papers as papers_store
from paperboy.templating import author_path
from paperboy.web import deps, feeds, listings, schemas, security
from paperboy.web.citations import citation_response, export_links
from paperboy.web.deps import Site, Viewer
from paperboy.web.pages import paper_path, url

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
write_router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api")

PAGE_SIZE = 50
MAX_PAGE = 1000  # 50,000 papers: more than anyone has written; past the author's last page is a 404 anyway
PREFIX = "/authors/"


@dataclass(frozen=True)
class AuthorPage:
    """One page of an author's papers: the name as their newest paper spells it, the count, the papers."""

    name: str
    total: int
    page: int  # from 1
    pages: int
    items: list[StoredPaper]


def clean_name(raw: str) -> str:
    """A name from a URL: spaces collapsed; empty is a 404, one longer than any name a 400 (no lookup)."""
    name = " ".join(raw.split())
    if not name:
        raise NotFound("no author named: an author page is /authors/NAME, e.g. /authors/Yann%20LeCun")
    if len(name) > store.MAX_NAME_CHARS:
        raise InvalidInput(f"name: an author's name has at most {store.MAX_NAME_CHARS} characters")
    return name


def author_page(conn: Connection, raw_name: str, page: int, limit: int = PAGE_SIZE) -> AuthorPage:
    """The data of `/authors/{name}` and its twins (NotFound: nobody by that name, or a page past the end)."""
    name = clean_name(raw_name)
    if page < 1 or page > MAX_PAGE:
        raise InvalidInput(f"p: page {page} is out of range (1-{MAX_PAGE})")
    total = store.count_papers_by(conn, name)
    if total == 0:
        raise NotFound(
            f"No paper in this hub has an author named “{name}”. Names match as papers spell them (case "
            "aside): try the spelling on one of their papers, or search for the name."
        )
    pages = max(1, math.ceil(total / limit))
    if page > pages:
        raise NotFound(f"page {page} is past the end of this list ({pages} page{'s' if pages != 1 else ''})")
    ids = store.paper_ids_by(conn, name, (page - 1) * limit, limit)
    found = papers_store.get_papers(conn, ids)
    spelled = store.author_name(conn, name) or name
    return AuthorPage(spelled, total, page, pages, [found[i] for i in ids if i in found])


def _raw_rest(request: Request, suffix: str = "") -> str:
    """What follows `/authors/` in the path as sent (still %-encoded), less `suffix` (`/feed.atom`)."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else request.url.path
    path = path.split("?", 1)[0]
    rest = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
    if suffix and rest.endswith(suffix):
        rest = rest[: -len(suffix)]
    return rest


def _name_from(request: Request, suffix: str = "") -> str:
    return unquote(_raw_rest(request, suffix))


def _feed_path(name: str) -> str:
    return author_path(name) + "/feed.atom"


# --- the page and its feed (one GET route: the raw path says which) -----------------------------------------


@router.get("/authors/{name:path}", response_model=None)
def author(
    request: Request,
    name: str,
    p: int = Query(1, ge=1, le=MAX_PAGE, description="page number, from 1"),
    fmt: str = Query(
        "", alias="format", description="bib, ris or csljson: this page's papers as a citation file"
    ),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    env: Environment = Depends(deps.templates),
    who: Viewer = Depends(deps.viewer),
) -> Response:
    """An author's papers, newest arXiv date first, 50 a page; `/authors/NAME/feed.atom`: the Atom feed."""
    if _raw_rest(request).endswith("/feed.atom"):
        return _author_feed(conn, _name_from(request, "/feed.atom"), now, site, env)
    found = author_page(conn, _name_from(request), p)
    if fmt:  # ?format=bib|ris|csljson: this page's papers as a citation file (issue 14)
        return citation_response(found.items, fmt, f"{found.name}-p{p}" if p > 1 else found.name)
    templates = deps.pages(request, who, conn)
    path = author_path(found.name)
    state = follows.state(conn, who.user, "author", found.name)
    first = (found.page - 1) * PAGE_SIZE + 1
    html = templates.render(
        "pages/author.html",
        site=site,
        today=now.date(),
        q="",
        title=f"{found.name} · Papers",
        author=found,
        heading=found.name,
        items=found.items,
        total=found.total,
        first_index=first,
        page=found.page,
        pages=found.pages,
        page_links={
            "previous": url(path, p=found.page - 1 if found.page > 2 else None) if found.page > 1 else None,
            "next": url(path, p=found.page + 1) if found.page < found.pages else None,
        },
        canonical=site.public_url.rstrip("/") + path,
        feed_url=_feed_path(found.name),
        export=export_links(path, {"p": p if p > 1 else None}),
        fstate=state,
        next=path,
        paper_path=paper_path,
    )
    return HTMLResponse(html)


def _author_feed(conn: Connection, raw_name: str, now: datetime, site: Site, env: Environment) -> Response:
    found = author_page(conn, raw_name, 1, feeds.FEED_LIMIT)
    return feeds._feed(
        env,
        site=site,
        now=now,
        listing=listings.Listing("author", None, found.items, "publishedAt"),
        page_path=author_path(found.name),
        self_path=_feed_path(found.name),
        title=f"Papers by {found.name}",
        subtitle=f"Papers in this hub with {found.name} among their authors, newest first",
    )


# --- follow -------------------------------------------------------------------------------------------------


def _change_follow(
    request: Request,
    suffix: str,
    change: Callable[[Connection, User, str], object],
    user: User,
    conn: Connection,
    next_path: str,
) -> Response:
    """Follow or unfollow the author the URL names (before `suffix`); back to `next` or the author page."""
    name = clean_name(_name_from(request, suffix))
    with write(conn):
        change(conn, user, name)
    back = security.safe_next(next_path, default=author_path(name))
    return RedirectResponse(back, status_code=303)


@write_router.post("/authors/{name:path}/follow")
def follow_author(
    request: Request,
    name: str,
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
) -> Response:
    """Follow this author (their new papers on /following and in the digest); back to the author page."""

    def change(c: Connection, u: User, n: str) -> object:
        return follows.follow(c, u, "author", n, now)

    return _change_follow(request, "/follow", change, user, conn, next)


@write_router.post("/authors/{name:path}/unfollow")
def unfollow_author(
    request: Request,
    name: str,
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
) -> Response:
    """Stop following this author (they leave the digest too); back to the author page."""

    def change(c: Connection, u: User, n: str) -> object:
        return follows.unfollow(c, u, "author", n)

    return _change_follow(request, "/unfollow", change, user, conn, next)


# --- the JSON twin ------------------------------------------------------------------------------------------


class AuthorModel(BaseModel):
    """An author and one page of their papers in this hub, newest arXiv date first (our addition)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    name: str = Field(description="The name as the author's newest paper in this hub spells it.")
    num_papers: int = Field(alias="numPapers", description="How many papers in this hub list this author.")
    page: int = Field(description="This page, from 0 (as `p` of /api/daily_papers).")
    papers: list[schemas.DailyPaper] = Field(
        description="This page's papers, newest arXiv date first, as daily-papers items."
    )


@api_router.get(
    "/authors/{name:path}",
    tags=["paperboy"],
    response_model=AuthorModel,
    response_model_exclude_none=True,
    responses={
        400: {"model": schemas.ApiError, "description": "A malformed `p` or `limit`, or a name too long."},
        404: {"model": schemas.ApiError, "description": "No paper in this hub has this author."},
    },
    summary="An author's papers",
)
def author_api(
    conn: Annotated[Connection, Depends(deps.conn)],
    name: Annotated[
        str,
        Path(
            description="The author's name as papers spell it (case aside), URL-encoded (`/` as `%2F`).",
            examples=["Yann LeCun"],
        ),
    ],
    p: Annotated[int, Query(ge=0, le=MAX_PAGE - 1, description="Page number, from 0.")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")] = 50,
) -> Any:
    """What `/authors/{name}` shows: the papers in this hub with this author (matched as papers spell the
    name, case and spacing aside), newest arXiv date first, `limit` at a time. Nobody by that name: 404."""
    found = author_page(conn, name, p + 1, limit)
    return AuthorModel(
        name=found.name,
        numPapers=found.total,
        page=p,
        papers=[schemas.daily_item(i) for i in found.items],
    )
