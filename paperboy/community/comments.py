"""Comments on papers: post, reply (one level deep), edit and delete your own, admins hide any.

Rules, in one place:
- A body is Markdown, 1 to 10,000 characters once stripped of surrounding white space.
- Replies are one level deep. Replying to a reply attaches the new comment to that reply's top-level comment
  (the conversation stays in one flat list under it, as on most paper hubs). A comment that is deleted or
  hidden takes no new replies.
- Only the author edits or deletes a comment. A comment a moderator hid cannot be edited (it can still be
  deleted). Deleting is soft: the row stays with its text removed, so replies keep their place.
- Admins hide and unhide any comment. Hidden comments stop counting at once.
- In a thread, a deleted top-level comment shows as "[deleted]" while it has replies anyone can see and
  disappears otherwise; a hidden one shows, to everyone but admins, as "[hidden by a moderator]" under the
  same condition. Admins see hidden comments in full, marked. Deleted and hidden replies are left out
  (admins see hidden ones, marked).
- A body is rendered to sanitised HTML once, when it is written, and stored with the renderer's version
  (`paperboy.markdown.VERSION`); views show the stored HTML. A row without it, or rendered by an older
  version, is rendered on the fly when shown (a view never writes) until `rerender_stale` stores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import Connection

from paperboy import markdown
from paperboy.errors import FieldInvalid, Forbidden, NotFound
from paperboy.models import Comment, User
from paperboy.store import comments as store
from paperboy.store import papers

MAX_BODY = 10_000

State = Literal["visible", "hidden", "deleted"]


@dataclass(frozen=True)
class ThreadItem:
    """A comment as one viewer sees it. Placeholders ("[deleted]", "[hidden by a moderator]" for a
    non-admin) carry no author and no body."""

    comment: Comment
    state: State
    replies: tuple[ThreadItem, ...] = ()
    can_edit: bool = False
    can_delete: bool = False
    can_moderate: bool = False
    can_reply: bool = False

    @property
    def id(self) -> int:
        return self.comment.id

    @property
    def placeholder(self) -> bool:
        """Shown only to keep its replies in context: no author, no text."""
        return self.state == "deleted" or (self.state == "hidden" and not self.can_moderate)

    @property
    def username(self) -> str | None:
        return None if self.placeholder else self.comment.username

    @property
    def fullname(self) -> str | None:
        return None if self.placeholder else self.comment.author_fullname

    @property
    def body(self) -> str:
        return "" if self.placeholder else self.comment.body

    @property
    def html(self) -> str:
        """The body as sanitised HTML ("" for placeholders)."""
        return "" if self.placeholder else html_of(self.comment)


@dataclass(frozen=True)
class Thread:
    arxiv_id: str
    items: tuple[ThreadItem, ...]
    count: int  # comments anyone can see (what the cards and `numComments` add up)
    can_post: bool  # a member is looking


def clean_body(body: str) -> str:
    text = body.replace("\r\n", "\n").strip()
    if not text:
        raise FieldInvalid("body", "Write something before posting.")
    if len(text) > MAX_BODY:
        raise FieldInvalid(
            "body", f"A comment can be at most {MAX_BODY:,} characters (this one has {len(text):,})."
        )
    return text


def html_of(c: Comment) -> str:
    """A comment's sanitised HTML: the stored rendering when the current renderer made it, else rendered now
    (and not stored: showing a comment changes nothing)."""
    if c.body_html is not None and c.html_version == markdown.VERSION:
        return c.body_html
    return markdown.to_html(c.body) if c.body else ""


def _state(c: Comment) -> State:
    if c.deleted_at is not None:
        return "deleted"
    if c.hidden_at is not None:
        return "hidden"
    return "visible"


def _reply_target(conn: Connection, arxiv_id: str, parent_id: int) -> int:
    parent = store.get_comment(conn, parent_id)
    if parent is None or parent.arxiv_id != arxiv_id:
        raise FieldInvalid("parent_id", f"There is no comment {parent_id} on this paper to reply to.")
    if parent.parent_id is not None:  # a reply to a reply joins its top-level comment's replies
        top = store.get_comment(conn, parent.parent_id)
        if top is None:  # pragma: no cover (the foreign key cascades)
            raise FieldInvalid("parent_id", f"There is no comment {parent_id} on this paper to reply to.")
        if not parent.visible:
            raise FieldInvalid("parent_id", "That comment was removed; it takes no replies.")
        parent = top
    if not parent.visible:
        raise FieldInvalid("parent_id", "That comment was removed; it takes no replies.")
    return parent.id


def post(
    conn: Connection, user: User, arxiv_id: str, body: str, now: datetime, parent_id: int | None = None
) -> Comment:
    """A new comment by `user` on a paper (a reply when `parent_id` is given)."""
    text = clean_body(body)
    if papers.get_paper(conn, arxiv_id) is None:
        raise NotFound(f"paper {arxiv_id} is not in this hub")
    parent = _reply_target(conn, arxiv_id, parent_id) if parent_id is not None else None
    return store.insert_comment(
        conn,
        arxiv_id=arxiv_id,
        user_id=user.id,
        parent_id=parent,
        body=text,
        html=markdown.to_html(text),
        html_version=markdown.VERSION,
        now=now,
    )


def _existing(conn: Connection, comment_id: int) -> Comment:
    found = store.get_comment(conn, comment_id)
    if found is None or found.deleted_at is not None:
        raise NotFound(f"no comment {comment_id}")
    return found


def get(conn: Connection, comment_id: int) -> Comment:
    """A comment that exists and is not deleted (NotFound otherwise)."""
    return _existing(conn, comment_id)


def edit(conn: Connection, user: User, comment_id: int, body: str, now: datetime) -> Comment:
    """A new text for the member's own comment (`edited_at` marks it when the text changed)."""
    found = _existing(conn, comment_id)
    if found.user_id != user.id:
        raise Forbidden("You can only edit your own comments.")
    if found.hidden_at is not None:
        raise Forbidden("A moderator hid this comment; it can no longer be edited.")
    text = clean_body(body)
    if text != found.body:
        store.update_body(conn, comment_id, text, markdown.to_html(text), markdown.VERSION, now)
    return _existing(conn, comment_id)


