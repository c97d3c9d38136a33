"""The moderation page: pending authorship claims, recent comments (hide / unhide), recent featurings
(unfeature), members (disable / enable), and how the background loops are doing. Admins only; its JSON
twin is `GET /api/admin`. The claim and comment buttons post to the routes that own those actions
(web/claims.py, web/comments.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from paperboy.community import claims, comments
from paperboy.db import write
from paperboy.errors import Forbidden, InvalidInput, NotFound
from paperboy.models import Claim, Comment, StoredPaper, User
from paperboy.store import background as background_store
from paperboy.store import papers as paper_store
from paperboy.store import queue as queue_store
from paperboy.store import users as user_store
from paperboy.web import deps, health, schemas
from paperboy.web.deps import Pages, Site

router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api")

LIMIT = 50


@dataclass(frozen=True)
class Moderation:
    """What the moderation page and its JSON twin show."""

    claims: list[Claim]
    comments: list[Comment]
    featurings: list[StoredPaper]
    users: list[User]
    background: list[background_store.LoopStatus]  # index worker, sync jobs, digests (background_status)
    # the job queue of a deployment on PostgreSQL (paperboy worker): counts by state ({} on SQLite), live
    # workers, and the newest queued, running and failed jobs
    queue_counts: dict[str, int]
    queue_workers: int
    queue_jobs: list[queue_store.QueuedJob]


def moderation(conn: Connection) -> Moderation:
    return Moderation(
        claims=claims.pending_claims(conn, LIMIT),
        comments=comments.recent(conn, LIMIT),
        featurings=paper_store.recent_featurings(conn, LIMIT),
        users=user_store.list_users(conn, 500),
        background=background_store.all_statuses(conn),
        queue_counts=queue_store.counts(conn),
        queue_workers=queue_store.live_workers(conn),
        queue_jobs=queue_store.recent(conn, ("todo", "doing", "failed"), LIMIT),
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    admin: User = Depends(deps.admin),
    conn: Connection = Depends(deps.conn),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> HTMLResponse:
    data = moderation(conn)
    html = templates.render(
        "pages/admin.html",
        site=site,
        today=now.date(),
        q="",
        title="Moderation",
        data=data,
        me=admin,
    )
    return HTMLResponse(html)


@router.post("/admin/papers/{arxiv_id:path}/unfeature")
def unfeature(
    arxiv_id: str,
    day: str = Form(""),
    admin: User = Depends(deps.admin),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
) -> Response:
    """Take a paper off one day's list; ingest will not put it back on that day."""
    try:
        when = date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInput(f"day: {day!r} is not a date in YYYY-MM-DD form") from exc
    with write(conn):
        if not paper_store.unfeature(conn, arxiv_id, when, now, admin.id):
            raise NotFound(f"{arxiv_id} is not on the list of {when.isoformat()}")
    return RedirectResponse("/admin#featurings", status_code=303)


def _set_disabled(conn: Connection, admin: User, user_id: int, disabled: bool) -> Response:
    if user_id == admin.id:
        raise Forbidden("You cannot disable your own account here.")
    with write(conn):
        if not user_store.set_disabled(conn, user_id, disabled):
            raise NotFound(f"no member {user_id}")
    return RedirectResponse("/admin#members", status_code=303)


@router.post("/admin/users/{user_id}/disable")
def disable_user(
    user_id: schemas.RowId, admin: User = Depends(deps.admin), conn: Connection = Depends(deps.conn)
) -> Response:
    """Disable a member: their sessions end at once and their API tokens stop working."""
    return _set_disabled(conn, admin, user_id, True)


@router.post("/admin/users/{user_id}/enable")
def enable_user(
    user_id: schemas.RowId, admin: User = Depends(deps.admin), conn: Connection = Depends(deps.conn)
) -> Response:
    return _set_disabled(conn, admin, user_id, False)


def _admin_of_api(user: User = Depends(deps.api_member)) -> User:
    if not user.is_admin:
        raise Forbidden("Only an admin can do that.")
    return user


@api_router.get(
    "/admin",
    tags=["paperboy"],
    responses={
        401: {"model": schemas.ApiError, "description": "No valid API token or session."},
        403: {"model": schemas.ApiError, "description": "The token's member is not an admin."},
    },
)
def admin_json(
    _admin: User = Depends(_admin_of_api), conn: Connection = Depends(deps.conn)
) -> dict[str, Any]:
    """The moderation page's data (admins only): pending claims, recent comments with their state, recent
    featurings, members, each background loop's status (as /readyz shows it) and, on PostgreSQL, the job
    queue (`queue`: counts by state, live workers, the newest queued, running and failed jobs; counts are
    empty on SQLite). Emails are never included."""
    data = moderation(conn)
    return {
        "claims": [
            {
                "id": c.id,
                "paper": c.arxiv_id,
                "user": c.username,
                "authorName": c.author_name,
                "status": c.status,
                "createdAt": c.created_at.isoformat(),
            }
            for c in data.claims
        ],
        "comments": [
            {
                "id": c.id,
                "paper": c.arxiv_id,
                "user": c.username,
                "body": c.body,
                "createdAt": c.created_at.isoformat(),
                "hidden": c.hidden_at is not None,
                "deleted": c.deleted_at is not None,
            }
            for c in data.comments
        ],
        "featurings": [
            {**schemas.daily_json(item), "day": item.featuring.day.isoformat() if item.featuring else None}
            for item in data.featurings
        ],
        "users": [
            {
                "id": u.id,
                "user": u.username,
                "isAdmin": u.is_admin,
                "disabled": u.disabled,
                "createdAt": u.created_at.isoformat(),
            }
            for u in data.users
        ],
        "background": {s.name: health.loop_json(s) for s in data.background},
        "queue": {
            "counts": data.queue_counts,
            "workers": data.queue_workers,
            "jobs": [
                {
                    "id": j.id,
                    "task": j.task,
                    "status": j.status,
                    "attempts": j.attempts,
                    "lock": j.lock,
                    "args": j.args,
                    "scheduledAt": j.scheduled_at.isoformat() if j.scheduled_at else None,
                    "lastEventAt": j.last_event_at.isoformat() if j.last_event_at else None,
                }
                for j in data.queue_jobs
            ],
        },
    }
