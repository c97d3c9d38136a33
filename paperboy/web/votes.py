"""Upvotes: `POST /papers/{id}/upvote` toggles from a card or a paper page (htmx swaps the button; without
JavaScript the form posts and comes back to the page), and the API's `POST` / `DELETE
/api/papers/{id}/upvote` set it for scripts holding a token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from paperboy.community import votes
from paperboy.db import write
from paperboy.models import User
from paperboy.web import deps, schemas, security
from paperboy.web.deps import Pages
from paperboy.web.security import Limiter

router = APIRouter(include_in_schema=False, dependencies=[Depends(deps.require_csrf)])
api_router = APIRouter(prefix="/api", dependencies=[Depends(deps.require_csrf)])

ArxivId = Annotated[str, Path(description="arXiv id, e.g. `2501.01234` or `hep-th/9901001`.")]


class VoteModel(BaseModel):
    """A member's upvote on a paper after the request."""

    id: str = Field(description="The paper's arXiv id.")
    upvoted: bool = Field(description="Whether the member's upvote is there now.")
    upvotes: int = Field(
        description="The paper's upvotes as every page and list shows them (upstream + ours)."
    )
    local_upvotes: int = Field(alias="localUpvotes", description="Of those, the members of this hub.")


WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ApiError, "description": "No valid API token (or session)."},
    403: {
        "model": schemas.ApiError,
        "description": "No credentials at all, or a session request without its CSRF header.",
    },
    404: {"model": schemas.ApiError, "description": "No such paper in this hub."},
    429: {"model": schemas.ApiError, "description": "Too many upvotes in a minute; see `Retry-After`."},
}


def _vote(
    conn: Connection, limiter: Limiter, user: User, arxiv_id: str, now: datetime, want: bool | None
) -> votes.VoteState:
    limiter.hit("vote", [f"user:{user.id}"])
    with write(conn):
        if want is None:
            return votes.toggle_vote(conn, user, arxiv_id, now)
        return votes.set_vote(conn, user, arxiv_id, want, now)


@router.post("/papers/{arxiv_id:path}/upvote", response_model=None)
def toggle(
    request: Request,
    arxiv_id: str,
    next: str = Form(""),
    size: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    templates: Pages = Depends(deps.pages),
    now: datetime = Depends(deps.now),
) -> Response:
    """Toggle the member's upvote. htmx gets the new button; a plain form goes back where it came from."""
    state = _vote(conn, limiter, user, arxiv_id, now, None)
    if request.headers.get("hx-request"):
        html = templates.render(
            "fragments/_vote.html", vote=state, large=size == "lg", next=security.safe_next(next)
        )
        return HTMLResponse(html)
    back = security.safe_next(next, default="/papers/" + arxiv_id)
    return RedirectResponse(back, status_code=303)


def _state_json(state: votes.VoteState) -> dict[str, Any]:
    return VoteModel(
        id=state.arxiv_id, upvoted=state.voted, upvotes=state.upvotes, localUpvotes=state.local_upvotes
    ).model_dump(by_alias=True)


@api_router.post(
    "/papers/{arxiv_id:path}/upvote", tags=["paperboy"], response_model=VoteModel, responses=WRITE_ERRORS
)
def api_upvote(
    arxiv_id: ArxivId,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> dict[str, Any]:
    """Upvote a paper as the token's member (doing it twice changes nothing).

    Send `Authorization: Bearer <token>` (make one on /settings); from a signed-in browser, the session
    cookie and the `X-CSRF-Token` header do instead."""
    return _state_json(_vote(conn, limiter, user, arxiv_id, now, True))


@api_router.delete(
    "/papers/{arxiv_id:path}/upvote", tags=["paperboy"], response_model=VoteModel, responses=WRITE_ERRORS
)
def api_unvote(
    arxiv_id: ArxivId,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> dict[str, Any]:
    """Take the token's member's upvote back (when there is none, nothing changes)."""
    return _state_json(_vote(conn, limiter, user, arxiv_id, now, False))