def delete(conn: Connection, user: User, comment_id: int, now: datetime) -> Comment:
    """Delete the member's own comment (its text goes; replies stay). Deleting twice changes nothing."""
    found = store.get_comment(conn, comment_id)
    if found is None or (found.user_id != user.id and found.deleted_at is not None):
        raise NotFound(f"no comment {comment_id}")
    if found.user_id != user.id:
        raise Forbidden("You can only delete your own comments.")
    store.soft_delete(conn, comment_id, now)
    deleted = store.get_comment(conn, comment_id)
    assert deleted is not None  # noqa: S101 - narrows a row read back in this transaction (under -O: the same 500)
    return deleted


def set_hidden(conn: Connection, user: User, comment_id: int, hidden: bool, now: datetime) -> Comment:
    """An admin hides a comment from everyone else (or shows it again)."""
    if not user.is_admin:
        raise Forbidden("Only an admin can hide comments.")
    found = _existing(conn, comment_id)
    if (found.hidden_at is not None) != hidden:
        store.set_hidden(conn, comment_id, hidden, now)
    return _existing(conn, comment_id)


def seen_by(c: Comment, viewer: User | None, replies: tuple[ThreadItem, ...] = ()) -> ThreadItem:
    """One comment as `viewer` sees it (what they may do with it)."""
    state = _state(c)
    mine = viewer is not None and c.user_id == viewer.id and state != "deleted"
    admin = viewer is not None and viewer.is_admin
    return ThreadItem(
        comment=c,
        state=state,
        replies=replies,
        can_edit=mine and state == "visible",
        can_delete=mine,
        can_moderate=admin and state != "deleted",
        can_reply=viewer is not None and state == "visible" and c.parent_id is None,
    )


def _shown(item: ThreadItem) -> bool:
    return item.state == "visible" or (item.state == "hidden" and item.can_moderate)


def build_thread(arxiv_id: str, comments: list[Comment], viewer: User | None) -> Thread:
    """The thread `viewer` (None: a visitor) sees, from every comment on the paper, oldest first."""
    replies: dict[int, list[Comment]] = {}
    for c in comments:
        if c.parent_id is not None:
            replies.setdefault(c.parent_id, []).append(c)
    items: list[ThreadItem] = []
    for c in comments:
        if c.parent_id is not None:
            continue
        shown_replies = tuple(r for r in (seen_by(x, viewer) for x in replies.get(c.id, [])) if _shown(r))
        item = seen_by(c, viewer, shown_replies)
        if _shown(item) or shown_replies:
            items.append(item)
    count = sum(1 for c in comments if c.visible)
    return Thread(arxiv_id, tuple(items), count, viewer is not None)


def thread(conn: Connection, arxiv_id: str, viewer: User | None) -> Thread:
    """A paper's thread as `viewer` sees it (for the paper page and its JSON twin)."""
    return build_thread(arxiv_id, store.thread_comments(conn, arxiv_id), viewer)


def rerender_stale(conn: Connection, after_id: int = 0, limit: int = 200) -> list[int]:
    """Render and store up to `limit` comments whose HTML is missing or older than the renderer, by id after
    `after_id`; the ids it looked at, in order (pass the last one back for the next batch; none: all done). A
    comment edited meanwhile keeps the HTML its edit stored."""
    rows = store.stale_html(conn, markdown.VERSION, after_id, limit)
    for comment_id, body in rows:
        store.store_html(conn, comment_id, body, markdown.to_html(body) if body else "", markdown.VERSION)
    return [comment_id for comment_id, _ in rows]


def recent(conn: Connection, limit: int = 50) -> list[Comment]:
    """The newest comments on the hub, hidden ones included (a moderation page)."""
    return store.recent_comments(conn, limit)


def by_user(conn: Connection, user_id: int, limit: int = 50) -> list[Comment]:
    """A member's comments that anyone can see, newest first (a profile page)."""
    return store.comments_by_user(conn, user_id, limit)
