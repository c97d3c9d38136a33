"""Member profiles: the page `/u/{username}`, its JSON twin `GET /api/users/{username}` and its Atom feed
`/u/{username}/feed.atom`, all from `community.profiles.profile`.

Only public fields leave here: username, display name, when the member joined, whether they are an admin,
and their papers. Never an email, a password hash, a session or a token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from paperboy.community import collections as collection_ops
from paperboy.community import follows
from paperboy.community.profiles import Profile, profile
from paperboy.web import deps, feeds, listings, schemas
from paperboy.web.collections import CollectionModel, public_collection_models
from paperboy.web.deps import Pages, Site
from paperboy.web.pages import paper_path

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)
api_router = APIRouter(prefix="/api")

Username = Annotated[str, Path(description="The member's username (any case).", examples=["ada"])]


def profile_path(username: str) -> str:
    return f"/u/{username}"  # usernames are letters, digits, '-' and '_': nothing to escape


class UserProfile(BaseModel):
    """A member of this hub and their papers (our addition; the lists are daily-papers items)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    username: str
    user: str = Field(description="The username again, as Hugging Face's user objects name it.")
    fullname: str = Field(description="Display name (the username when none is set).")
    type: Literal["user"] = "user"
    created_at: schemas.HfDateTime = Field(alias="createdAt", description="When the member joined.")
    is_admin: bool = Field(alias="isAdmin", description="Whether the member administers this hub.")
    submitted: list[schemas.DailyPaper] = Field(
        description="Papers they put on the daily list, latest first."
    )
    upvoted: list[schemas.DailyPaper] = Field(description="Papers they upvoted, latest vote first.")
    authored: list[schemas.DailyPaper] = Field(
        description="Papers they are a confirmed author of (approved claims), latest approval first."
    )
    num_followers: int | None = Field(
        default=None, alias="numFollowers", description="How many members of this hub follow them."
    )
    collections: list[CollectionModel] = Field(
        default_factory=list,
        description="Their public collections without their papers, the one changed last first, then their "
        "upvotes as the collection `upvotes` (`GET /api/users/{username}/collections/{slug}`: the papers).",
    )


def profile_model(found: Profile) -> UserProfile:
    u = found.user
    return UserProfile(
        username=u.username,
        user=u.username,
        fullname=u.display_name,
        createdAt=u.created_at,
        isAdmin=u.is_admin,
        submitted=[schemas.daily_item(i) for i in found.submitted],
        upvoted=[schemas.daily_item(i) for i in found.upvoted],
        authored=[schemas.daily_item(i) for i in found.authored],
    )


@router.get("/u/{username}", response_model=None)
def profile_page(
    username: str,
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Pages = Depends(deps.pages),
) -> Response:
    found = profile(conn, username)
    if found.user.username != username:  # /u/ADA -> /u/ada
        return RedirectResponse(profile_path(found.user.username), status_code=301)
    feed = profile_path(found.user.username) + "/feed.atom"
    who = templates.viewer.user
    own = who is not None and who.id == found.user.id
    fstate = None if own else follows.state(conn, who, "member", found.user.username)
    html = templates.render(
        "pages/profile.html",
        site=site,
        today=now.date(),
        q="",
        title=f"{found.user.display_name} (@{found.user.username})",
        member=found.user,
        submitted=found.submitted,
        upvoted=found.upvoted,
        authored=found.authored,
        items=[*found.submitted, *found.authored, *found.upvoted],  # upvote buttons: which ones are pressed
        feed_url=feed,
        fstate=fstate,
        followers=follows.followers(conn, found.user),
        collections=collection_ops.public_collections(conn, found.user),  # public ones only (issue 14)
        next=profile_path(found.user.username),
        paper_path=paper_path,
    )
    return HTMLResponse(html)


@router.get("/u/{username}/feed.atom")
def profile_feed(
    username: str,
    conn: Connection = Depends(deps.conn),
    now: datetime = Depends(deps.now),
    site: Site = Depends(deps.site),
    templates: Environment = Depends(deps.templates),
) -> Response:
    """The member's submitted and authored papers, newest first."""
    found = profile(conn, username)
    path = profile_path(found.user.username)
    items = found.feed_items()[: feeds.FEED_LIMIT]
    return feeds._feed(
        templates,
        site=site,
        now=now,
        listing=listings.Listing("member", None, items, "publishedAt"),
        page_path=path,
        title=f"Papers by {found.user.display_name}",
        subtitle=f"Submitted and authored by @{found.user.username}",
    )


@api_router.get(
    "/users/{username}",
    tags=["paperboy"],
    response_model=UserProfile,
    response_model_exclude_none=True,
    responses={404: {"model": schemas.ApiError, "description": "No member by that name."}},
    summary="A member's profile",
)
def user_api(
    conn: Annotated[Connection, Depends(deps.conn)],
    site: Annotated[Site, Depends(deps.site)],
    username: Username,
) -> Any:
    """What `/u/{username}` shows: the member's public fields and the papers they submitted, upvoted and
    authored (up to 100 each), each a daily-papers item as `/api/daily_papers` returns them, and their public
    collections. Never an email or anything secret."""
    found = profile(conn, username)
    model = profile_model(found)
    model.collections = public_collection_models(conn, found.user, site)
    model.num_followers = follows.followers(conn, found.user)
    return model
