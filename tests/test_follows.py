"""Follow (issue 14, part 3) on SQLite and PostgreSQL: authors from their pages and paper pages, members from
their profiles, organizations from `/orgs/{slug}`; `/following` lists them with "in digest" and Unfollow
(htmx and plain forms) and the newest papers from all of it, with a JSON twin; scripts follow through
`/api/follows` with a token. Refused writes (no member, no CSRF token, a typo, yourself, past the cap)
change nothing; many requests following one target at once leave one row."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import browserkit
import httpx
import members
import pytest
import sqlalchemy as sa
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import NOW, A, B

from paperboy import accounts
from paperboy.community import follows as ops
from paperboy.db import write
from paperboy.db.schema import follows
from paperboy.errors import Conflict
from paperboy.models import Featuring, Paper, Record
from paperboy.store import follows as store
from paperboy.store import users as user_store
from paperboy.store import votes as vote_store
from paperboy.store.papers import upsert_records
from paperboy.web.security import RateLimits

ORG_PAPER = "2503.05555"
MANY = RateLimits(signup="1000 per minute", vote="1000 per minute")


def _org_record() -> Record:
    paper = Paper(arxiv_id=ORG_PAPER, title="From a Lab", abstract="Lab work.", authors=("L. Ab",))
    return Record(
        paper,
        Featuring(
            ORG_PAPER, date(2025, 3, 5), "huggingface", organization="Deep Lab", organization_name="DeepLab"
        ),
    )


def _client(engine: Engine) -> TestClient:
    c = members.client(engine, rate_limits=MANY)
    with engine.begin() as conn:
        upsert_records(conn, [_org_record()], NOW)
    return c


def _user(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        user = user_store.get_user_by_name(conn, name)
    assert user is not None
    return user


def _rows(engine: Engine) -> list[tuple[int, str, str, bool]]:
    with engine.connect() as conn:
        stmt = sa.select(follows.c.user_id, follows.c.kind, follows.c.target_key, follows.c.in_digest)
        return sorted(tuple(r) for r in conn.execute(stmt))  # type: ignore[misc]


def _post(c: TestClient, path: str, **data: Any) -> Any:
    token = members.csrf(c, "/settings")
    return c.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def test_follow_from_pages_then_following_lists_them_and_their_papers(engine: Engine) -> None:
    with _client(engine) as c:
        bob_browser = members.another(c)
        members.signup(bob_browser, "bob")
        members.signup(c, "ada")
        bob = _user(engine, "bob")
        with engine.begin() as conn:
            vote_store.add_vote(conn, bob.id, A, NOW - timedelta(hours=2))

        # an author from their page (the old path keeps working), a member from their profile, an org
        author_page = c.get("/authors/" + quote("Solo Author", safe=""))
        assert 'action="/following/follow"' in author_page.text and "Follow" in author_page.text
        done = _post(c, "/authors/Solo%20Author/follow")
        assert done.status_code == 303 and done.headers["location"] == "/authors/Solo%20Author"
        assert "✓ Following" in c.get("/authors/Solo%20Author").text
        profile = c.get("/u/bob").text
        assert 'name="kind" value="member"' in profile and 'name="name" value="bob"' in profile
        assert _post(c, "/following/follow", kind="member", name="bob", next="/u/bob").status_code == 303
        assert "1 follower " in c.get("/u/bob").text.replace("\n", " ")
        assert c.get("/api/users/bob").json()["numFollowers"] == 1
        org = c.get("/orgs/deeplab")
        assert org.status_code == 200 and "Deep Lab" in org.text and "From a Lab" in org.text
        assert c.get("/orgs/DeepLab", follow_redirects=False).headers["location"] == "/orgs/deeplab"
        r = _post(c, "/following/follow", kind="org", name="DeepLab", next="/orgs/deeplab")
        assert r.status_code == 303 and r.headers["location"] == "/orgs/deeplab"
        # twice changes nothing
        assert _post(c, "/following/follow", kind="org", name="deeplab").status_code == 303
        ada = _user(engine, "ada")
        assert _rows(engine) == [
            (ada.id, "author", "solo author", True),
            (ada.id, "member", str(bob.id), True),
            (ada.id, "org", "deeplab", True),
        ]

        page = c.get("/following")
        assert page.status_code == 200
        for text in ('href="/authors/Solo%20Author"', 'href="/u/bob"', 'href="/orgs/deeplab"', "✓ In digest"):
            assert text in page.text
        assert "You get no email digest" in page.text  # ada has none: the page says how to get one
        # the papers: bob's upvote, the author's paper, the org's paper, each saying where it came from
        for arxiv_id in (A, B, ORG_PAPER):
            assert f'href="/papers/{arxiv_id}"' in page.text
        assert "Upvoted by @bob, whom you follow" in page.text and "Featured by Deep Lab" in page.text
        assert "By Solo Author, whom you follow" in page.text

        # "in digest" off with htmx: the row comes back, and the row is stored so
        r = c.post(
            "/following/digest",
            data={"kind": "org", "name": "deeplab", "in_digest": "0", "row": "1"},
            headers={"HX-Request": "true", "X-CSRF-Token": members.csrf(c, "/following")},
        )
        assert r.status_code == 200 and r.text.lstrip().startswith("<li") and "Not in digest" in r.text
        assert (ada.id, "org", "deeplab", False) in _rows(engine)
        # unfollow with a plain form: back to /following, the org gone from the list
        r = _post(c, "/following/unfollow", kind="org", name="deeplab", next="/following")
        assert r.status_code == 303 and r.headers["location"] == "/following"
        assert [k for _, k, _, _ in _rows(engine)] == ["author", "member"]
        # htmx unfollow of a member: the row says "Follow again"
        r = c.post(
            "/following/unfollow",
            data={"kind": "member", "name": "bob", "row": "1"},
            headers={"HX-Request": "true", "X-CSRF-Token": members.csrf(c, "/following")},
        )
        assert r.status_code == 200 and "Follow again" in r.text
        # the paper page: a follow button per author, pressed for the one followed
        paper = c.get(f"/papers/{B}").text
        assert "Follow authors" in paper and "(following 1)" in paper and "✓ Following" in paper
        assert 'href="/orgs/deeplab"' in c.get(f"/papers/{ORG_PAPER}").text


def test_refused_follows_change_nothing(engine: Engine) -> None:
    with _client(engine) as c:
        visitor = c.post(
            "/following/follow", data={"kind": "org", "name": "deeplab", "csrf_token": members.csrf(c)}
        )
        assert visitor.status_code in (303, 307) or visitor.url.path == "/login"
        members.signup(c, "ada")
        assert c.get("/u/ada").text.count('name="kind" value="member"') == 0  # no button on your own profile
        forged = c.post("/following/follow", data={"kind": "org", "name": "deeplab"}, follow_redirects=False)
        assert forged.status_code == 403
        wrong = c.post(
            "/following/follow",
            data={"kind": "org", "name": "deeplab", "csrf_token": "0" * 64},
            follow_redirects=False,
        )
        assert wrong.status_code == 403
        assert _post(c, "/following/follow", kind="author", name="Nobody Here").status_code == 404
        assert _post(c, "/following/follow", kind="org", name="no-such-lab").status_code == 404
        assert _post(c, "/following/follow", kind="member", name="ghost").status_code == 404
        me = _post(c, "/following/follow", kind="member", name="ada")
        assert me.status_code == 400 and "follow yourself" in me.text
        assert _post(c, "/following/follow", kind="planet", name="Mars").status_code == 400
        assert _post(c, "/following/follow", kind="author", name="x" * 301).status_code == 400
        assert _post(c, "/following/digest", kind="org", name="deeplab", in_digest="1").status_code == 404
        assert _rows(engine) == []
        # the cap: 500 follows, then the next one is refused with a clear message
        ada = _user(engine, "ada")
        with engine.begin() as conn:
            for n in range(ops.MAX_FOLLOWS):
                store.add(conn, ada.id, "author", f"name {n}", f"Name {n}", NOW, cap=ops.MAX_FOLLOWS)
        full = _post(c, "/following/follow", kind="org", name="deeplab")
        assert full.status_code == 409 and "500" in full.text
        assert len(_rows(engine)) == ops.MAX_FOLLOWS
        assert c.get("/following").status_code == 200  # a full list still renders


def _token(engine: Engine, username: str) -> str:
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, username)
        assert user is not None
        return accounts.create_token(conn, user, "script", NOW).secret


def test_the_api_follows_with_a_token_and_lists_what_the_page_shows(engine: Engine) -> None:
    with _client(engine) as c:
        members.signup(c, "ada")
        script = TestClient(c.app, base_url="https://testserver")  # no cookies
        assert script.get("/api/following").status_code == 401
        r = script.post("/api/follows", json={"kind": "org", "name": "deeplab"})
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert script.delete("/api/follows/org/deeplab").status_code == 401
        bad = script.post(
            "/api/follows", json={"kind": "org", "name": "deeplab"}, headers={"Authorization": "Bearer nope"}
        )
        assert bad.status_code == 401
        # a signed-in browser without the CSRF header is refused too
        assert c.post("/api/follows", json={"kind": "org", "name": "deeplab"}).status_code == 403
        assert _rows(engine) == []

        auth = {"Authorization": f"Bearer {_token(engine, 'ada')}"}
        for _ in range(2):
            r = script.post("/api/follows", json={"kind": "org", "name": "DeepLab"}, headers=auth)
            assert r.status_code == 200
            assert r.json() == {
                "kind": "org",
                "name": "Deep Lab",
                "url": "/orgs/deeplab",
                "following": True,
                "inDigest": True,
            }
        r = script.post(
            "/api/follows", json={"kind": "author", "name": "solo  author", "inDigest": False}, headers=auth
        )
        assert r.json()["name"] == "Solo Author" and r.json()["inDigest"] is False
        assert (
            script.post("/api/follows", json={"kind": "author", "name": "Zed"}, headers=auth).status_code
            == 404
        )
        assert script.post("/api/follows", json={"kind": "x", "name": "Zed"}, headers=auth).status_code in (
            400,
            422,
        )

        listed = script.get("/api/following", headers=auth).json()
        assert [(f["kind"], f["name"], f["url"], f["inDigest"]) for f in listed["follows"]] == [
            ("author", "Solo Author", "/authors/Solo%20Author", False),
            ("org", "Deep Lab", "/orgs/deeplab", True),
        ]
        got = {p["paper"]["id"]: p["via"] for p in listed["papers"]}
        assert got == {
            ORG_PAPER: {"kind": "org", "name": "Deep Lab", "url": "/orgs/deeplab"},
            B: {"kind": "author", "name": "Solo Author", "url": "/authors/Solo%20Author"},
        }
        assert listed["page"] == 0 and listed["hasMore"] is False

        org = script.get("/api/orgs/DEEPLAB").json()
        assert org["name"] == "DeepLab" and org["fullname"] == "Deep Lab" and org["numFollowers"] == 1
        assert [p["paper"]["id"] for p in org["papers"]] == [ORG_PAPER]
        assert script.get("/api/orgs/nobody").status_code == 404

        r = script.delete("/api/follows/org/deeplab", headers=auth)
        assert r.status_code == 200 and r.json()["following"] is False
        assert [k for _, k, _, _ in _rows(engine)] == ["author"]


def test_the_following_feed_pages_are_bounded_and_newest_first(engine: Engine) -> None:
    with _client(engine) as c:
        members.signup(c, "ada")
        ada = _user(engine, "ada")
        with engine.begin() as conn:
            ops.follow(conn, ada, "author", "F. Iller", NOW)  # the 40 filler papers
        first = ops.following_page
        with engine.connect() as conn:
            one = first(conn, ada, 1)
            two = first(conn, ada, 2)
        assert len(one.items) == ops.FEED_PAGE and one.has_next
        dates = [i.paper.published_at for i in one.items + two.items]
        assert dates == sorted(dates, reverse=True)
        assert not {i.paper.arxiv_id for i in one.items} & {i.paper.arxiv_id for i in two.items}
        assert c.get("/following?p=2").status_code == 200
        assert c.get(f"/following?p={ops.FEED_PAGES + 1}").status_code in (400, 422)


def test_many_requests_following_one_target_at_once_leave_one_row(engine: Engine) -> None:
    webhub.load(engine)
    with engine.begin() as conn:
        for name in ("ada", "bob", "cyd", "dee"):
            user_store.insert_user(
                conn, username=name, email=f"{name}@example.org", password_hash="x", is_admin=False, now=NOW
            )
    people = [_user(engine, n) for n in ("ada", "bob", "cyd", "dee")]
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def run(user: Any) -> None:
        try:
            with engine.connect() as conn:
                barrier.wait()
                with write(conn):
                    ops.follow(conn, user, "author", "Solo Author", NOW)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(people[n % 4],)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(u for u, *_ in _rows(engine)) == sorted(u.id for u in people)  # one row per member


def test_the_cap_holds_when_follows_race(engine: Engine) -> None:
    webhub.load(engine)
    with engine.begin() as conn:
        user_store.insert_user(
            conn, username="ada", email="ada@example.org", password_hash="x", is_admin=False, now=NOW
        )
    ada = _user(engine, "ada")
    with engine.begin() as conn:
        for n in range(ops.MAX_FOLLOWS - 1):
            store.add(conn, ada.id, "org", f"org-{n}", f"Org {n}", NOW, cap=ops.MAX_FOLLOWS)
    names = ["Solo Author", "Q. Uiet", "R. Esult", "F. Iller", "E. Witten", "Ada Lovelace"]
    barrier = threading.Barrier(len(names))
    refused: list[str] = []
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with engine.connect() as conn:
                barrier.wait()
                with write(conn):
                    ops.follow(conn, ada, "author", name, NOW)
        except Conflict:
            refused.append(name)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(refused) == len(names) - 1
    assert len(_rows(engine)) == ops.MAX_FOLLOWS


@pytest.mark.parametrize("path", ["/following", "/api/following"])
def test_following_is_for_members(sqlite_engine: Engine, path: str) -> None:
    with _client(sqlite_engine) as c:
        r = c.get(path, follow_redirects=False)
        assert r.status_code == (303 if path == "/following" else 401)


def test_several_clients_following_one_target_at_once_over_http_leave_one_row(engine: Engine) -> None:
    """Eight HTTP clients (a real uvicorn server) send the same follow with the same token at one moment."""
    app = members.app(engine, rate_limits=MANY)
    with engine.begin() as conn:
        upsert_records(conn, [_org_record()], NOW)
        user = user_store.insert_user(
            conn, username="ada", email="ada@example.org", password_hash="x", is_admin=False, now=NOW
        )
        assert user is not None
        secret = accounts.create_token(conn, user, "script", NOW).secret
    barrier = threading.Barrier(8)
    answers: list[int] = []
    with browserkit.serving(app, browserkit.free_port(), lifespan="on") as base:

        def run() -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                barrier.wait()
                r = client.post(
                    "/api/follows",
                    json={"kind": "org", "name": "deeplab"},
                    headers={"Authorization": f"Bearer {secret}"},
                )
                answers.append(r.status_code)

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert answers == [200] * 8
    assert _rows(engine) == [(user.id, "org", "deeplab", True)]
