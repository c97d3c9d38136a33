"""Comments on papers: the thread on the paper page, its forms (plain POST and htmx), the JSON twin and the
API writes, moderation, counts on cards and in the API, and what never gets through (script, CSRF-less
posts, anonymous posts, floods). Real SQLite through the real app; the store also on PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import members
import pytest
import sqlalchemy as sa
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import NOW, OLD, A, B

from paperboy import accounts, serve
from paperboy.community import comments as community
from paperboy.db.schema import comments as comments_table
from paperboy.errors import FieldInvalid, Forbidden, NotFound
from paperboy.markdown import VERSION, to_html
from paperboy.models import User
from paperboy.store import comments as store
from paperboy.store import users as users_store
from paperboy.templating import time_ago
from paperboy.web.security import RateLimits

XSS_CORPUS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x]( javascript:alert(1) )",
    '<a href="javascript:alert(1)">click</a>',
    "<svg onload=alert(1)>",
    '"><script>alert(1)</script>',
    "<iframe src=javascript:alert(1)></iframe>",
    "<javascript:alert(1)>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    '<p style="x" onclick="alert(1)">p</p>',
    "[x][r]\n\n[r]: javascript:alert(1)",
    "$<script>alert(1)</script>$",
    "`<script>`\n\n```\n<script>alert(1)</script>\n```",
    "<<script>script>alert(1)<</script>/script>",
    '<a href="&#106;avascript:alert(1)">e</a>',
]


# --- helpers ------------------------------------------------------------------------------------------------


def rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r) for r in conn.execute(sa.select(comments_table).order_by(comments_table.c.id)).mappings()
        ]


def member(engine: Engine, name: str, **kwargs: Any) -> TestClient:
    c = members.client(engine, **kwargs)
    members.signup(c, name)
    return c


def post(c: TestClient, arxiv_id: str, body: str, **data: Any) -> Any:
    token = members.csrf(c, f"/papers/{arxiv_id}")
    return c.post(
        f"/papers/{arxiv_id}/comments",
        data={"body": body, "csrf_token": token, **data},
        follow_redirects=False,
    )


def form(c: TestClient, path: str, page: str, **data: Any) -> Any:
    return c.post(path, data={"csrf_token": members.csrf(c, page), **data}, follow_redirects=False)


def comment_id(response: Any) -> int:
    assert response.status_code == 303, response.text
    found = re.search(r"#comment-(\d+)$", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def discussion(page: str) -> str:
    start = page.index('<section class="discussion"')
    return page[start : page.index("</section>", start)]


def card_comments(c: TestClient, arxiv_id: str) -> int:
    page = c.get("/papers/date/2025-03-05").text
    card = next(x for x in page.split('<li class="card">')[1:] if f'href="/papers/{arxiv_id}"' in x)
    found = re.search(r'<span>(\d+)</span><span class="visually-hidden"> comments?</span>', card)
    assert found, card
    return int(found.group(1))


def api_comments(c: TestClient, arxiv_id: str) -> int:
    items = c.get("/api/daily_papers", params={"date": "2025-03-05"}).json()
    return next(i["numComments"] for i in items if i["paper"]["id"] == arxiv_id)


def bearer(engine: Engine, username: str) -> str:
    with engine.begin() as conn:
        user = users_store.get_user_by_name(conn, username)
        assert user is not None
        return accounts.create_token(conn, user, "script", NOW).secret


class _Tags(HTMLParser):
    """Every start tag and its attributes, as a browser would build them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_harmless(html: str) -> None:
    """No script element, no event-handler attribute, no script: URL in any attribute."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag not in ("script", "iframe", "svg", "img", "object", "embed", "style"), (tag, attrs)
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            squashed = re.sub(r"[\x00-\x20]", "", value or "").lower()
            assert not squashed.startswith(("javascript:", "vbscript:", "data:")), (tag, name, value)
    assert "<script" not in html.lower()


# --- Markdown -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", XSS_CORPUS)
def test_markdown_never_yields_script(body: str) -> None:
    html = to_html(body)
    assert_harmless(html)  # the words may remain as text: that is what raw HTML in a comment becomes


def test_markdown_renders_what_comments_need() -> None:
    html = to_html("Hello *there* **you**\nnext line\n\n- a\n- b\n\n> quoted\n\n`x < y`")
    assert "<em>there</em>" in html and "<strong>you</strong>" in html
    assert "<br>" in html  # a single newline breaks the line, as people type
    assert "<ul>\n<li>a</li>" in html and "<blockquote>" in html and "<code>x &lt; y</code>" in html
    link = to_html("[paper](https://arxiv.org/abs/2503.01234)")
    assert '<a href="https://arxiv.org/abs/2503.01234" rel="nofollow noopener ugc">paper</a>' in link
    assert to_html("# Big").startswith("<h4>")  # never outranks the page's headings
    assert "<img" not in to_html("![pixel](https://tracker.example/p.gif)")
    assert "<del>" in to_html("~~gone~~") or "<s>" in to_html("~~gone~~")
    # formulas keep their underscores and stars for KaTeX
    assert "$a_1*b_2 + c_3*d$" in to_html("Let $a_1*b_2 + c_3*d$ hold")
    assert "\\(x_i*y_i\\)" in to_html("and \\(x_i*y_i\\) too")
    assert "<em>" not in to_html("$$\\sum_i a_i*b_i$$")
    assert "$5 and <em>$6</em>" in to_html("$5 and *$6*")  # money is not math: Markdown still applies
    assert to_html("<b>raw</b>") == "<p>&lt;b&gt;raw&lt;/b&gt;</p>\n"


def test_time_ago() -> None:
    assert time_ago(NOW - timedelta(seconds=5), NOW) == "just now"
    assert time_ago(NOW - timedelta(minutes=1), NOW) == "1 minute ago"
    assert time_ago(NOW - timedelta(hours=3, minutes=5), NOW) == "3 hours ago"
    assert time_ago(NOW - timedelta(days=2), NOW) == "2 days ago"
    assert time_ago(NOW - timedelta(days=40), NOW) == "Jan 25"
    assert time_ago(None, NOW) == ""


# --- the store and the rules, on both databases -------------------------------------------------------------


def _users(engine: Engine) -> tuple[User, User, User]:
    webhub.load(engine)
    with engine.begin() as conn:
        made = []
        for name, admin in (("ada", True), ("bob", False), ("cy", False)):
            made.append(
                users_store.insert_user(
                    conn,
                    username=name,
                    email=f"{name}@example.org",
                    password_hash="x",
                    is_admin=admin,
                    now=NOW,
                )
            )
    return made[0], made[1], made[2]


def test_store_and_rules(engine: Engine) -> None:
    admin, bob, cy = _users(engine)
    t = NOW
    with engine.begin() as conn:
        top = community.post(conn, bob, A, "  first  ", t)
        assert top.body == "first" and top.username == "bob" and top.parent_id is None
        reply = community.post(conn, cy, A, "a reply", t + timedelta(seconds=1), top.id)
        # a reply to a reply joins its top-level comment
        nested = community.post(conn, bob, A, "and another", t + timedelta(seconds=2), reply.id)
        assert reply.parent_id == top.id and nested.parent_id == top.id
        other = community.post(conn, cy, B, "on B", t)
        with pytest.raises(FieldInvalid) as exc:
            community.post(conn, cy, A, "cross-paper", t, other.id)
        assert exc.value.field == "parent_id"
        with pytest.raises(FieldInvalid):
            community.post(conn, cy, A, "no such", t, 999_999)
        for bad in ("", "   \n ", "x" * (community.MAX_BODY + 1)):
            with pytest.raises(FieldInvalid) as exc:
                community.post(conn, cy, A, bad, t)
            assert exc.value.field == "body"
        with pytest.raises(NotFound):
            community.post(conn, cy, "2599.99999", "hello", t)
        community.post(conn, cy, A, "x" * community.MAX_BODY, t + timedelta(seconds=3))

    with engine.begin() as conn:
        assert store.count_visible(conn, A) == 4
        with pytest.raises(Forbidden):
            community.edit(conn, cy, top.id, "mine now", t)
        with pytest.raises(Forbidden):
            community.delete(conn, cy, top.id, t)
        edited = community.edit(conn, bob, top.id, "first, edited", t + timedelta(minutes=1))
        assert edited.body == "first, edited" and edited.edited_at == t + timedelta(minutes=1)
        same = community.edit(conn, bob, top.id, "first, edited", t + timedelta(minutes=2))
        assert same.edited_at == t + timedelta(minutes=1)  # nothing changed: no new edit mark
        with pytest.raises(Forbidden):
            community.set_hidden(conn, bob, reply.id, True, t)
        community.set_hidden(conn, admin, reply.id, True, t)
        with pytest.raises(Forbidden):
            community.edit(conn, cy, reply.id, "hidden, can't edit", t)
        with pytest.raises(FieldInvalid):
            community.post(conn, bob, A, "reply to hidden", t, reply.id)  # a hidden reply takes no replies
        assert store.count_visible(conn, A) == 3

        # the thread: others do not see the hidden reply, the admin does, marked
        seen = community.thread(conn, A, cy)
        assert [i.id for i in seen.items[0].replies] == [nested.id]
        assert seen.count == 3
        assert seen.items[0].can_edit is False and seen.items[0].can_reply is True
        as_admin = community.thread(conn, A, admin)
        replies = as_admin.items[0].replies
        assert [(r.id, r.state) for r in replies] == [(reply.id, "hidden"), (nested.id, "visible")]
        assert replies[0].body == "a reply" and replies[0].can_moderate
        visitor = community.thread(conn, A, None)
        assert visitor.can_post is False and not any(i.can_reply for i in visitor.items)

        # deleting a top-level comment with replies leaves "[deleted]"; without replies it goes
        community.delete(conn, bob, top.id, t)
        community.delete(conn, bob, top.id, t)  # twice: nothing changes
        row = store.get_comment(conn, top.id)
        assert row is not None and row.body == "" and row.deleted_at == t
        placeholder = community.thread(conn, A, cy).items[0]
        assert placeholder.state == "deleted" and placeholder.placeholder
        assert placeholder.body == "" and placeholder.username is None
        assert not placeholder.can_reply
        with pytest.raises(NotFound):
            community.edit(conn, bob, top.id, "back", t)
        community.delete(conn, bob, nested.id, t)
        # now the only reply left is hidden: visitors no longer see the deleted top-level comment at all
        assert top.id not in [i.id for i in community.thread(conn, A, cy).items]
        assert top.id in [i.id for i in community.thread(conn, A, admin).items]

        # hidden top-level comment with replies: "[hidden by a moderator]" for others
        lone = community.post(conn, bob, B, "to be hidden", t + timedelta(seconds=5))
        community.post(conn, cy, B, "reply under it", t + timedelta(seconds=6), lone.id)
        community.set_hidden(conn, admin, lone.id, True, t)
        item = next(i for i in community.thread(conn, B, cy).items if i.id == lone.id)
        assert item.placeholder and item.state == "hidden" and item.body == "" and len(item.replies) == 1
        community.set_hidden(conn, admin, lone.id, False, t)
        assert store.get_comment(conn, lone.id).hidden_at is None  # type: ignore[union-attr]

        # admin and profile lists
        recent = store.recent_comments(conn, 3)
        assert len(recent) == 3 and recent[0].created_at >= recent[-1].created_at
        assert all(c.deleted_at is None for c in store.recent_comments(conn, 50))
        assert any(c.hidden_at is not None for c in store.recent_comments(conn, 50))
        assert store.set_hidden(conn, lone.id, True, t) and not store.set_hidden(conn, 999_999, True, t)
        by_cy = store.comments_by_user(conn, cy.id, 50)
        assert by_cy and all(c.user_id == cy.id and c.visible for c in by_cy)
        assert reply.id not in [c.id for c in by_cy]  # hidden: not on the profile


def test_deleted_account_leaves_deleted_comments(sqlite_engine: Engine) -> None:
    _admin, bob, cy = _users(sqlite_engine)
    with sqlite_engine.begin() as conn:
        top = community.post(conn, bob, A, "top", NOW)
        community.post(conn, cy, A, "reply", NOW, top.id)
        users_store.delete_user(conn, bob.id, NOW)
        item = community.thread(conn, A, cy).items[0]
        assert item.state == "deleted" and item.username is None and len(item.replies) == 1
    gone = next(r for r in rows(sqlite_engine) if r["id"] == top.id)
    assert (gone["body"], gone["body_html"], gone["html_version"]) == ("", None, None)


# --- HTML rendered once, when written -----------------------------------------------------------------------


def _set_html(engine: Engine, comment: int, html: str | None, version: int | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(comments_table)
            .where(comments_table.c.id == comment)
            .values(body_html=html, html_version=version)
        )


def _stored(engine: Engine, comment: int) -> tuple[str | None, int | None]:
    row = next(r for r in rows(engine) if r["id"] == comment)
    return row["body_html"], row["html_version"]


def test_html_is_rendered_when_written_and_read_as_stored(engine: Engine) -> None:
    _admin, bob, cy = _users(engine)
    body = "Nice *result*: $a_1*b_2$"
    with engine.begin() as conn:
        made = community.post(conn, bob, A, body, NOW)
    assert _stored(engine, made.id) == (to_html(body), VERSION)
    assert "<em>result</em>: $a_1*b_2$" in to_html(body)
    with engine.begin() as conn:
        community.edit(conn, bob, made.id, "now **bold**", NOW + timedelta(minutes=1))
    bold = "<p>now <strong>bold</strong></p>\n"
    assert _stored(engine, made.id) == (bold, VERSION)  # an edit renders again

    # a view shows what is stored (it does not render again) ...
    _set_html(engine, made.id, "<p>as stored</p>\n", VERSION)
    with engine.connect() as conn:
        assert community.thread(conn, A, cy).items[0].html == "<p>as stored</p>\n"
    # ... unless the row has no HTML yet, or a renderer other than this one made it: then it renders the
    # text, and stores nothing (showing a comment changes nothing)
    for html, version in ((None, None), ("<p>old</p>\n", VERSION - 1), ("<p>newer</p>\n", VERSION + 1)):
        _set_html(engine, made.id, html, version)
        with engine.connect() as conn:
            assert community.thread(conn, A, cy).items[0].html == bold
        assert _stored(engine, made.id) == (html, version)

    # rerender_stale stores the rows that lack HTML or have an older one, in batches by id; never a newer one
    with engine.begin() as conn:
        other = community.post(conn, cy, A, "second", NOW + timedelta(seconds=1))
    _set_html(engine, made.id, None, None)
    _set_html(engine, other.id, "<p>old</p>\n", VERSION - 1)
    with engine.begin() as conn:
        assert community.rerender_stale(conn, limit=1) == [made.id]
        assert community.rerender_stale(conn, made.id, limit=1) == [other.id]
        assert community.rerender_stale(conn, other.id) == []
        assert community.rerender_stale(conn) == []  # nothing left
    assert _stored(engine, made.id) == (bold, VERSION)
    assert _stored(engine, other.id) == ("<p>second</p>\n", VERSION)
    _set_html(engine, other.id, "<p>newer</p>\n", VERSION + 1)
    with engine.begin() as conn:
        assert community.rerender_stale(conn) == []
        # a rendering of a text that was edited since it was read is not stored
        _set_html(engine, made.id, None, None)
        assert not store.store_html(conn, made.id, "an older text", "<p>an older text</p>\n", VERSION)
    assert _stored(engine, other.id) == ("<p>newer</p>\n", VERSION + 1)
    assert _stored(engine, made.id) == (None, None)

    # deleting a comment removes its HTML with its text; deleted rows are not rendered again
    with engine.begin() as conn:
        community.delete(conn, cy, other.id, NOW)
        assert community.rerender_stale(conn) == [made.id]
    assert _stored(engine, other.id) == (None, None)


def test_serve_stores_the_html_older_rows_lack(engine: Engine) -> None:
    """`paperboy serve` starts `start_comment_html`: each comment without current HTML gets it, in batches."""
    _admin, bob, _cy = _users(engine)
    with engine.begin() as conn:
        made = [community.post(conn, bob, A, f"number *{i}*", NOW + timedelta(seconds=i)) for i in range(5)]
    for c in made[:4]:
        _set_html(engine, c.id, None if c.id % 2 else "<p>old</p>\n", None if c.id % 2 else VERSION - 1)
    assert serve.render_stale_comments(engine, batch=3) == 4
    assert serve.render_stale_comments(engine) == 0
    for i, c in enumerate(made):
        assert _stored(engine, c.id) == (f"<p>number <em>{i}</em></p>\n", VERSION)
    _set_html(engine, made[0].id, None, None)
    serve.start_comment_html(engine).join(timeout=30)
    assert _stored(engine, made[0].id) == ("<p>number <em>0</em></p>\n", VERSION)


def test_rows_without_html_show_on_the_page_and_in_json(sqlite_engine: Engine) -> None:
    """Comments written before HTML was stored (migration 0011 leaves them NULL) read as before, and a view
    does not fill them in."""
    c = member(sqlite_engine, "ada")
    body = "Older *text* with $x_1*y_1$ and <b>tags</b>"
    cid = comment_id(post(c, B, body))
    assert _stored(sqlite_engine, cid) == (to_html(body), VERSION)
    _set_html(sqlite_engine, cid, None, None)
    expected = "<p>Older <em>text</em> with $x_1*y_1$ and &lt;b&gt;tags&lt;/b&gt;</p>\n"
    assert to_html(body) == expected
    assert expected.strip() in discussion(c.get(f"/papers/{B}").text)
    [item] = c.get(f"/api/papers/{B}/comments").json()["comments"]
    assert item["html"] == expected
    assert _stored(sqlite_engine, cid) == (None, None)


# --- the paper page and its forms ---------------------------------------------------------------------------


def test_member_posts_and_it_is_counted_everywhere(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    assert (card_comments(c, B), api_comments(c, B)) == (0, 0)
    response = post(c, B, "Nice **result**, see $O(n)$.")
    new_id = comment_id(response)
    assert response.headers["location"] == f"/papers/{B}#comment-{new_id}"
    page = c.get(f"/papers/{B}").text
    section = discussion(page)
    assert f'id="comment-{new_id}"' in section
    assert "Nice <strong>result</strong>, see $O(n)$." in section
    assert 'class="comment-body math"' in section  # KaTeX typesets comments too
    assert 'href="/u/ada"' in section and "just now" in section
    assert "1 comment" in section
    assert (card_comments(c, B), api_comments(c, B)) == (1, 1)
    assert any(i["paper"]["id"] == B and i["numComments"] == 1 for i in c.get("/api/trending").json())
    # A has 3 comments upstream (Hugging Face): ours add to them
    post(c, A, "here too")
    assert (card_comments(c, A), api_comments(c, A)) == (4, 4)
    [row] = [r for r in rows(sqlite_engine) if r["id"] == new_id]
    assert row["arxiv_id"] == B and row["body"] == "Nice **result**, see $O(n)$." and row["parent_id"] is None


def test_visitor_sees_the_thread_and_a_sign_in_link(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    post(c, B, "visible to all")
    visitor = members.another(c)
    section = discussion(visitor.get(f"/papers/{B}").text)
    assert "visible to all" in section
    assert f'href="/login?next=/papers/{B}%23comments"' in section
    assert "<textarea" not in section and "/edit" not in section


def test_anonymous_post_goes_to_login_and_stores_nothing(sqlite_engine: Engine) -> None:
    c = members.client(sqlite_engine)
    response = c.post(
        f"/papers/{B}/comments",
        data={"body": "drive-by", "csrf_token": members.csrf(c, f"/papers/{B}")},
        headers={"referer": f"https://testserver/papers/{B}"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert rows(sqlite_engine) == []


@pytest.mark.parametrize("token", [None, "0" * 64, "other-browser"])
def test_posts_without_the_right_csrf_token_are_refused(sqlite_engine: Engine, token: str | None) -> None:
    c = member(sqlite_engine, "ada")
    if token == "other-browser":
        other = members.another(c)
        members.signup(other, "bob")
        token = members.csrf(other, f"/papers/{B}")
    data = {"body": "forged"} | ({"csrf_token": token} if token else {})
    assert c.post(f"/papers/{B}/comments", data=data, follow_redirects=False).status_code == 403
    assert rows(sqlite_engine) == []
    cid = comment_id(post(c, B, "real"))
    for action in ("edit", "delete", "hide"):
        response = c.post(
            f"/comments/{cid}/{action}", data={"body": "x"} | ({"csrf_token": token} if token else {})
        )
        assert response.status_code == 403
    [row] = rows(sqlite_engine)
    assert row["body"] == "real" and row["deleted_at"] is None and row["hidden_at"] is None


@pytest.mark.parametrize("body", ["", "   \n\t ", "x" * 10_001])
def test_empty_or_oversized_bodies_are_400_and_store_nothing(sqlite_engine: Engine, body: str) -> None:
    c = member(sqlite_engine, "ada")
    response = post(c, B, body)
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text and 'class="field-message"' in response.text
    assert f'action="/papers/{B}/comments"' in response.text  # the form again, to fix and resend
    if body.strip():
        assert "x" * 10_001 in response.text  # what was typed comes back
    assert rows(sqlite_engine) == []


def test_bad_parent_is_400(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    other = comment_id(post(c, A, "on A"))
    for parent in (str(other), "999999", "abc", "-1"):
        response = post(c, B, "a reply", parent_id=parent)
        assert response.status_code == 400, parent
    assert len(rows(sqlite_engine)) == 1


def test_unknown_paper_is_404(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    assert post(c, "2599.99999", "hello").status_code == 404
    assert post(c, "not-an-id", "hello").status_code == 404
    assert rows(sqlite_engine) == []


def test_old_style_ids_and_versions(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    response = post(c, OLD, "old but gold")
    cid = comment_id(response)
    assert response.headers["location"] == f"/papers/{OLD}#comment-{cid}"
    assert "old but gold" in discussion(c.get(f"/papers/{OLD}").text)
    versioned = c.post(
        f"/papers/{A}v2/comments",
        data={"body": "versioned", "csrf_token": members.csrf(c, f"/papers/{A}")},
        follow_redirects=False,
    )
    assert versioned.headers["location"].startswith(f"/papers/{A}#comment-")
    assert {r["arxiv_id"] for r in rows(sqlite_engine)} == {OLD, A}
    assert c.get(f"/papers/{OLD}/comments").status_code == 404  # GET is the paper page's (no such id)


def test_replies_are_one_level_deep(sqlite_engine: Engine) -> None:
    ada = member(sqlite_engine, "ada")
    bob = members.another(ada)
    members.signup(bob, "bob")
    top = comment_id(post(ada, B, "top"))
    reply = comment_id(post(bob, B, "reply", parent_id=str(top)))
    deeper = comment_id(post(ada, B, "reply to the reply", parent_id=str(reply)))
    parents = {r["id"]: r["parent_id"] for r in rows(sqlite_engine)}
    assert parents == {top: None, reply: top, deeper: top}
    section = discussion(ada.get(f"/papers/{B}").text)
    replies = section[section.index('class="comment-replies"') :]
    assert f'id="comment-{reply}"' in replies and f'id="comment-{deeper}"' in replies
    assert 'name="parent_id"' in section and f'value="{top}"' in section
    assert "<summary>Reply</summary>" in section


def test_edit_and_delete_your_own_only(sqlite_engine: Engine) -> None:
    ada = member(sqlite_engine, "ada")  # the first member: an admin, yet not the author
    bob = members.another(ada)
    members.signup(bob, "bob")
    cid = comment_id(post(bob, B, "bob's words"))
    page = f"/papers/{B}"
    assert form(ada, f"/comments/{cid}/edit", page, body="ada was here").status_code == 403
    assert form(ada, f"/comments/{cid}/delete", page).status_code == 403
    [row] = rows(sqlite_engine)
    assert row["body"] == "bob's words" and row["edited_at"] is None and row["deleted_at"] is None

    response = form(bob, f"/comments/{cid}/edit", page, body="bob's *better* words")
    assert response.status_code == 303 and response.headers["location"] == f"/papers/{B}#comment-{cid}"
    section = discussion(bob.get(page).text)
    assert "bob&#39;s <em>better</em> words" in section or "bob's <em>better</em> words" in section
    assert "(edited)" in section
    assert form(bob, f"/comments/{cid}/edit", page, body="  ").status_code == 400
    assert rows(sqlite_engine)[0]["body"] == "bob's *better* words"

    response = form(bob, f"/comments/{cid}/delete", page)
    assert response.status_code == 303 and response.headers["location"] == f"/papers/{B}#comments"
    [row] = rows(sqlite_engine)
    assert row["body"] == "" and row["deleted_at"] is not None
    assert f'id="comment-{cid}"' not in discussion(bob.get(page).text)  # no replies: gone
    assert (card_comments(bob, B), api_comments(bob, B)) == (0, 0)
    assert form(bob, f"/comments/{cid}/edit", page, body="back").status_code == 404
    assert form(bob, "/comments/999999/delete", page).status_code == 404
    assert form(bob, "/comments/abc/delete", page).status_code == 400


def test_deleted_comment_with_replies_shows_as_deleted(sqlite_engine: Engine) -> None:
    ada = member(sqlite_engine, "ada")
    bob = members.another(ada)
    members.signup(bob, "bob")
    top = comment_id(post(bob, B, "secret words"))
    post(ada, B, "a reply", parent_id=str(top))
    form(bob, f"/comments/{top}/delete", f"/papers/{B}")
    section = discussion(ada.get(f"/papers/{B}").text)
    assert "[deleted]" in section and "secret words" not in section and "a reply" in section
    assert "1 comment" in section


def test_admin_hides_and_unhides(sqlite_engine: Engine) -> None:
    ada = member(sqlite_engine, "ada")  # admin
    bob = members.another(ada)
    members.signup(bob, "bob")
    cid = comment_id(post(bob, B, "spam spam spam"))
    page = f"/papers/{B}"
    assert form(bob, f"/comments/{cid}/hide", page).status_code == 403  # members cannot hide
    assert rows(sqlite_engine)[0]["hidden_at"] is None
    response = form(ada, f"/comments/{cid}/hide", page)
    assert response.status_code == 303 and response.headers["location"] == f"/papers/{B}#comment-{cid}"
    assert rows(sqlite_engine)[0]["hidden_at"] == NOW
    assert "spam spam spam" not in discussion(bob.get(page).text)
    assert "spam spam spam" not in discussion(members.another(ada).get(page).text)
    admin_view = discussion(ada.get(page).text)
    assert "spam spam spam" in admin_view and "hidden by a moderator" in admin_view
    assert f'action="/comments/{cid}/unhide"' in admin_view
    assert (card_comments(bob, B), api_comments(bob, B)) == (0, 0)
    assert form(bob, f"/comments/{cid}/edit", page, body="sneaky").status_code == 403
    assert form(ada, f"/comments/{cid}/unhide", page).status_code == 303
    assert "spam spam spam" in discussion(bob.get(page).text)
    assert (card_comments(bob, B), api_comments(bob, B)) == (1, 1)


def test_rate_limit(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada", rate_limits=RateLimits(comment="2 per minute"))
    assert post(c, B, "one").status_code == 303
    assert post(c, B, "two").status_code == 303
    response = post(c, B, "three")
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    assert [r["body"] for r in rows(sqlite_engine)] == ["one", "two"]


def test_edits_count_against_the_comment_limit(sqlite_engine: Engine) -> None:
    """Each edit renders the text again (up to a 10,000-character comment): edits are limited as posts are,
    on the form and the API, and a refused edit changes nothing."""
    c = member(sqlite_engine, "ada", rate_limits=RateLimits(comment="3 per minute"))
    assert post(c, B, "one").status_code == 303
    cid = rows(sqlite_engine)[0]["id"]
    page = f"/papers/{B}"
    assert form(c, f"/comments/{cid}/edit", page, body="two").status_code == 303
    auth = {"Authorization": f"Bearer {bearer(sqlite_engine, 'ada')}"}
    assert c.patch(f"/api/comments/{cid}", json={"body": "three"}, headers=auth).status_code == 200
    refused = c.patch(f"/api/comments/{cid}", json={"body": "four"}, headers=auth)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert form(c, f"/comments/{cid}/edit", page, body="five").status_code == 429
    assert [r["body"] for r in rows(sqlite_engine)] == ["three"]


def test_htmx_gets_the_fragment(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    token = members.csrf(c, f"/papers/{B}")
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}
    response = c.post(f"/papers/{B}/comments", data={"body": "via htmx"}, headers=htmx)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="comment-thread"')
    assert "via htmx" in response.text and "<html" not in response.text and "1 comment" in response.text
    [row] = rows(sqlite_engine)
    # a mistake comes back in the fragment (200, so that htmx swaps it in) with the message and the text
    bad = c.post(f"/papers/{B}/comments", data={"body": " "}, headers=htmx)
    assert bad.status_code == 200 and 'class="field-message"' in bad.text
    edit = c.post(f"/comments/{row['id']}/edit", data={"body": "x" * 10_001}, headers=htmx)
    assert edit.status_code == 200 and '<details class="comment-action" open>' in edit.text
    assert "x" * 10_001 in edit.text
    gone = c.post(f"/comments/{row['id']}/delete", headers=htmx)
    assert gone.status_code == 200 and "via htmx" not in gone.text
    assert len(rows(sqlite_engine)) == 1
    # every form in the thread posts through htmx and names its target
    page = c.get(f"/papers/{B}").text
    assert 'hx-target="this" hx-swap="outerHTML"' in page


@pytest.mark.parametrize("body", XSS_CORPUS)
def test_xss_corpus_never_reaches_the_page_or_the_json(sqlite_engine: Engine, body: str) -> None:
    c = member(sqlite_engine, "ada")
    cid = comment_id(post(c, B, body))
    for viewer in (c, members.another(c)):
        section = discussion(viewer.get(f"/papers/{B}").text)
        assert f'id="comment-{cid}"' in section
        assert_harmless(section)
    raw = c.get(f"/api/papers/{B}/comments").text
    assert "<" not in raw and ">" not in raw  # escaped as \u003c inside strings
    data = json.loads(raw)
    [item] = data["comments"]
    assert item["body"] == body.strip()
    assert_harmless(item["html"])


# --- the JSON twin and the API writes -----------------------------------------------------------------------


def test_json_thread(sqlite_engine: Engine) -> None:
    ada = member(sqlite_engine, "ada")
    bob = members.another(ada)
    members.signup(bob, "bob")
    top = comment_id(post(bob, B, "Top *level*"))
    reply = comment_id(post(ada, B, "reply", parent_id=str(top)))
    hidden = comment_id(post(bob, B, "hidden one"))
    form(ada, f"/comments/{hidden}/hide", f"/papers/{B}")

    response = members.another(ada).get(f"/api/papers/{B}/comments")
    assert response.status_code == 200
    data = response.json()
    assert data["paperId"] == B and data["numComments"] == 2
    [item] = data["comments"]
    assert item["id"] == top and item["parentId"] is None and item["status"] == "visible"
    assert item["author"] == {"name": "bob", "fullname": "bob"}
    assert item["body"] == "Top *level*" and item["html"] == "<p>Top <em>level</em></p>\n"
    assert item["createdAt"] == "2025-03-06T12:00:00.000Z" and item["editedAt"] is None
    assert [r["id"] for r in item["replies"]] == [reply] and item["replies"][0]["parentId"] == top
    assert "@example.org" not in response.text and "email" not in response.text

    admin_view = ada.get(f"/api/papers/{B}/comments").json()
    assert [(c["id"], c["status"]) for c in admin_view["comments"]] == [(top, "visible"), (hidden, "hidden")]
    assert c_ids(bob.get(f"/api/papers/{OLD}/comments").json()) == []
    assert bob.get("/api/papers/2599.99999/comments").status_code == 404
    assert bob.get("/api/papers/nonsense/comments").status_code == 404
    assert bob.get(f"/api/papers/{B}").json()["id"] == B  # the paper route is still there


def c_ids(data: dict[str, Any]) -> list[int]:
    return [c["id"] for c in data["comments"]]


def test_api_post_with_a_token(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    secret = bearer(sqlite_engine, "ada")
    api = members.another(c)  # no cookies: the token alone
    auth = {"Authorization": f"Bearer {secret}"}
    response = api.post(f"/api/papers/{OLD}/comments", json={"body": "From a *script*"}, headers=auth)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["author"]["name"] == "ada" and made["html"] == "<p>From a <em>script</em></p>\n"
    assert made["parentId"] is None and made["replies"] == []
    reply = api.post(
        f"/api/papers/{OLD}/comments", json={"body": "and a reply", "parent_id": made["id"]}, headers=auth
    )
    assert reply.status_code == 201 and reply.json()["parentId"] == made["id"]
    assert c_ids(api.get(f"/api/papers/{OLD}/comments").json()) == [made["id"]]

    patched = api.patch(f"/api/comments/{made['id']}", json={"body": "edited"}, headers=auth)
    assert patched.status_code == 200 and patched.json()["editedAt"] == "2025-03-06T12:00:00.000Z"
    assert api.delete(f"/api/comments/{reply.json()['id']}", headers=auth).status_code == 204
    assert api.post(f"/api/papers/{OLD}/comments", json={"body": ""}, headers=auth).status_code == 400
    assert api.post(f"/api/papers/{OLD}/comments", json={"nobody": 1}, headers=auth).status_code == 400
    assert api.post(f"/api/papers/{OLD}/comments", content=b"[", headers=auth).status_code == 400
    assert api.post("/api/papers/2599.99999/comments", json={"body": "x"}, headers=auth).status_code == 404
    assert [r["body"] for r in rows(sqlite_engine)] == ["edited", ""]


def test_api_refuses_bad_tokens_and_other_peoples_comments(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    cid = comment_id(post(c, B, "ada's"))
    other = members.another(c)
    members.signup(other, "bob")
    bob_secret = bearer(sqlite_engine, "bob")
    api = TestClient(c.app, base_url="https://testserver")
    for header in ("Bearer pb_wrong", "Bearer ", "Basic abc", "Bearer " + "x" * 500):
        response = api.post(
            f"/api/papers/{B}/comments", json={"body": "x"}, headers={"Authorization": header}
        )
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"] == "Bearer"
    assert api.get(f"/api/papers/{B}/comments", headers={"Authorization": "Bearer bad"}).status_code == 401
    assert api.post(f"/api/papers/{B}/comments", json={"body": "x"}).status_code == 401  # nobody at all
    auth = {"Authorization": f"Bearer {bob_secret}"}
    assert api.patch(f"/api/comments/{cid}", json={"body": "bob's"}, headers=auth).status_code == 403
    assert api.delete(f"/api/comments/{cid}", headers=auth).status_code == 403
    assert api.delete("/api/comments/999999", headers=auth).status_code == 404
    assert [r["body"] for r in rows(sqlite_engine)] == ["ada's"]


def test_api_with_a_session_needs_the_csrf_header(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada")
    assert c.post(f"/api/papers/{B}/comments", json={"body": "no header"}).status_code == 403
    assert rows(sqlite_engine) == []
    token = members.csrf(c, f"/papers/{B}")
    response = c.post(f"/api/papers/{B}/comments", json={"body": "with"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 201


def test_api_rate_limit(sqlite_engine: Engine) -> None:
    c = member(sqlite_engine, "ada", rate_limits=RateLimits(comment="2 per minute"))
    auth = {"Authorization": f"Bearer {bearer(sqlite_engine, 'ada')}"}
    codes = [
        c.post(f"/api/papers/{B}/comments", json={"body": f"n{i}"}, headers=auth).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]
    assert len(rows(sqlite_engine)) == 2


def test_openapi_documents_the_comment_routes(sqlite_engine: Engine) -> None:
    spec = members.client(sqlite_engine).get("/openapi.json").json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/api/papers/{arxiv_id}/comments"])
    assert {"patch", "delete"} <= set(paths["/api/comments/{comment_id}"])
    post_op = paths["/api/papers/{arxiv_id}/comments"]["post"]
    assert {"201", "400", "401", "403", "404", "429"} <= set(post_op["responses"])
    assert "parent_id" in spec["components"]["schemas"]["NewComment"]["properties"]
