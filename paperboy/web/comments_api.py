"""The JSON twin of a paper's thread and the API writes for comments (our addition beside Hugging Face's API).

Writes act for the member behind `Authorization: Bearer <token>`, or for the signed-in browser (then with the
`X-CSRF-Token` header). A comment's JSON carries its author's user name and display name, never an email.
Every answer escapes `<`, `>` and `&` inside strings (`\\u003c` …), so that no comment's text can be read as
markup even by a client that sniffs; `html` is the sanitised rendering the page shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from paperboy.community import comments
from paperboy.db import write
from paperboy.models import User
from paperboy.web import deps, listings
from paperboy.web.comments import canonical_id
from paperboy.web.schemas import MAX_ROW_ID, ApiError, HfDateTime
from paperboy.web.security import Limiter, SafeJSONResponse

OURS = "paperboy"


router = APIRouter(prefix="/api", tags=[OURS], default_response_class=SafeJSONResponse)

READ_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "A malformed id or parameter."},
    401: {"model": ApiError, "description": "An `Authorization` header with an invalid or revoked token."},
    404: {"model": ApiError, "description": "No such paper in this hub."},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ApiError,
        "description": "An empty or too long `body`, or a `parent_id` that cannot be replied to.",
    },
    401: {"model": ApiError, "description": "No valid API token or session."},
    403: {
        "model": ApiError,
        "description": "Not yours (or not an admin), or a session request without its CSRF token.",
    },
    404: {"model": ApiError, "description": "No such paper or comment."},
    429: {
        "model": ApiError,
        "description": "Too many comments in a minute; `Retry-After` says when to retry.",
    },
}

ArxivId = Annotated[
    str, Path(description="arXiv id, old-style ids included (`hep-th/9901001`).", examples=["2512.09363"])
]
CommentId = Annotated[int, Path(description="The comment's id.", ge=1, le=2**62)]
# Writes check who is asking first (a 401 before anything else), then the CSRF header for session requests.
WRITE = [Depends(deps.api_member), Depends(deps.require_csrf)]


class _Model(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class CommentAuthor(_Model):
    name: str = Field(description="User name; their profile is `/u/{name}`.")
    fullname: str = Field(description="Display name (the user name when they set none).")


class CommentModel(_Model):
    """One comment as the caller sees it."""

    id: int
    parent_id: int | None = Field(alias="parentId", description="The top-level comment this replies to.")
    status: Literal["visible", "hidden", "deleted"] = Field(
        description="`hidden`: by a moderator (admins see the text; others a placeholder); `deleted`: by its "
        "author (a placeholder kept while it has replies)."
    )
    author: CommentAuthor | None = Field(description="None for placeholders.")
    body: str = Field(description="The Markdown as written (empty for placeholders).")
    html: str = Field(description="`body` rendered and sanitised, as the paper page shows it.")
    created_at: HfDateTime = Field(alias="createdAt")
    edited_at: HfDateTime | None = Field(alias="editedAt", description="When the text last changed.")
    replies: list[CommentModel] = Field(
        default_factory=list, description="Replies, oldest first (one level)."
    )


class ThreadModel(_Model):
    paper_id: str = Field(alias="paperId")
    num_comments: int = Field(
        alias="numComments", description="Comments anyone can see here (the hub's own; not Hugging Face's)."
    )
    comments: list[CommentModel] = Field(description="Top-level comments, oldest first, with their replies.")


class NewComment(_Model):
    body: str = Field(
        description="Markdown, 1-10,000 characters.", examples=["Nice result; see also $O(n)$."]
    )
    parent_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ROW_ID,
        validation_alias=AliasChoices("parent_id", "parentId"),
        description="Reply to this comment (a reply to a reply joins its top-level comment).",
    )


class EditComment(_Model):
    body: str = Field(description="The new Markdown, 1-10,000 characters.")


def comment_model(item: comments.ThreadItem) -> CommentModel:
    author = None
    if item.username is not None:
        author = CommentAuthor(name=item.username, fullname=item.fullname or item.username)
    return CommentModel(
        id=item.id,
        parentId=item.comment.parent_id,
        status=item.state,
        author=author,
        body=item.body,
        html=item.html,
        createdAt=item.comment.created_at,
        editedAt=item.comment.edited_at if not item.placeholder else None,
        replies=[comment_model(r) for r in item.replies],
    )


def thread_model(thread: comments.Thread) -> ThreadModel:
    return ThreadModel(
        paperId=thread.arxiv_id,
        numComments=thread.count,
        comments=[comment_model(i) for i in thread.items],
    )


def api_viewer(who: deps.Viewer = Depends(deps.viewer)) -> User | None:
    """Who reads: the token's member when an `Authorization` header is sent (401 when it is bad), else the
    signed-in browser's member, else nobody."""
    return who.user


