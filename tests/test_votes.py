"""Upvotes: one per member per paper, toggled from cards and paper pages (htmx and plain forms), set through
the API with a token; counted into every page, list and API shape by exactly one; refused writes change
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import members
import pytest
import sqlalchemy as sa
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import LATEST, NOW, OLD, A, B, C

from paperboy import accounts
from paperboy.community import votes as vote_ops
from paperboy.db.schema import votes
from paperboy.store import users as user_store
from paperboy.web.security import RateLimits

DAY = f"/papers/date/{LATEST.isoformat()}"
MANY = RateLimits(signup="1000 per minute")


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with members.client(sqlite_engine, rate_limits=MANY) as c:
        yield c


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(votes)).scalar_one()


def _api_upvotes(c: TestClient, arxiv_id: str) -> int:
    return c.get(f"/api/papers/{arxiv_id}").json()["upvotes"]


def _daily_upvotes(c: TestClient, arxiv_id: str) -> int:
    items = c.get("/api/daily_papers", params={"date": LATEST.isoformat()}).json()
    return next(i["paper"]["upvotes"] for i in items if i["paper"]["id"] == arxiv_id)


def _token(engine: Engine, username: str) -> str:
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, username)
        assert user is not None
        return accounts.create_token(conn, user, "script", NOW).secret


def test_a_member_upvote_adds_exactly_one_everywhere_and_a_second_click_takes_it_back(
    client: TestClient, sqlite_engine: Engine
) -> None:
    members.signup(client, "ada")
    before = _api_upvotes(client, A)
    token = members.csrf(client, DAY)
    r = client.post(f"/papers/{A}/upvote", data={"csrf_token": token, "next": DAY}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == DAY
    assert _api_upvotes(client, A) == before + 1
    assert _daily_upvotes(client, A) == before + 1
    assert client.get(f"/api/papers/{A}").json()["localUpvotes"] == 1
    page = client.get(DAY).text
    assert f'action="/papers/{A}/upvote"' in page
    assert f'<span class="count">{before + 1}</span>' in page
    assert 'aria-pressed="true"' in page  # drawn pressed for the member who voted
    paper_page = client.get(f"/papers/{A}").text
    assert "votes-lg voted" in paper_page

    client.post(f"/papers/{A}/upvote", data={"csrf_token": token, "next": DAY}, follow_redirects=False)
    assert _api_upvotes(client, A) == before
    assert _count(sqlite_engine) == 0


def test_htmx_gets_the_new_button_in_place(client: TestClient) -> None:
    members.signup(client, "ada")
    token = members.csrf(client, DAY)
    r = client.post(
        f"/papers/{B}/upvote", data={"next": DAY}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<form class="vote-form"')
    assert 'aria-pressed="true"' in r.text and '<span class="count">6</span>' in r.text
    assert "<html" not in r.text


def test_old_style_ids_can_be_upvoted(client: TestClient) -> None:
    members.signup(client, "ada")
    token = members.csrf(client, DAY)
    r = client.post(f"/papers/{OLD}/upvote", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/papers/{OLD}"
    assert client.get(f"/api/papers/{OLD}").json()["localUpvotes"] == 1


def test_member_votes_reorder_the_day_and_trending(client: TestClient) -> None:
    """B has 5 upstream upvotes, C none: six members upvoting C put it above B on the day and in trending."""
    order = lambda path: [i["paper"]["id"] for i in client.get(path).json()]  # noqa: E731
    assert order(f"/api/daily_papers?date={LATEST}").index(B) < order(
        f"/api/daily_papers?date={LATEST}"
    ).index(C)
    for n in range(6):
        browser = members.another(client)
        members.signup(browser, f"member{n}")
        r = browser.post(f"/papers/{C}/upvote", data={"csrf_token": members.csrf(browser, DAY)})
        assert r.status_code == 200  # followed the redirect back to the paper
    day = order(f"/api/daily_papers?date={LATEST}")
    assert day.index(C) < day.index(B)
    trending = [i["paper"]["id"] for i in client.get("/api/trending").json()]
    assert trending.index(C) < trending.index(B)
    html = client.get(DAY).text
    assert html.index(f'action="/papers/{C}/upvote"') < html.index(f'action="/papers/{B}/upvote"')


def test_visitors_are_sent_to_sign_in_and_nothing_changes(client: TestClient, sqlite_engine: Engine) -> None:
    token = members.csrf(client, DAY)
    r = client.post(
        f"/papers/{A}/upvote",
        data={"csrf_token": token},
        headers={"referer": f"https://testserver{DAY}"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/login?next={DAY}"
    r = client.post(f"/papers/{A}/upvote", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/login?next=")
    assert _count(sqlite_engine) == 0


@pytest.mark.parametrize("how", ["missing", "wrong", "another member's"])
def test_a_missing_or_foreign_csrf_token_is_403_and_changes_nothing(
    client: TestClient, sqlite_engine: Engine, how: str
) -> None:
    members.signup(client, "ada")
    other = members.another(client)
    members.signup(other, "bob")
    data = {
        "missing": {},
        "wrong": {"csrf_token": "0" * 64},
        "another member's": {"csrf_token": members.csrf(other, DAY)},
    }[how]
    r = client.post(f"/papers/{A}/upvote", data=data, follow_redirects=False)
    assert r.status_code == 403
    assert "CSRF" in r.text
    r = client.post(f"/api/papers/{A}/upvote", headers={"X-CSRF-Token": data.get("csrf_token", "")})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    assert _count(sqlite_engine) == 0


def test_get_and_head_never_vote(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    for method in ("GET", "HEAD"):
        r = client.request(method, f"/papers/{A}/upvote")
        assert r.status_code in (404, 405)
        r = client.request(method, f"/api/papers/{A}/upvote")
        assert r.status_code in (400, 404, 405)  # read as the paper id "…/upvote": malformed
    assert _count(sqlite_engine) == 0


def test_the_vote_rate_limit_answers_429_and_counts_nothing_more(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine, rate_limits=RateLimits(vote="2 per minute")) as c:
        members.signup(c, "ada")
        token = members.csrf(c, DAY)
        for paper in (A, B):
            assert c.post(f"/papers/{paper}/upvote", data={"csrf_token": token}).status_code == 200
        r = c.post(f"/papers/{C}/upvote", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert "Too many upvotes" in r.text
        with sqlite_engine.connect() as conn:
            ids = set(conn.execute(sa.select(votes.c.arxiv_id)).scalars())
        assert ids == {A, B}


def test_api_upvote_with_a_token_is_idempotent_and_delete_takes_it_back(
    client: TestClient, sqlite_engine: Engine
) -> None:
    members.signup(client, "ada")
    secret = _token(sqlite_engine, "ada")
    script = TestClient(client.app, base_url="https://testserver")  # no cookies at all
    auth = {"Authorization": f"Bearer {secret}"}
    before = _api_upvotes(script, B)
    for _ in range(2):
        r = script.post(f"/api/papers/{B}/upvote", headers=auth)
        assert r.status_code == 200
        assert r.json() == {"id": B, "upvoted": True, "upvotes": before + 1, "localUpvotes": 1}
    assert _api_upvotes(script, B) == before + 1
    r = script.delete(f"/api/papers/{B}/upvote", headers=auth)
    assert r.json()["upvoted"] is False and r.json()["upvotes"] == before
    assert _count(sqlite_engine) == 0


@pytest.mark.parametrize(
    "header", ["Bearer pb_not-a-real-token", "Bearer ", "Basic YWRhOnB3", "Bearer " + "x" * 500]
)
def test_api_writes_without_a_valid_token_are_401_and_change_nothing(
    client: TestClient, sqlite_engine: Engine, header: str
) -> None:
    members.signup(client, "ada")  # a signed-in browser: a bad Authorization header still never falls back
    r = client.post(f"/api/papers/{A}/upvote", headers={"Authorization": header})
    assert r.status_code == 401  # judged by the header alone, cookie or not
    r = client.post(
        f"/api/papers/{A}/upvote", headers={"Authorization": header, "X-CSRF-Token": members.csrf(client)}
    )
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert _count(sqlite_engine) == 0
    script = TestClient(client.app, base_url="https://testserver")
    for headers in ({}, {"Authorization": header}):
        r = script.post(f"/api/papers/{A}/upvote", headers=headers)
        assert r.status_code == 401  # no session: judged by the token alone
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert _count(sqlite_engine) == 0


def test_a_revoked_token_or_a_disabled_member_cannot_vote(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    secret = _token(sqlite_engine, "ada")
    auth = {"Authorization": f"Bearer {secret}"}
    script = TestClient(client.app, base_url="https://testserver")  # the token alone, no session cookie
    with sqlite_engine.begin() as conn:
        user = user_store.get_user_by_name(conn, "ada")
        assert user is not None
        user_store.set_disabled(conn, user.id, True)
    assert script.post(f"/api/papers/{A}/upvote", headers=auth).status_code == 401
    with sqlite_engine.begin() as conn:
        user_store.set_disabled(conn, user.id, False)
        (tok,) = user_store.list_tokens(conn, user.id)
        accounts.revoke_token(conn, user, tok.id)
    assert script.post(f"/api/papers/{A}/upvote", headers=auth).status_code == 401
    assert _count(sqlite_engine) == 0


def test_unknown_papers_are_404(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    token = members.csrf(client, DAY)
    assert client.post("/papers/2501.99999/upvote", data={"csrf_token": token}).status_code == 404
    assert client.post("/api/papers/2501.99999/upvote", headers={"X-CSRF-Token": token}).status_code == 404
    assert _count(sqlite_engine) == 0


def test_votes_on_every_backend(engine: Engine) -> None:
    """The vote operations on SQLite and PostgreSQL: one per member, toggling, deleting the account."""
    webhub.load(engine)
    with engine.begin() as conn:
        ada = accounts.create_user(
            conn,
            members.FAST_HASHER,
            username="ada",
            email="ada@example.org",
            password=members.PASSWORD,
            now=NOW,
        )
        bob = accounts.create_user(
            conn,
            members.FAST_HASHER,
            username="bob",
            email="bob@example.org",
            password=members.PASSWORD,
            now=NOW,
        )
        first = vote_ops.set_vote(conn, ada, A, True, NOW)
        again = vote_ops.set_vote(conn, ada, A, True, NOW + timedelta(seconds=1))
        assert first == again and first.local_upvotes == 1 and first.upvotes == 43
        assert vote_ops.toggle_vote(conn, bob, A, NOW).local_upvotes == 2
        assert vote_ops.toggle_vote(conn, bob, A, NOW).local_upvotes == 1
        vote_ops.set_vote(conn, bob, A, True, NOW)
        accounts.delete_account(conn, members.FAST_HASHER, bob, members.PASSWORD, NOW)
        assert vote_ops.vote_state(conn, ada, A).local_upvotes == 1
