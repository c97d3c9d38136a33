"""Collections: a member's named lists of papers, "Save" on every card, public ones at `/u/{name}/c/{slug}`
with a JSON twin and an Atom feed (issue 14).

Pages: `/collections` (the member's own, and a form for a new one), `/u/{username}/c/{slug}` (a collection:
its papers in the member's order with their notes; the owner gets the controls; `?format=bib|ris|csljson`
exports it), `/u/{username}/c/{slug}/feed.atom`, and `/papers/{id}/collections` ("Save to…": a paper's place
in each of the member's collections). `/u/{username}/c/upvotes` is the member's upvotes, public as their
profile's "Upvoted" list is, and not editable.

Forms post and come back (303) to the page they came from; htmx swaps the Save control in place. Scripts
holding a token use `/api/collections…` (create, edit, delete, add, note, move, remove, reorder) and read
`GET /api/users/{username}/collections[/{slug}]`. A private collection is 404 to everyone but its owner,
on every route.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from paperboy.citations import MAX_EXPORT
from paperboy.community import collections as ops
from paperboy.db import write
from paperboy.errors import InvalidInput, NotFound
from paperboy.models import Collection, User
from paperboy.web import citations, deps, feeds, listings, schemas, security
from paperboy.web.deps import Pages, Site, Viewer
from paperboy.web.pages import paper_path
from paperboy.web.security import Limiter

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
write_router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api", dependencies=[Depends(deps.require_csrf)])

Username = Annotated[str, Path(description="The member's username (any case).", examples=["ada"])]
Slug = Annotated[
    str,
    Path(
        max_length=80,
        description="The collection's slug, from its name (`reading-list`); `upvotes`: the member's upvotes.",
    ),
]
CollectionId = Annotated[int, Path(ge=1, le=schemas.MAX_ROW_ID, description="The collection's id.")]
ArxivId = Annotated[str, Path(description="arXiv id, e.g. `2501.01234` or `hep-th/9901001`.")]


def collection_path(username: str, slug: str) -> str:
    return f"/u/{username}/c/{slug}"  # usernames and slugs are letters, digits, '-' and '_'


def _limit(limiter: Limiter, user: User) -> None:
    limiter.hit("collect", [f"user:{user.id}"])


# --- JSON shapes --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class CollectionItemModel(_Model):
    """One paper of a collection, in the member's order."""

    type: str = Field(default="paper", description="What the item is: always `paper` here.")
    position: int = Field(description="Its place in the member's order, 0 first.")
    note: str | None = Field(default=None, description="The member's note on it (plain text).")
    added_at: schemas.HfDateTime = Field(alias="addedAt", description="When it was put in the collection.")
    paper: schemas.DailyPaper = Field(description="The paper, as `/api/daily_papers` items show it.")


class CollectionModel(_Model):
    """A member's collection of papers (our addition; field names follow Hugging Face's collections)."""

    id: int = Field(description="Its id, for the write routes (0: the implicit `upvotes` list).")
    slug: str = Field(description="Its address under the owner: `/u/{owner}/c/{slug}`.")
    title: str = Field(description="Its name.")
    description: str | None = None
    owner: str = Field(description="The owner's username.")
    private: bool = Field(description="Only the owner sees it.")
    editable: bool = Field(description="False for the implicit `upvotes` list, which follows the upvotes.")
    created_at: schemas.HfDateTime = Field(alias="createdAt")
    last_updated: schemas.HfDateTime = Field(alias="lastUpdated")
    num_items: int = Field(alias="numItems", description="How many papers it holds.")
    url: str = Field(description="Its page.")
    items: list[CollectionItemModel] | None = Field(
        default=None, description="Its papers in the member's order (only when one collection is asked for)."
    )


def _model(c: Collection, owner: str, site: Site, view: ops.CollectionView | None = None) -> CollectionModel:
    items = None
    if view is not None:
        items = [
            CollectionItemModel(
                position=view.start + n,
                note=e.entry.note,
                addedAt=e.entry.added_at,
                paper=schemas.daily_item(e.item),
            )
            for n, e in enumerate(view.entries)
        ]
    return CollectionModel(
        id=c.id,
        slug=c.slug,
        title=c.name,
        description=c.description,
        owner=owner,
        private=not c.is_public,
        editable=c.id != 0,
        createdAt=c.created_at,
        lastUpdated=c.updated_at,
        numItems=c.size if view is None else view.total,
        url=site.public_url.rstrip("/") + collection_path(owner, c.slug),
        items=items,
    )


