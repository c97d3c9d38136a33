"""One authority per request (issue 12): a request that sends `Authorization` is judged by it alone, cookies
ignored. A valid `Bearer <token>` is that token's member, on API and HTML routes alike, and needs no CSRF
token (no other site's page can set the header); any other value is a 401 with `WWW-Authenticate: Bearer`,
even beside a valid session cookie and its CSRF token. CSRF is waived only for a request a token actually
authenticated. On the wire (uvicorn), SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
import webhub
from livehub import Live, live
from sqlalchemy.engine import Engine

from paperboy.db.schema import api_tokens, comments, users, votes

A = webhub.A
JUNK = [
    "Bearer junk",
    "Bearer pb_not-a-real-token-at-all-xxxxxxxx",
    "Basic YWRhOnNlY3JldA==",
    "Bearer",
    "junk",
]


def _tokens_of(engine: Engine, username: str) -> list[str]:
    with engine.connect() as c:
        stmt = (
            sa.select(api_tokens.c.name)
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(users.c.username == username)
            .order_by(api_tokens.c.id)
        )
        return list(c.execute(stmt).scalars())


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert r.headers.get("www-authenticate") == "Bearer"
    assert "location" not in r.headers  # a client that sent credentials is told so, not sent to /login


@pytest.fixture
def two(engine: Engine) -> Iterator[tuple[Live, dict[str, str]]]:
    """The hub served, with members ada (session cookie, CSRF token, API token) and bob (API token)."""
    with live(engine) as hub:
        ada = hub.signup("ada")
        bob = hub.signup("bob")
        yield (
            hub,
            {
                "ada_session": ada,
                "ada_csrf": hub.csrf(ada),
                "ada_token": hub.make_token(ada, "ada-bot"),
                "bob_token": hub.make_token(bob, "bob-bot"),
            },
        )


@pytest.mark.parametrize("junk", JUNK)
def test_a_bad_authorization_beside_a_cookie_and_its_csrf_token_does_nothing(
    engine: Engine, two: tuple[Live, dict[str, str]], junk: str
) -> None:
    hub, c = two
    before = _tokens_of(engine, "ada")
    # an HTML write with the session's valid CSRF token: the header, not the cookie, decides
    r = hub.request(
        "POST",
        "/settings/tokens",
        session=c["ada_session"],
        headers={"authorization": junk},
        data={"name": "sneaky", "csrf_token": c["ada_csrf"]},
    )
    _unauthorized(r)
    # and without the CSRF token
    r = hub.request(
        "POST",
        "/settings/tokens",
        session=c["ada_session"],
        headers={"authorization": junk},
        data={"name": "x"},
    )
    assert r.status_code in (401, 403), r.status_code
    assert _tokens_of(engine, "ada") == before
    # under /api/, with the CSRF header: 401, no comment
    before_comments = _count(engine, comments)
    r = hub.request(
        "POST",
        f"/api/papers/{A}/comments",
        session=c["ada_session"],
        headers={"authorization": junk, "x-csrf-token": c["ada_csrf"]},
        json={"body": "from the cookie?"},
    )
    _unauthorized(r)
    assert _count(engine, comments) == before_comments
    r = hub.request(
        "POST",
        f"/papers/{A}/upvote",
        session=c["ada_session"],
        headers={"authorization": junk},
        data={"csrf_token": c["ada_csrf"]},
    )
    _unauthorized(r)
    assert _count(engine, votes) == 0


@pytest.mark.parametrize(
    "path", ["/papers", f"/papers/{A}", "/settings", "/api/daily_papers", "/api/users/ada"]
)
def test_a_bad_authorization_is_refused_on_reads_too(two: tuple[Live, dict[str, str]], path: str) -> None:
    hub, c = two
    _unauthorized(
        hub.request("GET", path, session=c["ada_session"], headers={"authorization": "Bearer junk"})
    )


def test_a_valid_token_acts_for_its_member_not_the_cookies(
    engine: Engine, two: tuple[Live, dict[str, str]]
) -> None:
    hub, c = two
    bob = {"authorization": f"Bearer {c['bob_token']}"}
    # HTML write, ada's cookie, bob's token, no CSRF token: bob makes a token
    r = hub.request("POST", "/settings/tokens", session=c["ada_session"], headers=bob, data={"name": "bob-2"})
    assert r.status_code == 200, r.text[:300]
    assert _tokens_of(engine, "bob") == ["bob-bot", "bob-2"]
    assert _tokens_of(engine, "ada") == ["ada-bot"]
    # API write: the comment is bob's
    r = hub.request(
        "POST", f"/api/papers/{A}/comments", session=c["ada_session"], headers=bob, json={"body": "bob here"}
    )
    assert r.status_code == 201, r.text[:300]
    assert r.json()["author"]["name"] == "bob"
    # HTML read: bob's settings page
    page = hub.request("GET", "/settings", session=c["ada_session"], headers=bob)
    assert page.status_code == 200
    assert "bob-bot" in page.text and "ada-bot" not in page.text


def test_a_valid_token_alone_needs_no_csrf_token(engine: Engine, two: tuple[Live, dict[str, str]]) -> None:
    hub, c = two
    ada = {"authorization": f"Bearer {c['ada_token']}"}
    r = hub.request("POST", f"/api/papers/{A}/comments", headers=ada, json={"body": "by token"})
    assert r.status_code == 201, r.text[:300]
    r = hub.request("POST", f"/papers/{A}/upvote", headers=ada, data={"next": f"/papers/{A}"})
    assert r.status_code == 303, r.text[:300]
    assert _count(engine, votes) == 1
    r = hub.request("POST", "/settings/tokens", headers=ada, data={"name": "made-by-token"})
    assert r.status_code == 200, r.text[:300]
    assert _tokens_of(engine, "ada") == ["ada-bot", "made-by-token"]


def test_without_authorization_the_cookie_still_needs_its_csrf_token(
    engine: Engine, two: tuple[Live, dict[str, str]]
) -> None:
    hub, c = two
    r = hub.request("POST", "/settings/tokens", session=c["ada_session"], data={"name": "no-csrf"})
    assert r.status_code == 403
    r = hub.request(
        "POST", f"/api/papers/{A}/comments", session=c["ada_session"], json={"body": "no csrf header"}
    )
    assert r.status_code == 403
    r = hub.request(
        "POST",
        f"/api/papers/{A}/comments",
        session=c["ada_session"],
        headers={"x-csrf-token": c["ada_csrf"]},
        json={"body": "with it"},
    )
    assert r.status_code == 201, r.text[:300]
    assert _tokens_of(engine, "ada") == ["ada-bot"]
    # no cookie, no header: the API says to send a token
    _unauthorized(hub.request("POST", f"/api/papers/{A}/comments", json={"body": "nobody"}))
