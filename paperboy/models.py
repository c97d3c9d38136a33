"""Plain data passed between layers. Imports nothing from paperboy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# New-style ids (0704.0001 onwards, 4 or 5 digit suffix) and old-style ids (hep-th/9901001, math.AG/0309136).
_NEW_ID = re.compile(r"(?P<id>\d{4}\.\d{4,5})(?:v(?P<v>\d+))?")
_OLD_ID = re.compile(r"(?P<id>[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?")
_ID_IN_TEXT = re.compile(
    r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/|https?://huggingface\.co/papers/)?"
    r"(?P<rest>.+?)(?:\.pdf)?/?$",
    re.IGNORECASE,
)


def in_category(categories: Sequence[str], wanted: Sequence[str]) -> bool:
    """Whether a paper's categories meet any wanted one: a category (`cs.CL`) or a whole archive (`cs`)."""
    return any(c == w or ("." not in w and c.split(".", 1)[0] == w) for c in categories for w in wanted)


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Split an arXiv id, versioned id, `arXiv:` id or abs/pdf URL into (id, version); None if it is not one.

    >>> parse_arxiv_id("https://arxiv.org/abs/2504.11966v2")
    ('2504.11966', 2)
    >>> parse_arxiv_id("hep-th/9901001")
    ('hep-th/9901001', None)
    """
    text = text.strip()
    m = _ID_IN_TEXT.match(text)
    if not m:
        return None
    rest = m.group("rest")
    for pattern in (_NEW_ID, _OLD_ID):
        idm = pattern.fullmatch(rest)
        if idm:
            v = idm.group("v")
            return idm.group("id"), int(v) if v else None
    return None


@dataclass(frozen=True)
class Paper:
    """One arXiv paper, as the newest version we have seen describes it.

    `version` is None when a source does not say (Hugging Face, the daily-listing corpus): such a record
    fills gaps but never overwrites what a versioned source said.
    """

    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    primary_category: str | None = None
    version: int | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    comments: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    license: str | None = None
    withdrawn: bool = False
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Submitter:
    """Who put a paper on the daily list (a Hugging Face user, or a member of this hub)."""

    name: str
    fullname: str | None = None
    avatar_url: str | None = None
    # The member's account id when a member of this hub submitted it (None for upstream submitters, and
    # once the account is deleted): their submissions are theirs by id, never by a name someone can reuse.
    user_id: int | None = None


@dataclass(frozen=True)
class Featuring:
    """A paper entering the daily list on one day, with what the source said about it then."""

    arxiv_id: str
    day: date
    source: str  # "huggingface", "arxiv", "member", "demo"
    submitted_at: datetime | None = None
    submitter: Submitter | None = None
    upvotes: int = 0
    num_comments: int = 0
    thumbnail: str | None = None
    organization: str | None = None  # the organization's full name as shown ("Google")
    organization_name: str | None = None  # its slug upstream ("google"): Hugging Face's `organization.name`
    discussion_id: str | None = None  # Hugging Face's `paper.discussionId` (its comment thread's id)


@dataclass(frozen=True)
class Record:
    """What a source yields: a paper, and the featuring it came with when the source is a daily list."""

    paper: Paper
    featuring: Featuring | None = None


@dataclass(frozen=True)
class Page:
    """One unit of work from a source: the records and the cursor to store once they are stored."""

    records: list[Record]
    cursor: dict[str, Any] | None = None
    total: int | None = None  # expected number of pages or records, for progress bars, when known


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    featured: int = 0

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.featured

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.featured + other.featured,
        )


@dataclass(frozen=True)
class StoredPaper:
    """A paper as read back from the store, with its featuring (when listed) and engagement figures."""

    paper: Paper
    featuring: Featuring | None = None
    local_upvotes: int = 0
    local_comments: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def upvotes(self) -> int:
        upstream = self.featuring.upvotes if self.featuring else 0
        return upstream + self.local_upvotes

    @property
    def num_comments(self) -> int:
        upstream = self.featuring.num_comments if self.featuring else 0
        return upstream + self.local_comments


@dataclass(frozen=True)
class User:
    """A member of this hub. The password hash never leaves the store."""

    id: int
    username: str
    email: str
    created_at: datetime
    fullname: str | None = None
    is_admin: bool = False
    disabled: bool = False

    @property
    def display_name(self) -> str:
        return self.fullname or self.username


@dataclass(frozen=True)
class ApiToken:
    """A personal API token as listed on the settings page (the secret itself is shown once, at creation)."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class Comment:
    """One comment on a paper: top level (`parent_id` None) or a reply to one."""

    id: int
    arxiv_id: str
    user_id: int | None
    username: str | None  # None once the account is deleted
    parent_id: int | None
    body: str  # Markdown as written; "" once deleted
    created_at: datetime
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    hidden_at: datetime | None = None
    author_fullname: str | None = None
    body_html: str | None = None  # `body` rendered and sanitised when written; None for rows from before that
    html_version: int | None = None  # the renderer that made `body_html` (paperboy.markdown.VERSION)

    @property
    def visible(self) -> bool:
        return self.deleted_at is None and self.hidden_at is None


@dataclass(frozen=True)
class Claim:
    """A member's claim to be one of a paper's authors; an admin approves or rejects it."""

    id: int
    user_id: int
    username: str
    arxiv_id: str
    author_name: str
    status: str  # "pending" | "approved" | "rejected"
    created_at: datetime
    decided_at: datetime | None = None


@dataclass(frozen=True)
class Topic:
    """One thing a subscriber wants news of: a free-text search, or a search saved from the search page."""

    id: int
    subscription_id: int
    query: str
    source: str  # "topic" | "search"
    created_at: datetime
    categories: tuple[str, ...] = ()  # a saved search's category filter
    vector: bytes | None = None  # float32 embedding of `query`, made when it was saved
    model: str | None = None


@dataclass(frozen=True)
class Subscription:
    """An email address that asked for digests, and what it wants in them."""

    id: int
    email: str
    status: str  # "pending" | "active" | "unsubscribed"
    created_at: datetime
    user_id: int | None = None
    cadence: str = "daily"  # "daily" (weekdays) | "weekly"
    send_hour: int = 8
    weekly_day: int = 0  # Monday
    timezone: str = "UTC"
    max_papers: int = 10
    categories: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    token_version: int = 1
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    topics: tuple[Topic, ...] = ()


@dataclass(frozen=True)
class Follow:
    """Something a member follows: an author (by name), another member, or an organization."""

    id: int
    user_id: int
    kind: str  # "author" | "member" | "org"
    target_key: str  # author: author_key(name); member: str(user id); org: the organization's slug
    target_name: str  # as shown
    created_at: datetime
    in_digest: bool = True  # its new papers go into the member's digest ("New from …")
    target_user_id: int | None = None  # a followed member's account


@dataclass(frozen=True)
class Collection:
    """A member's named list of papers; public ones are at /u/{username}/c/{slug}."""

    id: int
    user_id: int
    slug: str
    name: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    is_public: bool = False
    size: int = 0  # papers in it, when the reader counted them
    owner: str | None = None  # the owner's username, when the reader joined it


@dataclass(frozen=True)
class CollectionItem:
    """One paper in a collection, in the member's order, with their note."""

    collection_id: int
    arxiv_id: str
    position: int
    added_at: datetime
    note: str | None = None
