"""Collections: a member's named lists of papers, each paper with an optional plain-text note, in the member's
order, private or public. "Save" puts a paper in the member's "Reading list" (made on the first save); the
papers a member upvoted are one more list, `upvotes`, public as the profile's "Upvoted" list is.

Every operation takes the caller's write transaction (`paperboy.db.write`) and checks what it is given:
names 1-100 characters, descriptions and notes at most 2000, at most MAX_COLLECTIONS lists per member and
MAX_ITEMS papers per list, so that no request does unbounded work. A collection that is not the member's is
NotFound to them, exactly as a missing one is (a private list's existence is not told to others).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from paperboy.errors import InvalidInput, NotFound
from paperboy.models import Collection, CollectionItem, StoredPaper, User
from paperboy.store import collections as store
from paperboy.store import papers, users
from paperboy.textcheck import check_text

NAME_MAX = 100
DESCRIPTION_MAX = 2000
NOTE_MAX = 2000
MAX_COLLECTIONS = 200  # per member
MAX_ITEMS = 2000  # papers per collection
SLUG_BASE_MAX = 70  # leaves room for "-NNN" in the 80-character column
DEFAULT_NAME = "Reading list"
DEFAULT_SLUG = "reading-list"
UPVOTES_SLUG = "upvotes"  # the implicit list of a member's upvotes: never a stored collection's slug
RESERVED_SLUGS = frozenset({UPVOTES_SLUG})

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Entry:
    """One paper of a collection as pages show it: the paper and its place and note."""

    item: StoredPaper
    entry: CollectionItem


@dataclass(frozen=True)
class CollectionView:
    collection: Collection
    owner: User
    entries: list[Entry]
    implicit: bool = False  # the member's upvotes: not editable
    mine: bool = False  # the viewer owns it (and may edit it)
    total: int = 0  # papers in the whole collection (`entries` may be one page of them)
    start: int = 0  # the place of entries[0] in the whole collection


# --- checking what comes in ---------------------------------------------------------------------------------


def slugify(name: str) -> str:
    """The URL part a name gives: ASCII letters and digits joined by '-', lower case ("Reading list" ->
    "reading-list"); "collection" when nothing is left (a name in another script)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")
    slug = slug[:SLUG_BASE_MAX].rstrip("-")
    return slug or "collection"


def check_name(name: str) -> str:
    clean = " ".join(check_text("name", name).split())
    if not clean:
        raise InvalidInput("name: give the collection a name")
    if len(clean) > NAME_MAX:
        raise InvalidInput(f"name: at most {NAME_MAX} characters (this one has {len(clean)})")
    return clean


