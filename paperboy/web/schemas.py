"""The JSON API's shapes, in Hugging Face's dialect, and the pure functions that build them from the store.

Field names follow huggingface.co's `/api/daily_papers` and `/api/papers/{id}` exactly (camelCase, `_id`,
`ai_summary`), through pydantic aliases so that `/docs` documents them. Keys whose value we do not know are
left out, as Hugging Face leaves them out (routes serialize with `exclude_none`). Pages' JSON twins call
`daily_item` / `paper_json` too, so a paper has one JSON shape everywhere.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from paperboy.models import Featuring, StoredPaper, Submitter
from paperboy.search.query import Hit
from paperboy.web.listings import featured_at


def hf_datetime(value: datetime) -> str:
    """Hugging Face's timestamp form: UTC, milliseconds, `Z` (`2025-12-10T06:50:16.000Z`)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


HfDateTime = Annotated[
    datetime,
    PlainSerializer(hf_datetime, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2025-12-10T06:50:16.000Z"]}),
]


class _Hf(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)


class Author(_Hf):
    id: str = Field(
        alias="_id",
        description="A stable id for this author on this paper (24 hex digits, like Hugging Face's ids).",
    )
    name: str = Field(description="The author's name as the paper gives it.")
    hidden: bool = Field(default=False, description="Always false here (Hugging Face hides some authors).")


class User(_Hf):
    """Who put a paper on the daily list."""

    name: str = Field(description="User name (the `submitter` filter of /api/daily_papers matches it).")
    user: str = Field(description="The user name again (`huggingface_hub` reads `username` from this key).")
    fullname: str = Field(description="Display name.")
    avatar_url: str | None = Field(default=None, alias="avatarUrl", description="Avatar URL, when known.")
    type: Literal["user"] = "user"


class Organization(_Hf):
    """The organization a paper was submitted for, as Hugging Face names it."""

    name: str = Field(description="Its slug on Hugging Face (`google`).")
    fullname: str = Field(description="Its display name (`Google`).")


class PaperModel(_Hf):
    """A paper, as `GET /api/papers/{id}` returns it and as the `paper` key of a daily-papers item."""

    id: str = Field(description="arXiv id without version, e.g. `2512.09363` or `hep-th/9901001`.")
    authors: list[Author]
    published_at: HfDateTime | None = Field(
        default=None, alias="publishedAt", description="When the paper appeared on arXiv (its first version)."
    )
    submitted_on_daily_at: HfDateTime | None = Field(
        default=None, alias="submittedOnDailyAt", description="When it was last put on the daily list."
    )
    title: str
    submitted_on_daily_by: User | None = Field(default=None, alias="submittedOnDailyBy")
    summary: str = Field(description="The abstract.")
    upvotes: int = Field(description="Upvotes on the daily list: those imported from upstream plus ours.")
    discussion_id: str | None = Field(
        default=None,
        alias="discussionId",
        description="Hugging Face's id of the paper's discussion, when it came from Hugging Face's lists.",
    )
    local_upvotes: int = Field(
        default=0,
        alias="localUpvotes",
        description="Of `upvotes`, those given by members of this hub (ours).",
    )
    ai_summary: str | None = None
    ai_keywords: list[str] | None = None
    github_repo: str | None = Field(default=None, alias="githubRepo")
    github_stars: int | None = Field(default=None, alias="githubStars")
    project_page: str | None = Field(default=None, alias="projectPage")
    organization: Organization | None = None


class SimilarPaper(PaperModel):
    """A paper in Hugging Face's paper shape, with how close it is to the paper asked about (our addition)."""

    similarity: float = Field(
        description="Cosine similarity of the two papers' embeddings: higher is closer, 1 the same meaning."
    )


class DailyPaper(_Hf):
    """One item of `GET /api/daily_papers` and `GET /api/papers/search`."""

    paper: PaperModel
    published_at: HfDateTime | None = Field(
        default=None,
        alias="publishedAt",
        description="When the paper was put on the daily list (for a paper never listed: its arXiv date).",
    )
    title: str
    summary: str
    thumbnail: str | None = None
    num_comments: int = Field(alias="numComments")
    submitted_by: User | None = Field(default=None, alias="submittedBy")
    organization: Organization | None = None
    is_author_participating: bool = Field(default=False, alias="isAuthorParticipating")
    demo: bool = Field(
        default=False,
        description="One of the bundled demo papers (our addition): listed only until real data arrives.",
    )


# A row id from a URL or a body: beyond 2**62 it names no row, and it would overflow SQLite's 64-bit INTEGER
# (an OverflowError, a 500) before any query could say "not found". Out of range is a 400 naming the field.
MAX_ROW_ID = 2**62
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id (1 to 2**62).")]
# A list page number (HTML lists, from 1): 50 million papers at 50 a page, more than any list holds. Beyond it
# (99999999999999999999 too) a 400 naming `p`, not a 404 computed from a number no page can have.
MAX_LIST_PAGE = 1_000_000


class ApiError(BaseModel):
    error: str = Field(description="What went wrong; for bad input, which parameter and why.")


# --- building them ---


def author_id(arxiv_id: str, position: int, name: str) -> str:
    return hashlib.sha1(f"{arxiv_id}\n{position}\n{name}".encode()).hexdigest()[:24]


def _user(s: Submitter | None) -> User | None:
    if s is None:
        return None
    return User(name=s.name, user=s.name, fullname=s.fullname or s.name, avatarUrl=s.avatar_url)


def _organization(f: Featuring | None) -> Organization | None:
    if f is None or not f.organization:
        return None
    return Organization(name=f.organization_name or f.organization, fullname=f.organization)


def paper_model(item: StoredPaper) -> PaperModel:
    """The Hugging Face paper shape of a stored paper (with its latest featuring, when it has one)."""
    p, f = item.paper, item.featuring
    return PaperModel(
        id=p.arxiv_id,
        authors=[Author(_id=author_id(p.arxiv_id, n, a), name=a) for n, a in enumerate(p.authors)],
        publishedAt=p.published_at,
        submittedOnDailyAt=featured_at(item) if f is not None else None,
        title=p.title,
        submittedOnDailyBy=_user(f.submitter) if f is not None else None,
        summary=p.abstract,
        upvotes=item.upvotes,
        discussionId=f.discussion_id if f is not None else None,
        localUpvotes=item.local_upvotes,
        ai_summary=p.ai_summary,
        ai_keywords=list(p.ai_keywords) if p.ai_keywords is not None else None,
        githubRepo=p.github_repo,
        githubStars=p.github_stars,
        projectPage=p.project_page,
        organization=_organization(f),
    )


def similar_paper(hit: Hit) -> SimilarPaper:
    """A neighbour found by meaning: its paper shape plus the hit's score as `similarity`."""
    base = paper_model(hit.item).model_dump(by_alias=True)
    return SimilarPaper(**base, similarity=round(float(hit.score), 6))


def daily_item(item: StoredPaper) -> DailyPaper:
    """The Hugging Face daily-papers item of a stored paper: the one builder of that shape."""
    f = item.featuring
    return DailyPaper(
        paper=paper_model(item),
        publishedAt=featured_at(item) if f is not None else item.paper.published_at,
        title=item.paper.title,
        summary=item.paper.abstract,
        thumbnail=f.thumbnail if f is not None else None,
        numComments=item.num_comments,
        submittedBy=_user(f.submitter) if f is not None else None,
        organization=_organization(f),
        isAuthorParticipating=False,
        demo=f is not None and f.source == "demo",
    )


def as_json(model: BaseModel) -> dict[str, Any]:
    """A model as the API writes it: Hugging Face's keys, unknown values left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def daily_json(item: StoredPaper) -> dict[str, Any]:
    return as_json(daily_item(item))


def paper_json(item: StoredPaper) -> dict[str, Any]:
    return as_json(paper_model(item))
