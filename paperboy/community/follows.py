"""Following authors, members and organizations (issue 14): what a member follows, and the newest papers from
it (`/following`, its JSON twin and the digest's "New from …" sections).

A target is named the way its page is: an author by their name (as papers spell it, case and spacing aside:
`/authors/{name}`), a member by username (`/u/{username}`), an organization by its slug (`/orgs/{slug}`).
Following needs the target to exist here: an author on at least one paper in this hub, a member with an
account, an organization that featured at least one paper (a typo is refused with a pointer, as its page
would 404). Unfollowing accepts any name, so a follow whose target has gone can still be removed.

A new follow goes into the member's digest (`in_digest`); switching that off, or unfollowing an author, also
takes the name off the authors their digest subscription lists (the preferences page's "Authors to follow"),
so the author truly leaves the digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy.engine import Connection

from paperboy.errors import Conflict, InvalidInput, NotFound
from paperboy.models import Follow, StoredPaper, User
from paperboy.store import authors as author_store
from paperboy.store import follows as store
from paperboy.store import papers as paper_store
from paperboy.store import subscriptions as sub_store
from paperboy.store import users as user_store

MAX_FOLLOWS = 500  # per member, all kinds together
KINDS = store.KINDS
FEED_PAGE = 20  # papers a page of /following
FEED_PAGES = 20  # pages: the newest 400 papers from what a member follows
MAX_ORG_CHARS = 200


@dataclass(frozen=True)
class Target:
    """Something that can be followed, resolved: its key in the follows table and the name shown."""

    kind: str
    key: str
    name: str
    user_id: int | None = None  # a member's account

    @property
    def path(self) -> str:
        return target_path(self.kind, self.key if self.kind == "org" else self.name)


@dataclass(frozen=True)
class FollowState:
    target: Target
    following: bool
    in_digest: bool


def state_of(f: Follow) -> FollowState:
    """A stored follow as a button's state."""
    return FollowState(Target(f.kind, f.target_key, f.target_name, f.target_user_id), True, f.in_digest)


def target_path(kind: str, name: str) -> str:
    """The page of a followed target."""
    if kind == "author":
        return "/authors/" + quote(name, safe="")
    if kind == "member":
        return "/u/" + quote(name, safe="")
    return "/orgs/" + quote(name.lower(), safe="")


def _kind(kind: str) -> str:
    k = kind.strip().lower()
    if k not in KINDS:
        raise InvalidInput(f"kind: one of {', '.join(KINDS)} (got {kind[:20]!r})")
    return k