def _check_long_text(field: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    clean = check_text(field, value).replace("\r\n", "\n").strip()
    if len(clean) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters (this one has {len(clean)})")
    return clean or None


def check_description(value: str | None) -> str | None:
    return _check_long_text("description", value, DESCRIPTION_MAX)


def check_note(value: str | None) -> str | None:
    return _check_long_text("note", value, NOTE_MAX)


def _free_slug(conn: Connection, user_id: int, name: str, current: str | None = None) -> str:
    """The name's slug, or with "-2", "-3"… the first the member has free. A rename whose words give the
    same slug keeps the collection's (`current`), so its address stays."""
    base = slugify(name)
    if current is not None and (current == base or _numbered(current, base)):
        return current
    taken = store.slugs_like(conn, user_id, base) | RESERVED_SLUGS
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:  # at most MAX_COLLECTIONS + 1 tries
        n += 1
    return f"{base}-{n}"


def _numbered(slug: str, base: str) -> bool:
    return slug.startswith(base + "-") and slug[len(base) + 1 :].isdigit()


# --- collections --------------------------------------------------------------------------------------------


def owned(conn: Connection, user: User, collection_id: int) -> Collection:
    """The member's own collection, or NotFound (someone else's is not told apart from a missing one)."""
    found = store.get_collection(conn, collection_id)
    if found is None or found.user_id != user.id:
        raise NotFound(f"you have no collection {collection_id}")
    return found


def create_collection(
    conn: Connection,
    user: User,
    name: str,
    now: datetime,
    *,
    description: str | None = None,
    public: bool = False,
) -> Collection:
    """A new collection of the member's; its slug is the name's, made unique among theirs ("-2", "-3")."""
    clean = check_name(name)
    text = check_description(description)
    store.lock_owner(conn, user.id)
    if store.count_collections(conn, user.id) >= MAX_COLLECTIONS:
        raise InvalidInput(f"You have {MAX_COLLECTIONS} collections, the most one member may have.")
    for _ in range(5):  # a slug taken between the look and the insert: look again
        slug = _free_slug(conn, user.id, clean)
        new_id = store.insert_collection(conn, user.id, slug, clean, text, public, now)
        if new_id is not None:
            return owned(conn, user, new_id)
    raise InvalidInput("name: could not find a free address for it; try another name")  # pragma: no cover


def edit_collection(
    conn: Connection,
    user: User,
    collection_id: int,
    now: datetime,
    *,
    name: str | None = None,
    description: str | None = None,
    public: bool | None = None,
) -> Collection:
    """Rename (the slug follows the new name), describe (an empty description removes it) or make public /
    private; what is None stays as it is."""
    current = owned(conn, user, collection_id)
    values: dict[str, object] = {}
    if name is not None:
        clean = check_name(name)
        if clean != current.name:
            values["name"] = clean
            values["slug"] = _free_slug(conn, user.id, clean, current.slug)
    if description is not None:
        values["description"] = check_description(description)
    if public is not None:
        values["is_public"] = public
    if values and not store.update_collection(conn, collection_id, user.id, values, now):
        raise NotFound(f"you have no collection {collection_id}")
    return owned(conn, user, collection_id)


def delete_collection(conn: Connection, user: User, collection_id: int) -> None:
    if not store.delete_collection(conn, collection_id, user.id):
        raise NotFound(f"you have no collection {collection_id}")


def my_collections(conn: Connection, user: User) -> list[Collection]:
    return store.list_collections(conn, user.id, limit=MAX_COLLECTIONS)


def public_collections(conn: Connection, owner: User) -> list[Collection]:
    return store.list_collections(conn, owner.id, public_only=True, limit=MAX_COLLECTIONS)


# --- papers in a collection ---------------------------------------------------------------------------------


def _paper_exists(conn: Connection, arxiv_id: str) -> None:
    if not papers.get_papers(conn, [arxiv_id]):
        raise NotFound(f"no paper {arxiv_id[:64]}")


def _lock(conn: Connection, user: User, collection_id: int, now: datetime) -> None:
    if not store.touch(conn, collection_id, user.id, now):
        raise NotFound(f"you have no collection {collection_id}")


def add_paper(
    conn: Connection, user: User, collection_id: int, arxiv_id: str, now: datetime, note: str | None = None
) -> bool:
    """Put the paper last in the collection; False when it was there already (nothing moves). With `note`,
    the paper's note is set too."""
    clean_note = check_note(note)
    _paper_exists(conn, arxiv_id)
    _lock(conn, user, collection_id, now)
    added = store.add_item(conn, collection_id, arxiv_id, now, MAX_ITEMS)
    if not added and not store.has_item(conn, collection_id, arxiv_id):
        raise InvalidInput(f"This collection holds {MAX_ITEMS} papers, the most one may hold.")
    if note is not None:
        store.set_note(conn, collection_id, arxiv_id, clean_note)
    return added


def remove_paper(conn: Connection, user: User, collection_id: int, arxiv_id: str, now: datetime) -> bool:
    """Take the paper out; False when it was not in it."""
    _lock(conn, user, collection_id, now)
    return store.remove_item(conn, collection_id, arxiv_id)


def set_note(
    conn: Connection, user: User, collection_id: int, arxiv_id: str, note: str | None, now: datetime
) -> None:
    """The member's note on a paper of the collection (plain text; empty removes it)."""
    clean = check_note(note)
    _lock(conn, user, collection_id, now)
    if not store.set_note(conn, collection_id, arxiv_id, clean):
        raise NotFound(f"{arxiv_id[:64]} is not in this collection")


def _write_order(conn: Connection, collection_id: int, old: list[CollectionItem], new: list[str]) -> None:
    before = {i.arxiv_id: i.position for i in old}
    store.set_positions(conn, collection_id, {a: n for n, a in enumerate(new) if before.get(a) != n})


def move_paper(
    conn: Connection, user: User, collection_id: int, arxiv_id: str, to: str | int, now: datetime
) -> int:
    """Move a paper "up", "down", or to a place (0 first; past the end: last). Its new place."""
    _lock(conn, user, collection_id, now)
    current = store.items(conn, collection_id)
    order = [i.arxiv_id for i in current]
    if arxiv_id not in order:
        raise NotFound(f"{arxiv_id[:64]} is not in this collection")
    at = order.index(arxiv_id)
    if to == "up":
        target = max(0, at - 1)
    elif to == "down":
        target = min(len(order) - 1, at + 1)
    elif isinstance(to, int):
        target = min(max(0, to), len(order) - 1)
    else:
        raise InvalidInput("to: up, down or a place (0 first)")
    order.insert(target, order.pop(at))
    _write_order(conn, collection_id, current, order)
    return target


def reorder(conn: Connection, user: User, collection_id: int, arxiv_ids: list[str], now: datetime) -> None:
    """A new order: the papers listed first, in that order; any not listed (added meanwhile) after them in
    their order. Listing a paper twice, or one not in the collection, is refused."""
    if len(arxiv_ids) > MAX_ITEMS:
        raise InvalidInput(f"order: at most {MAX_ITEMS} papers")
    if len(set(arxiv_ids)) != len(arxiv_ids):
        raise InvalidInput("order: a paper is listed twice")
    _lock(conn, user, collection_id, now)
    current = store.items(conn, collection_id)
    held = {i.arxiv_id for i in current}
    strangers = [a for a in arxiv_ids if a not in held]
    if strangers:
        raise InvalidInput(f"order: {strangers[0][:64]} is not in this collection")
    listed = set(arxiv_ids)
    _write_order(
        conn, collection_id, current, [*arxiv_ids, *(i.arxiv_id for i in current if i.arxiv_id not in listed)]
    )


# --- Save ---------------------------------------------------------------------------------------------------


def default_collection(conn: Connection, user: User, now: datetime) -> Collection:
    """The member's "Reading list", made now if they have none (two first saves at once make one)."""
    found = store.get_by_slug(conn, user.id, DEFAULT_SLUG)
    if found is not None:
        return found
    store.lock_owner(conn, user.id)
    if store.count_collections(conn, user.id) >= MAX_COLLECTIONS:
        raise InvalidInput(f"You have {MAX_COLLECTIONS} collections, the most one member may have.")
    store.insert_collection(conn, user.id, DEFAULT_SLUG, DEFAULT_NAME, None, False, now)
    made = store.get_by_slug(conn, user.id, DEFAULT_SLUG)  # inserted now, or by the other first save
    if made is None:  # pragma: no cover - the row is there, or the insert raised
        raise NotFound("your Reading list could not be made")
    return made


def save(conn: Connection, user: User, arxiv_id: str, now: datetime) -> Collection:
    """One click: the paper into the member's Reading list (nothing changes when it is there)."""
    _paper_exists(conn, arxiv_id)
    target = default_collection(conn, user, now)
    add_paper(conn, user, target.id, arxiv_id, now)
    return target


def memberships(conn: Connection, user: User, arxiv_id: str) -> set[int]:
    return store.memberships(conn, user.id, arxiv_id)


def set_memberships(
    conn: Connection,
    user: User,
    arxiv_id: str,
    chosen: set[int],
    shown: set[int],
    now: datetime,
    new_name: str | None = None,
) -> set[int]:
    """The "Save to…" menu: of the collections `shown` to the member, the paper is in those `chosen` and
    out of the others (collections not shown are left alone); with `new_name`, a new collection holding it
    too. The collections holding it afterwards."""
    _paper_exists(conn, arxiv_id)
    if len(shown) > MAX_COLLECTIONS or not chosen <= shown:
        raise InvalidInput("collections: choose among those listed")
    holding = store.memberships(conn, user.id, arxiv_id)
    for cid in sorted(chosen - holding):
        add_paper(conn, user, cid, arxiv_id, now)
    for cid in sorted((shown - chosen) & holding):
        remove_paper(conn, user, cid, arxiv_id, now)
    if new_name is not None and new_name.strip():
        made = create_collection(conn, user, new_name, now)
        add_paper(conn, user, made.id, arxiv_id, now)
    return store.memberships(conn, user.id, arxiv_id)


def saved_ids(conn: Connection, user: User, ids: list[str]) -> set[str]:
    return store.saved_ids(conn, user.id, ids) if ids else set()


# --- reading a collection -----------------------------------------------------------------------------------


def _entries(
    conn: Connection, entries: list[CollectionItem], start: int, limit: int | None, newest_first: bool
) -> list[Entry]:
    """The papers of one page of the collection: only those are read from the papers tables."""
    if newest_first:
        entries = sorted(entries, key=lambda e: (e.added_at, -e.position), reverse=True)
    chosen = entries[start : None if limit is None else start + limit]
    found = papers.get_papers(conn, [e.arxiv_id for e in chosen])
    return [Entry(found[e.arxiv_id], e) for e in chosen if e.arxiv_id in found]


def _upvotes(
    conn: Connection, owner: User, start: int, limit: int | None, newest_first: bool
) -> CollectionView:
    voted = store.upvotes_of(conn, owner.id, MAX_ITEMS)
    entries = [CollectionItem(0, a, n, at) for n, (a, at) in enumerate(voted)]
    latest = voted[0][1] if voted else owner.created_at
    listing = Collection(
        id=0,
        user_id=owner.id,
        slug=UPVOTES_SLUG,
        name="Upvotes",
        created_at=owner.created_at,
        updated_at=latest,
        description=f"Papers @{owner.username} upvoted, the latest first.",
        is_public=True,
        size=len(entries),
        owner=owner.username,
    )
    shown = _entries(conn, entries, start, limit, newest_first)
    return CollectionView(listing, owner, shown, implicit=True, total=len(entries), start=start)


def owner_by_name(conn: Connection, username: str) -> User:
    owner = users.get_user_by_name(conn, username)
    if owner is None or owner.disabled:
        raise NotFound(f"no member named {username[:40]!r}")
    return owner


def view(
    conn: Connection,
    username: str,
    slug: str,
    viewer: User | None,
    *,
    start: int = 0,
    limit: int | None = None,
    newest_first: bool = False,
) -> CollectionView:
    """A collection as `/u/{username}/c/{slug}` shows it: a private one only to its owner (NotFound to
    everyone else, as if it did not exist). `start` / `limit`: one page of its papers, in the member's order
    (`newest_first`: the one added last first, as its feed lists them)."""
    owner = owner_by_name(conn, username)
    if slug == UPVOTES_SLUG:
        return _upvotes(conn, owner, start, limit, newest_first)
    found = store.get_by_slug(conn, owner.id, slug)
    mine = viewer is not None and viewer.id == owner.id
    if found is None or not (found.is_public or mine):
        raise NotFound(f"@{owner.username} has no collection {slug[:80]!r}")
    every = store.items(conn, found.id)
    shown = _entries(conn, every, start, limit, newest_first)
    return CollectionView(found, owner, shown, mine=mine, total=len(every), start=start)
