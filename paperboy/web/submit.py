"""Submitting a paper: the form at /papers/submit and `POST /api/papers/submit`.

Both count the attempt against the member's `submit` rate limit before anything else, then parse what was
typed as an arXiv id (anything else is refused, nothing fetched), check the hub in a short read, ask arXiv
with no database transaction open, and store in a second, short transaction that checks again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from paperboy.community import submit as ops
from paperboy.db import write
from paperboy.errors import AlreadySubmitted, FieldInvalid, InvalidInput, NotFound, SourceError
from paperboy.models import Paper, User
from paperboy.web import badges, deps, schemas
from paperboy.web.deps import Pages, Site
from paperboy.web.pages import paper_path
from paperboy.web.security import Limiter

router = APIRouter(
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(deps.require_csrf)],
)
api_router = APIRouter(prefix="/api", dependencies=[Depends(deps.require_csrf)])

Fetch = Callable[[str], Paper | None]


def fetcher(request: Request) -> Fetch | None:
    return request.app.state.fetch_paper


def submit(
    conn: Connection, limiter: Limiter, user: User, text: str, now: datetime, fetch: Fetch | None
) -> ops.SubmitResult:
    """The whole submission, rate limit first; raises what `community.submit` raises."""
    limiter.hit("submit", [f"user:{user.id}"])
    arxiv_id = ops.parse_submission(text)
    stored = ops.check_submittable(conn, arxiv_id)
    paper = stored.paper if stored is not None else ops.fetch_submission(fetch, arxiv_id)
    ops.check_window(paper, user, now)
    try:
        with write(conn):  # checks again: someone may have listed it while arXiv answered
            return ops.submit_paper(conn, user, arxiv_id, now, lambda _id: paper)
    except IntegrityError as exc:  # listed by a submission running at the same moment
        raise AlreadySubmitted(f"{arxiv_id} was just put on the daily list.", arxiv_id) from exc


# --- the form -----------------------------------------------------------------------------------------------


def _form(
    templates: Pages,
    site: Site,
    now: datetime,
    *,
    status: int = 200,
    value: str = "",
    errors: dict[str, str] | None = None,
    existing: str | None = None,
) -> HTMLResponse:
    html = templates.render(
        "pages/submit.html",
        site=site,
        today=now.date(),
        q="",
        title="Submit a paper",
        form={"arxiv": value[:300]},
        errors=errors or {},
        existing=paper_path(existing) if existing else None,
        existing_id=existing,
        window_days=ops.SUBMIT_WINDOW.days,
    )
    return HTMLResponse(html, status_code=status)


@router.get("/papers/submit")
def submit_form(
    arxiv: str = "",
    user: User = Depends(deps.member),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    return _form(templates, site, now, value=arxiv)


@router.post("/papers/submit")
def submit_page(
    arxiv: str = Form(""),
    user: User = Depends(deps.member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    fetch: Fetch | None = Depends(fetcher),
    templates: Pages = Depends(deps.pages),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Response:
    def again(status: int, message: str, existing: str | None = None) -> HTMLResponse:
        return _form(
            templates, site, now, status=status, value=arxiv, errors={"arxiv": message}, existing=existing
        )

    try:
        result = submit(conn, limiter, user, arxiv, now, fetch)
    except FieldInvalid as exc:
        return again(400, str(exc))
    except AlreadySubmitted as exc:
        return again(409, str(exc), existing=exc.arxiv_id)
    except NotFound as exc:
        return again(404, str(exc))
    except SourceError:
        return again(502, ops.UNREACHABLE)
    return RedirectResponse(paper_path(result.arxiv_id), status_code=303)


# --- the API ------------------------------------------------------------------------------------------------

_BODY_SCHEMA = {
    "type": "object",
    "required": ["arxiv"],
    "properties": {
        "arxiv": {
            "type": "string",
            "description": "An arXiv id (`2501.01234`, `2501.01234v2`, `hep-th/9901001`, `arXiv:2501.01234`) "
            "or an arxiv.org abs/pdf or huggingface.co/papers URL.",
            "examples": ["2501.01234"],
        }
    },
}


async def submitted_text(request: Request) -> str:
    """The `arxiv` field of a JSON object body or of a form."""
    ctype = request.headers.get("content-type", "")
    value: Any
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("arxiv")
    else:
        try:
            body = await request.json()
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise InvalidInput(
                'arxiv: send JSON like {"arxiv": "2501.01234"} (or a form field arxiv)'
            ) from exc
        value = body.get("arxiv") if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise InvalidInput(
            'arxiv: give the paper\'s arXiv id or URL as a string, e.g. {"arxiv": "2501.01234"}'
        )
    return value


@api_router.post(
    "/papers/submit",
    tags=["paperboy"],
    status_code=201,
    response_model=badges.PaperWithBadges,
    response_model_exclude_none=True,
    summary="Submit a paper to today's daily list",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _BODY_SCHEMA},
                "application/x-www-form-urlencoded": {"schema": _BODY_SCHEMA},
            },
        }
    },
    responses={
        400: {"model": schemas.ApiError, "description": "`arxiv` is not an arXiv id or URL, or too old."},
        401: {"model": schemas.ApiError, "description": "No session cookie and no valid API token."},
        403: {"model": schemas.ApiError, "description": "A session request without its CSRF header."},
        404: {"model": schemas.ApiError, "description": "arXiv has no such paper."},
        409: {"description": "Already on the daily list: `error`, and the paper's `id` and `url`."},
        429: {"model": schemas.ApiError, "description": "Too many submissions; see `Retry-After`."},
        502: {"model": schemas.ApiError, "description": "arXiv could not be reached; try again."},
    },
)
def submit_api(
    text: str = Depends(submitted_text),
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    fetch: Fetch | None = Depends(fetcher),
    site: Site = Depends(deps.site),
    now: datetime = Depends(deps.now),
) -> Any:
    """Put a paper on today's daily list with you as its submitter, as on huggingface.co/papers: by arXiv
    id or URL (nothing else is fetched), looked up on arXiv when the hub does not have it. Members may submit
    papers up to 14 days after their first version appeared; admins any. Send `Authorization: Bearer
    <token>` (a personal API token from /settings), or the session cookie with `X-CSRF-Token`.

    201 with the paper in Hugging Face's paper shape (as `GET /api/papers/{id}` returns it); 409 with the
    paper's `id` and `url` when it is already on the daily list."""
    try:
        result = submit(conn, limiter, user, text, now, fetch)
    except FieldInvalid as exc:
        raise InvalidInput(f"{exc.field}: {exc}") from exc
    except AlreadySubmitted as exc:
        url = site.public_url.rstrip("/") + paper_path(exc.arxiv_id)
        return JSONResponse({"error": str(exc), "id": exc.arxiv_id, "url": url}, status_code=409)
    return badges.paper_with_badges(conn, result.item)