def _clean(kind: str, name: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise InvalidInput(f"name: the {_word(kind)} to follow is needed")
    limit = author_store.MAX_NAME_CHARS if kind == "author" else MAX_ORG_CHARS
    if len(text) > limit:
        raise InvalidInput(f"name: an {_word(kind)}'s name has at most {limit} characters")
    return text


def _word(kind: str) -> str:
    return {"author": "author", "member": "member", "org": "organization"}.get(kind, kind)


def key_of(kind: str, name: str) -> str | None:
    """The follows key a name stands for, without looking anything up (None: a member, whose key is the
    account id)."""
    if kind == "author":
        return author_store.author_key(name)
    if kind == "org":
        return store.org_key(name)
    return None


def resolve(conn: Connection, kind: str, name: str) -> Target:
    """The target `name` names; NotFound when there is none in this hub."""
    kind = _kind(kind)
    text = _clean(kind, name)
    if kind == "author":
        spelled = author_store.author_name(conn, text)
        if spelled is None:
            raise NotFound(
                f"No paper in this hub has an author named “{text}”: follow an author from their page "
                "(/authors/NAME, reached from any paper's author list) or search for the name."
            )
        return Target("author", author_store.author_key(text), spelled)
    if kind == "member":
        user = user_store.get_user_by_name(conn, text.lstrip("@"))
        if user is None or user.disabled:
            raise NotFound(f"No member named “{text[:40]}” on this hub.")
        return Target("member", str(user.id), user.username, user.id)
    found = store.org_name(conn, text)
    if found is None:
        raise NotFound(
            f"No paper in this hub was featured by an organization “{text}” (its slug, as in /orgs/SLUG)."
        )
    return Target("org", store.org_key(text), found[1])


def _loose(conn: Connection, kind: str, name: str) -> Target:
    """The target for unfollowing or for a button's state: resolved when it exists, else from the name."""
    kind = _kind(kind)
    text = _clean(kind, name)
    try:
        return resolve(conn, kind, text)
    except NotFound:
        if kind == "member":
            raise
        return Target(kind, key_of(kind, text) or text, text)


def _state(conn: Connection, user: User | None, target: Target) -> FollowState:
    found = store.get(conn, user.id, target.kind, target.key) if user is not None else None
    return FollowState(target, found is not None, found is not None and found.in_digest)


def state(conn: Connection, user: User | None, kind: str, name: str) -> FollowState:
    """Whether `user` follows the target (for its button); a missing member is NotFound."""
    return _state(conn, user, _loose(conn, kind, name))


def follow(conn: Connection, user: User, kind: str, name: str, now: datetime) -> FollowState:
    """Follow the target (its papers go into the digest); following twice changes nothing. Run inside a
    write transaction."""
    target = resolve(conn, kind, name)
    if target.kind == "member" and target.user_id == user.id:
        raise InvalidInput("You can't follow yourself: your upvotes and submissions are on your profile.")
    store.lock_member(conn, user.id)
    if (
        not store.add(
            conn,
            user.id,
            target.kind,
            target.key,
            target.name,
            now,
            cap=MAX_FOLLOWS,
            target_user_id=target.user_id,
        )
        and store.get(conn, user.id, target.kind, target.key) is None
    ):
        raise Conflict(
            f"You follow {MAX_FOLLOWS} authors, members and organizations already: unfollow some first."
        )
    return _state(conn, user, target)


def _drop_from_digest_authors(conn: Connection, user: User, target: Target) -> None:
    """Take an author off the member's digest subscription's own list, when it names them."""
    if target.kind != "author":
        return
    sub = sub_store.get_by_user(conn, user.id)
    if sub is None:
        return
    authors = sub_store.followed_authors(conn, sub.id)
    kept = tuple(a for a in authors if author_store.author_key(a) != target.key)
    if kept != authors:
        sub_store.set_authors(conn, sub.id, kept)


def unfollow(conn: Connection, user: User, kind: str, name: str) -> FollowState:
    """Stop following (nothing to stop changes nothing). Run inside a write transaction."""
    target = _loose(conn, kind, name)
    store.remove(conn, user.id, target.kind, target.key)
    _drop_from_digest_authors(conn, user, target)
    return _state(conn, user, target)


def set_in_digest(conn: Connection, user: User, kind: str, name: str, in_digest: bool) -> FollowState:
    """Whether the follow's new papers go into the member's digest. Run inside a write transaction."""
    target = _loose(conn, kind, name)
    if not store.set_in_digest(conn, user.id, target.kind, target.key, in_digest):
        raise NotFound(f"You don't follow {target.name}: follow first, then choose what your digest gets.")
    if not in_digest:
        _drop_from_digest_authors(conn, user, target)
    return _state(conn, user, target)


def following(conn: Connection, user: User) -> list[Follow]:
    return store.followed(conn, user.id)


def followers(conn: Connection, user: User) -> int:
    """How many members follow this member."""
    return store.followers(conn, "member", str(user.id))


def has_digest(conn: Connection, user: User) -> bool:
    """Whether the member gets the email digest (a subscription their account manages, switched on)."""
    sub = sub_store.get_by_user(conn, user.id)
    return sub is not None and sub.status == "active"


def followed_authors(conn: Connection, user: User | None, names: Sequence[str]) -> set[str]:
    """Which of these author names (a paper's list) the member follows, as the names given."""
    if user is None or not names:
        return set()
    keys = {author_store.author_key(n): n for n in names}
    hit = store.following_keys(conn, user.id, "author", list(keys))
    return {n for k, n in keys.items() if k in hit}


# --- the papers from what a member follows ----------------------------------------------------------------


@dataclass(frozen=True)
class Via:
    """Why a paper is in the following feed: the followed target it came from."""

    kind: str  # "author" | "member" | "org"
    name: str  # the author's name, the member's username, the organization's name
    path: str  # the target's page
    at: datetime  # when: the paper's date, the upvote or submission, the featuring day
    how: str = ""  # a member's: "upvote" | "submit" (the newest, when they did both)


@dataclass(frozen=True)
class FollowingPage:
    follows: list[Follow]
    items: list[StoredPaper]
    via: dict[str, Via]  # by arxiv id
    page: int  # from 1
    has_next: bool


def _by_kind(items: Sequence[Follow], kind: str) -> list[Follow]:
    return [f for f in items if f.kind == kind]


def following_page(conn: Connection, user: User, page: int = 1, size: int = FEED_PAGE) -> FollowingPage:
    """What the member follows and one page of the newest papers from all of it: an author's papers by date,
    a member's upvotes and submissions, an organization's featured papers, each once, newest first. Bounded:
    at most FEED_PAGES pages."""
    if page < 1 or page > FEED_PAGES:
        raise InvalidInput(f"p: page {page} is out of range (1-{FEED_PAGES})")
    mine = following(conn, user)
    want = page * size + 1  # one more than this page needs: is there a next one?
    names = {(f.kind, f.target_key): f.target_name for f in mine}
    found = store.author_activity(conn, [f.target_key for f in _by_kind(mine, "author")], want)
    members = list(
        store.usernames(conn, [f.target_user_id for f in _by_kind(mine, "member") if f.target_user_id])
    )
    found += store.member_activity(conn, members, want)
    found += store.org_activity(conn, [f.target_key for f in _by_kind(mine, "org")], want)
    found.sort(key=lambda a: (a.at, a.arxiv_id), reverse=True)
    order: dict[str, Via] = {}
    for a in found:
        if a.arxiv_id not in order:
            name = names.get((a.kind, a.target_key), a.target_key)
            shown = a.target_key if a.kind == "org" else name
            order[a.arxiv_id] = Via(a.kind, name, target_path(a.kind, shown), a.at, a.how)
    ids = list(order)
    chunk = ids[(page - 1) * size : page * size]
    got = paper_store.get_papers(conn, chunk)
    items = [got[i] for i in chunk if i in got]
    return FollowingPage(mine, items, {i: order[i] for i in chunk}, page, len(ids) > page * size)


# --- an organization's page -------------------------------------------------------------------------------

ORG_PAGE = 30
ORG_PAGES = 200


@dataclass(frozen=True)
class OrgPage:
    slug: str  # as upstream spells it
    name: str  # the full name
    total: int
    page: int
    pages: int
    items: list[StoredPaper]
    followers: int


def org_page(conn: Connection, slug: str, page: int = 1, size: int = ORG_PAGE) -> OrgPage:
    """The organization's featured papers, the newest featuring first; NotFound when it never featured one
    here, or past the last page."""
    text = _clean("org", slug)
    if page < 1 or page > ORG_PAGES:
        raise InvalidInput(f"p: page {page} is out of range (1-{ORG_PAGES})")
    found = store.org_name(conn, text)
    if found is None:
        raise NotFound(f"No paper in this hub was featured by an organization “{text}”.")
    total, ids = store.org_paper_ids(conn, text, (page - 1) * size, size)
    pages = max(1, -(-total // size))
    if page > pages:
        raise NotFound(f"page {page} is past the end of this list ({pages} page{'s' if pages != 1 else ''})")
    got = paper_store.get_papers(conn, ids)
    items = [got[i] for i in ids if i in got]
    return OrgPage(
        found[0], found[1], total, page, pages, items, store.followers(conn, "org", store.org_key(text))
    )
