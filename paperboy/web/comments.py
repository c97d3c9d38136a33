"""The comment forms on paper pages: post, reply, edit, delete, and hide / unhide for admins.

Every route is a POST behind the router's CSRF check. Without JavaScript a form posts, and the answer is a
303 back to the paper page at the comment (`#comment-N`); with htmx (`HX-Request`) the answer is the thread
fragment, re-rendered, which replaces the old one. A body that is empty or too long is a 400 page with the
form again, the message beside the field and the text as typed (with htmx: the fragment with the same, as a
200 so that htmx swaps it in). Nothing is stored in either case. The rules live in
`paperboy.community.comments`; the JSON twins in `paperboy.web.comments_api`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from paperboy.community import comments
from paperboy.db import write
from paperboy.errors import FieldInvalid, NotFound
from paperboy.models import User, parse_arxiv_id
from paperboy.web import deps, listings, schemas
from paperboy.web.deps import Pages, Site
from paperboy.web.pages import paper_path
from paperboy.web.security import Limiter

router = APIRouter(
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(deps.require_csrf)],
)


def canonical_id(arxiv_id: str) -> str:
    """The paper's id as stored (a version suffix dropped); NotFound when it is not an arXiv id."""
    parsed = parse_arxiv_id(arxiv_id)
    if parsed is None:
        raise NotFound(f"{arxiv_id!r} is not an arXiv id (e.g. 2504.11966 or hep-th/9901001)")
    return parsed[0]


def parse_parent(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise FieldInvalid("parent_id", f"{value[:40]!r} is not a comment id.")
    return int(value)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request", "").lower() == "true"


def thread_context(conn: Connection, templates: Pages, arxiv_id: str, now: datetime) -> dict[str, Any]:
    """What `fragments/_comments.html` needs (the paper page passes the same `thread`, `item` and `now`)."""
    item = listings.paper(conn, arxiv_id)
    thread = comments.thread(conn, arxiv_id, templates.viewer.user)
    return {"item": item, "thread": thread, "now": now, "paper_path": paper_path}


def _fragment(
    conn: Connection, templates: Pages, arxiv_id: str, now: datetime, form_error: dict[str, str] | None = None
) -> HTMLResponse:
    context = thread_context(conn, templates, arxiv_id, now)
    if form_error is not None and form_error["form"] not in _forms(context["thread"]):
        form_error = {**form_error, "form": ""}  # that form is gone: the message shows above the thread
    return HTMLResponse(templates.render("fragments/_comments.html", form_error=form_error, **context))


def _forms(thread: comments.Thread) -> set[str]:
    """The forms the fragment draws for this viewer: `new`, `reply-N`, `edit-N`."""
    out = {"new"} if thread.can_post else set()
    for item in thread.items:
        for c in (item, *item.replies):
            if c.can_reply:
                out.add(f"reply-{c.id}")
            if c.can_edit:
                out.add(f"edit-{c.id}")
    return out


def _done(
    request: Request, conn: Connection, templates: Pages, arxiv_id: str, anchor: str, now: datetime
) -> Response:
    if is_htmx(request):
        return _fragment(conn, templates, arxiv_id, now)
    return RedirectResponse(f"{paper_path(arxiv_id)}#{anchor}", status_code=303)


def _refused(
    request: Request,
    conn: Connection,
    templates: Pages,
    site: Site,
    now: datetime,
    exc: FieldInvalid,
    *,
    arxiv_id: str,
    form: str,
    action: str,
    draft: str,
    parent_id: int | None = None,
) -> Response:
    """The form again with the message beside the field and the text as typed; nothing was stored."""
    draft = draft[: comments.MAX_BODY * 2]
    if is_htmx(request):
        return _fragment(conn, templates, arxiv_id, now, {"form": form, "message": str(exc), "draft": draft})
    editing = form.startswith("edit-")
    heading = "Edit your comment" if editing else ("Reply" if parent_id is not None else "Add a comment")
    html = templates.render(
        "pages/comment_form.html",
        site=site,
        today=now.date(),
        q="",
        title=heading,
        heading=heading,
        action=action,
        button="Save" if editing else "Post",
        draft=draft,
        parent_id=parent_id,
        message=str(exc),
        back=f"{paper_path(arxiv_id)}#comments",
    )
    return HTMLResponse(html, status_code=400)


@router.post("/papers/{arxiv_id:path}/comments")
def post_comment(
    request: Request,
    arxiv_id: str,
    body: str = Form(""),
    parent_id: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    paper_id = canonical_id(arxiv_id)
    limiter.hit("comment", [f"user:{user.id}"])
    parent: int | None = None
    try:
        parent = parse_parent(parent_id)
        with write(conn):
            made = comments.post(conn, user, paper_id, body, now, parent)
    except FieldInvalid as exc:
        return _refused(
            request,
            conn,
            templates,
            site,
            now,
            exc,
            arxiv_id=paper_id,
            form=f"reply-{parent}" if parent is not None else "new",
            action=f"{paper_path(paper_id)}/comments",
            draft=body,
            parent_id=parent,
        )
    return _done(request, conn, templates, paper_id, f"comment-{made.id}", now)


@router.post("/comments/{comment_id}/edit")
def edit_comment(
    request: Request,
    comment_id: schemas.RowId,
    body: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
    limiter: Limiter = Depends(deps.limiter),
) -> Response:
    limiter.hit("comment", [f"user:{user.id}"])  # an edit renders the text again, as a new comment does
    try:
        with write(conn):
            edited = comments.edit(conn, user, comment_id, body, now)
    except FieldInvalid as exc:
        arxiv_id = comments.get(conn, comment_id).arxiv_id
        return _refused(
            request,
            conn,
            templates,
            site,
            now,
            exc,
            arxiv_id=arxiv_id,
            form=f"edit-{comment_id}",
            action=f"/comments/{comment_id}/edit",
            draft=body,
        )
    return _done(request, conn, templates, edited.arxiv_id, f"comment-{comment_id}", now)


@router.post("/comments/{comment_id}/delete")
def delete_comment(
    request: Request,
    comment_id: schemas.RowId,
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    with write(conn):
        deleted = comments.delete(conn, user, comment_id, now)
    anchor = f"comment-{deleted.parent_id}" if deleted.parent_id is not None else "comments"
    return _done(request, conn, templates, deleted.arxiv_id, anchor, now)


def _moderate(
    request: Request,
    user: User,
    comment_id: schemas.RowId,
    hidden: bool,
    conn: Connection,
    templates: Pages,
    now: datetime,
) -> Response:
    with write(conn):
        changed = comments.set_hidden(conn, user, comment_id, hidden, now)
    return _done(request, conn, templates, changed.arxiv_id, f"comment-{comment_id}", now)


@router.post("/comments/{comment_id}/hide")
def hide_comment(
    request: Request,
    comment_id: schemas.RowId,
    user: User = Depends(deps.admin),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    return _moderate(request, user, comment_id, True, conn, templates, now)


@router.post("/comments/{comment_id}/unhide")
def unhide_comment(
    request: Request,
    comment_id: schemas.RowId,
    user: User = Depends(deps.admin),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    return _moderate(request, user, comment_id, False, conn, templates, now)