def _one(conn: Connection, user: User, comment_id: int) -> CommentModel:
    found = comments.get(conn, comment_id)
    return comment_model(comments.seen_by(found, user))


@router.get(
    "/papers/{arxiv_id:path}/comments",
    response_model=ThreadModel,
    responses=READ_ERRORS,
    summary="A paper's comments",
)
def get_thread(
    arxiv_id: ArxivId,
    conn: Connection = Depends(deps.conn),
    viewer: User | None = Depends(api_viewer),
) -> Any:
    """The JSON twin of the paper page's discussion: top-level comments oldest first, each with its replies.
    Admins (by token or session) also see hidden comments, marked `hidden`."""
    paper_id = canonical_id(arxiv_id)
    listings.paper(conn, paper_id)  # 404 for an unknown paper
    return thread_model(comments.thread(conn, paper_id, viewer))


@router.post(
    "/papers/{arxiv_id:path}/comments",
    status_code=201,
    response_model=CommentModel,
    responses=WRITE_ERRORS,
    dependencies=WRITE,
    summary="Comment on a paper",
)
def post_comment(
    arxiv_id: ArxivId,
    payload: NewComment,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    limiter: Limiter = Depends(deps.limiter),
    now: datetime = Depends(deps.now),
) -> Any:
    """Post a comment (Markdown) as the token's member, or a reply with `parent_id`. 10 a minute per member.

    Send `Authorization: Bearer <token>` (make one on /settings); from a signed-in browser, the session
    cookie and the `X-CSRF-Token` header do instead."""
    paper_id = canonical_id(arxiv_id)
    limiter.hit("comment", [f"user:{user.id}"])
    with write(conn):
        made = comments.post(conn, user, paper_id, payload.body, now, payload.parent_id)
    return _one(conn, user, made.id)


@router.patch(
    "/comments/{comment_id}",
    response_model=CommentModel,
    responses=WRITE_ERRORS,
    dependencies=WRITE,
    summary="Edit your comment",
)
def edit_comment(
    comment_id: CommentId,
    payload: EditComment,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    limiter: Limiter = Depends(deps.limiter),
) -> Any:
    """Replace the text of one of your comments (`editedAt` records when). A hidden one cannot be edited.
    Edits count against the same limit as new comments (429 with `Retry-After` past it)."""
    limiter.hit("comment", [f"user:{user.id}"])  # an edit renders the text again, as a new comment does
    with write(conn):
        comments.edit(conn, user, comment_id, payload.body, now)
    return _one(conn, user, comment_id)


@router.delete(
    "/comments/{comment_id}",
    status_code=204,
    response_class=Response,
    responses=WRITE_ERRORS,
    dependencies=WRITE,
    summary="Delete your comment",
)
def delete_comment(
    comment_id: CommentId,
    user: User = Depends(deps.api_member),
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
) -> Response:
    """Delete one of your comments: its text goes; while it has replies it shows as "[deleted]"."""
    with write(conn):
        comments.delete(conn, user, comment_id, now)
    return Response(status_code=204)