def public_collection_models(conn: Connection, owner: User, site: Site) -> list[CollectionModel]:
    """The member's public collections, without papers, then their upvotes (the profile's JSON lists them)."""
    upvotes = ops.view(conn, owner.username, ops.UPVOTES_SLUG, None).collection
    return [_model(c, owner.username, site) for c in [*ops.public_collections(conn, owner), upvotes]]


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- pages --------------------------------------------------------------------------------------------------


def _mine_page(
    templates: Pages,
    conn: Connection,
    user: User,
    site: Site,
    now: datetime,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    html = templates.render(
        "pages/collections.html",
        site=site,
        today=now.date(),
        q="",
        title="Your collections",
        collections=ops.my_collections(conn, user),
        member=user,
        collection_path=collection_path,
        errors=errors or {},
        form=form or {},
        limits={"name": ops.NAME_MAX, "description": ops.DESCRIPTION_MAX, "count": ops.MAX_COLLECTIONS},
    )
    return HTMLResponse(html, status_code=status)


@router.get("/collections", response_model=None)
def my_collections(
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    return _mine_page(templates, conn, user, site, now)


PAGE_SIZE = 100  # cards per page of a collection


@router.get("/u/{username}/c/{slug}", response_model=None)
def collection_page(
    username: str,
    slug: str,
    p: int = Query(1, ge=1, le=schemas.MAX_LIST_PAGE),
    format: str = Query("", description="bib, ris or csljson: the collection as a citation file."),
    who: Viewer = Depends(deps.viewer),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    if format:  # the collection from its start, as many papers as an export takes
        whole = ops.view(conn, username, slug, who.user, limit=MAX_EXPORT)
        name = f"{whole.owner.username}-{whole.collection.slug}"
        return citations.citation_response([e.item for e in whole.entries], format, name)
    start = (p - 1) * PAGE_SIZE
    shown = ops.view(conn, username, slug, who.user, start=start, limit=PAGE_SIZE)
    owner = shown.owner.username
    if owner != username:  # /u/ADA/c/x -> /u/ada/c/x
        return RedirectResponse(collection_path(owner, slug), status_code=301)
    if p > 1 and not shown.entries:
        raise NotFound(f"page {p} of this collection is empty")
    path = collection_path(owner, shown.collection.slug)
    pages = max(1, -(-shown.total // PAGE_SIZE))
    html = templates.render(
        "pages/collection.html",
        site=site,
        today=now.date(),
        q="",
        title=f"{shown.collection.name} · @{owner}",
        description=shown.collection.description,
        coll=shown.collection,
        view=shown,
        items=[e.item for e in shown.entries],
        entries=shown.entries,
        feed_url=path + "/feed.atom" if shown.collection.is_public else None,
        export_links=citations.export_links(path),
        export_max=MAX_EXPORT,
        first_index=start + 1,
        page=p,
        pages=pages,
        total=shown.total,
        page_links={
            "previous": (path + (f"?p={p - 1}" if p > 2 else "")) if p > 1 else None,
            "next": f"{path}?p={p + 1}" if p < pages else None,
        },
        paper_path=paper_path,
        limits={"name": ops.NAME_MAX, "description": ops.DESCRIPTION_MAX, "note": ops.NOTE_MAX},
    )
    response = HTMLResponse(html)
    if not shown.collection.is_public:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@router.get("/u/{username}/c/{slug}/feed.atom")
def collection_feed(
    username: str,
    slug: str,
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Environment = Depends(deps.templates),
) -> Response:
    """A public collection's papers, the one added last first (a private one is 404, even to its owner: a
    feed reader's address is not a secret)."""
    shown = ops.view(conn, username, slug, None, limit=feeds.FEED_LIMIT, newest_first=True)
    owner = shown.owner.username
    return feeds._feed(
        templates,
        site=site,
        now=now,
        listing=listings.Listing("collection", None, [e.item for e in shown.entries], "publishedAt"),
        page_path=collection_path(owner, shown.collection.slug),
        title=f"{shown.collection.name} (@{owner})",
        subtitle=shown.collection.description or f"A collection of papers by @{owner}",
    )


def _save_state(conn: Connection, user: User | None, arxiv_id: str) -> dict[str, Any]:
    saved = bool(user is not None and ops.memberships(conn, user, arxiv_id))
    return {"arxiv_id": arxiv_id, "saved": saved}


@router.get("/papers/{arxiv_id:path}/collections", response_model=None)
def save_to_page(
    request: Request,
    arxiv_id: str,
    next: str = "",
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    """ "Save to…": the member's collections with a checkbox each (ticked: the paper is in it) and a field
    for a new one. htmx gets the menu alone, to open under the Save button."""
    item = listings.paper(conn, arxiv_id)
    context: dict[str, Any] = {
        "menu_paper": item.paper,
        "collections": ops.my_collections(conn, user),
        "holding": ops.memberships(conn, user, arxiv_id),
        "next": security.safe_next(next, default=paper_path(arxiv_id)),
        "name_max": ops.NAME_MAX,
    }
    if request.headers.get("hx-request"):
        return HTMLResponse(templates.render("fragments/_save_menu.html", inline=True, **context))
    html = templates.render(
        "pages/save_to.html", site=site, today=now.date(), q="", title="Save to a collection", **context
    )
    return HTMLResponse(html)


# --- forms --------------------------------------------------------------------------------------------------


def _back_or_fragment(
    request: Request, templates: Pages, conn: Connection, user: User, arxiv_id: str, next: str
) -> Response:
    back = security.safe_next(next, default=paper_path(arxiv_id))
    if request.headers.get("hx-request"):
        state = _save_state(conn, user, arxiv_id)
        return HTMLResponse(templates.render("fragments/_save.html", save=state, next=back))
    return RedirectResponse(back, status_code=303)


@write_router.post("/papers/{arxiv_id:path}/save", response_model=None)
def save(
    request: Request,
    arxiv_id: str,
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    """One click: the paper into the member's Reading list (made on the first save)."""
    _limit(limiter, user)
    with write(conn):
        ops.save(conn, user, arxiv_id, now)
    return _back_or_fragment(request, templates, conn, user, arxiv_id, next)


def _ids(values: list[str], field: str) -> set[int]:
    try:
        out = {int(v) for v in values}
    except ValueError:
        raise InvalidInput(f"{field}: collection ids are numbers") from None
    if any(not 1 <= v <= schemas.MAX_ROW_ID for v in out):
        raise InvalidInput(f"{field}: no such collection")
    return out


@write_router.post("/papers/{arxiv_id:path}/collections", response_model=None)
def save_to(
    request: Request,
    arxiv_id: str,
    collection: list[str] = Form([]),
    shown: list[str] = Form([]),
    new_name: str = Form(""),
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    """The "Save to…" menu sent: the paper in the ticked collections, out of the unticked ones, and in a new
    one when a name is given."""
    _limit(limiter, user)
    with write(conn):
        ops.set_memberships(
            conn,
            user,
            arxiv_id,
            _ids(collection, "collection"),
            _ids(shown, "shown"),
            now,
            new_name=new_name or None,
        )
    return _back_or_fragment(request, templates, conn, user, arxiv_id, next)


@write_router.post("/collections", response_model=None)
def create(
    name: str = Form(""),
    description: str = Form(""),
    public: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    _limit(limiter, user)
    try:
        with write(conn):
            made = ops.create_collection(conn, user, name, now, description=description, public=bool(public))
    except InvalidInput as exc:
        form = {"name": name[: ops.NAME_MAX * 2], "description": description[: ops.DESCRIPTION_MAX * 2]}
        return _mine_page(templates, conn, user, site, now, {"": str(exc)}, form, status=400)
    return RedirectResponse(collection_path(user.username, made.slug), status_code=303)


@write_router.post("/collections/{collection_id}/edit", response_model=None)
def edit(
    collection_id: CollectionId,
    name: str = Form(""),
    description: str = Form(""),
    public: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> Response:
    """Rename (the address follows the name), describe, make public or private."""
    _limit(limiter, user)
    with write(conn):
        changed = ops.edit_collection(
            conn, user, collection_id, now, name=name, description=description, public=bool(public)
        )
    return RedirectResponse(collection_path(user.username, changed.slug), status_code=303)


@write_router.post("/collections/{collection_id}/delete", response_model=None)
def delete(
    collection_id: CollectionId,
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
) -> Response:
    _limit(limiter, user)
    with write(conn):
        ops.delete_collection(conn, user, collection_id)
    return RedirectResponse("/collections", status_code=303)


def _back_to(user: User, collection_id: int, conn: Connection, next: str, anchor: str = "") -> Response:
    mine = ops.owned(conn, user, collection_id)
    default = collection_path(user.username, mine.slug) + anchor
    return RedirectResponse(security.safe_next(next, default=default), status_code=303)


@write_router.post("/collections/{collection_id}/remove", response_model=None)
def remove(
    collection_id: CollectionId,
    arxiv_id: str = Form(...),
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> Response:
    _limit(limiter, user)
    with write(conn):
        ops.remove_paper(conn, user, collection_id, arxiv_id, now)
    return _back_to(user, collection_id, conn, next)


@write_router.post("/collections/{collection_id}/note", response_model=None)
def note(
    collection_id: CollectionId,
    arxiv_id: str = Form(...),
    note: str = Form(""),
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> Response:
    _limit(limiter, user)
    with write(conn):
        ops.set_note(conn, user, collection_id, arxiv_id, note, now)
    return _back_to(user, collection_id, conn, next)


def _place(to: str) -> str | int:
    """ "up", "down", or a place as people count (1 first) from a form: the operation's 0-based one."""
    if to in ("up", "down"):
        return to
    try:
        return max(0, int(to.strip()) - 1)
    except ValueError:
        raise InvalidInput("to: up, down or a place (1 first)") from None


@write_router.post("/collections/{collection_id}/move", response_model=None)
def move(
    collection_id: CollectionId,
    arxiv_id: str = Form(...),
    to: str = Form(..., max_length=12),
    next: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> Response:
    """Move a paper up, down, or to a place (1 first)."""
    _limit(limiter, user)
    with write(conn):
        ops.move_paper(conn, user, collection_id, arxiv_id, _place(to), now)
    return _back_to(user, collection_id, conn, next)


# --- API ----------------------------------------------------------------------------------------------------

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": schemas.ApiError,
        "description": "No such member, or no such collection (a private one is 404 to all but its owner).",
    },
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ApiError, "description": "A field is invalid, or a cap is reached."},
    401: {"model": schemas.ApiError, "description": "No valid API token (or session)."},
    403: {
        "model": schemas.ApiError,
        "description": "No credentials at all, or a session request without its CSRF header.",
    },
    404: {
        "model": schemas.ApiError,
        "description": "Not your collection, or no such paper in it / this hub.",
    },
    429: {"model": schemas.ApiError, "description": "Too many changes in a minute; see `Retry-After`."},
}


class NewCollection(BaseModel):
    title: str = Field(description=f"Its name, 1 to {ops.NAME_MAX} characters.", max_length=1000)
    description: str | None = Field(default=None, max_length=10_000)
    private: bool = Field(default=True, description="Only you see it (the default).")


class CollectionChange(BaseModel):
    title: str | None = Field(default=None, description="A new name (its slug follows).", max_length=1000)
    description: str | None = Field(default=None, description="A new description; empty removes it.")
    private: bool | None = None


class NewItem(BaseModel):
    id: str = Field(description="The paper's arXiv id.", max_length=64)
    note: str | None = Field(default=None, description="A note on it (plain text).", max_length=10_000)


class ItemChange(BaseModel):
    note: str | None = Field(default=None, description="The note (plain text); empty removes it.")
    position: int | None = Field(
        default=None, ge=0, le=schemas.MAX_ROW_ID, description="Move it here (0 first; past the end: last)."
    )


class NewOrder(BaseModel):
    ids: list[str] = Field(
        description="arXiv ids in the new order; papers not listed keep their order after them.",
        max_length=ops.MAX_ITEMS,
    )


def _view_json(conn: Connection, site: Site, user: User, collection_id: int) -> dict[str, Any]:
    mine = ops.owned(conn, user, collection_id)
    shown = ops.view(conn, user.username, mine.slug, user)
    return _json(_model(shown.collection, user.username, site, shown))


@api_router.get(
    "/users/{username}/collections",
    tags=["paperboy"],
    response_model=list[CollectionModel],
    response_model_exclude_none=True,
    responses=READ_ERRORS,
    summary="A member's collections",
)
def api_list(
    username: Username,
    conn: Connection = Depends(deps.conn),
    who: Viewer = Depends(deps.viewer),
    site: Site = Depends(deps.site),
) -> Any:
    """The member's public collections, the one changed last first, and their implicit `upvotes` list; the
    owner (with a token or a session) gets the private ones too. Without their papers: ask for one."""
    owner = ops.owner_by_name(conn, username)
    mine = who.user is not None and who.user.id == owner.id
    if not mine:
        return [_json(m) for m in public_collection_models(conn, owner, site)]
    upvotes = ops.view(conn, owner.username, ops.UPVOTES_SLUG, who.user).collection
    return [_json(_model(c, owner.username, site)) for c in [*ops.my_collections(conn, owner), upvotes]]


@api_router.get(
    "/users/{username}/collections/{slug}",
    tags=["paperboy"],
    response_model=CollectionModel,
    response_model_exclude_none=True,
    responses=READ_ERRORS,
    summary="A collection and its papers",
)
def api_collection(
    username: Username,
    slug: Slug,
    conn: Connection = Depends(deps.conn),
    who: Viewer = Depends(deps.viewer),
    site: Site = Depends(deps.site),
) -> Any:
    """What `/u/{username}/c/{slug}` shows: the collection and its papers in the member's order, each with
    its note. A private collection is 404 unless the token (or session) is its owner's."""
    shown = ops.view(conn, username, slug, who.user)
    return _json(_model(shown.collection, shown.owner.username, site, shown))


@api_router.post(
    "/collections",
    tags=["paperboy"],
    status_code=201,
    response_model=CollectionModel,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    summary="Make a collection",
)
def api_create(
    body: NewCollection,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Any:
    """A new collection of the token's member; its slug comes from the title (`reading-list-2` when they
    have a `reading-list`). Private unless `private` is false."""
    _limit(limiter, user)
    with write(conn):
        made = ops.create_collection(
            conn, user, body.title, now, description=body.description, public=not body.private
        )
    return _view_json(conn, site, user, made.id)


@api_router.patch(
    "/collections/{collection_id}",
    tags=["paperboy"],
    response_model=CollectionModel,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    summary="Rename, describe, or make a collection public or private",
)
def api_edit(
    collection_id: CollectionId,
    body: CollectionChange,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Any:
    """Change what is given; the rest stays."""
    _limit(limiter, user)
    public = None if body.private is None else not body.private
    with write(conn):
        ops.edit_collection(
            conn, user, collection_id, now, name=body.title, description=body.description, public=public
        )
    return _view_json(conn, site, user, collection_id)


@api_router.delete(
    "/collections/{collection_id}",
    tags=["paperboy"],
    status_code=204,
    response_class=Response,
    responses=WRITE_ERRORS,
    summary="Delete a collection",
)
def api_delete(
    collection_id: CollectionId,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
) -> Response:
    """The collection and its notes go; the papers stay in the hub."""
    _limit(limiter, user)
    with write(conn):
        ops.delete_collection(conn, user, collection_id)
    return Response(status_code=204)


@api_router.post(
    "/collections/{collection_id}/papers",
    tags=["paperboy"],
    response_model=CollectionModel,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    summary="Add a paper to a collection",
)
def api_add(
    collection_id: CollectionId,
    body: NewItem,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Any:
    """Put the paper last (adding it again changes nothing but the note, when one is given)."""
    _limit(limiter, user)
    with write(conn):
        ops.add_paper(conn, user, collection_id, body.id, now, note=body.note)
    return _view_json(conn, site, user, collection_id)


@api_router.patch(
    "/collections/{collection_id}/papers/{arxiv_id:path}",
    tags=["paperboy"],
    response_model=CollectionModel,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    summary="Set a paper's note or place in a collection",
)
def api_change_item(
    collection_id: CollectionId,
    arxiv_id: ArxivId,
    body: ItemChange,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Any:
    _limit(limiter, user)
    with write(conn):
        if body.note is not None:
            ops.set_note(conn, user, collection_id, arxiv_id, body.note, now)
        if body.position is not None:
            ops.move_paper(conn, user, collection_id, arxiv_id, body.position, now)
    return _view_json(conn, site, user, collection_id)


@api_router.delete(
    "/collections/{collection_id}/papers/{arxiv_id:path}",
    tags=["paperboy"],
    response_model=CollectionModel,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    summary="Take a paper out of a collection",
)
def api_remove(
    collection_id: CollectionId,
    arxiv_id: ArxivId,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Any:
    """(When it is not in it, nothing changes.)"""
    _limit(limiter, user)
    with write(conn):
        ops.remove_paper(conn, user, collection_id, arxiv_id, now)
    return _view_json(conn, site, user, collection_id)


@api_router.put(
    "/collections/{collection_id}/order",
    tags=["paperboy"],
    response_model=CollectionModel,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
    summary="Reorder a collection",
)
def api_reorder(
    collection_id: CollectionId,
    body: Annotated[NewOrder, Body()],
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Any:
    """A new order: the papers listed first, in that order; any not listed (added meanwhile) after them."""
    _limit(limiter, user)
    with write(conn):
        ops.reorder(conn, user, collection_id, body.ids, now)
    return _view_json(conn, site, user, collection_id)
