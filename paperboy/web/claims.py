"""Authorship claims: a member claims to be one of a paper's authors (the form on the paper page); an admin
approves or rejects (`/admin/claims/{claim_id}/approve|reject`, the buttons of the admin page).

An author name that is not the paper's is a 400 page, a second claim on the same paper a 409; both leave
nothing changed. After a claim or a decision the browser goes back to the paper page (or `next`).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from paperboy.community import claims as ops
from paperboy.db import write
from paperboy.errors import NotFound
from paperboy.models import User, parse_arxiv_id
from paperboy.web import deps, schemas, security
from paperboy.web.pages import paper_path
from paperboy.web.security import Limiter

router = APIRouter(
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(deps.require_csrf)],
)


@router.post("/papers/{arxiv_id:path}/claim")
def claim(
    arxiv_id: str,
    author_name: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> Response:
    limiter.hit("claim", [f"user:{user.id}"])
    parsed = parse_arxiv_id(arxiv_id)
    if parsed is None:
        raise NotFound(f"{arxiv_id!r} is not an arXiv id")
    with write(conn):
        made = ops.claim_authorship(conn, user, parsed[0], author_name, now)
    return RedirectResponse(paper_path(made.arxiv_id) + "#authorship", status_code=303)


def _decide(
    conn: Connection, admin: User, claim_id: int, approve: bool, now: datetime, next: str
) -> Response:
    with write(conn):
        decided = ops.decide_claim(conn, admin, claim_id, approve, now)
    target = security.safe_next(next, default=paper_path(decided.arxiv_id))
    return RedirectResponse(target, status_code=303)


@router.post("/admin/claims/{claim_id}/approve")
def approve(
    claim_id: schemas.RowId,
    next: str = Form(""),
    admin: User = Depends(deps.admin),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
) -> Response:
    return _decide(conn, admin, claim_id, True, now, next)


@router.post("/admin/claims/{claim_id}/reject")
def reject(
    claim_id: schemas.RowId,
    next: str = Form(""),
    admin: User = Depends(deps.admin),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
) -> Response:
    return _decide(conn, admin, claim_id, False, now, next)
