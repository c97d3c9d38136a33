"""Profiles at /u/{username}: submitted, upvoted and authored papers; the JSON twin (never anything private)
and the Atom feed (submitted + authored, newest first); unknown members are 404s; titles stay text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import members
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import NOW, XSS, A, B

from paperboy.community import claims, votes
from paperboy.community import submit as submit_ops
from paperboy.models import Paper, User
from paperboy.store import users as user_store
from paperboy.web.security import RateLimits

NEW = "2503.02001"
XSS_TITLE = f'Robust {XSS} Parsing <b>bold</b> & "quotes"'
PRIVATE = {"email", "password", "password_hash", "token", "tokens", "session", "sessions", "hash"}


def _user(engine: Engine, name: str) -> User:
    with engine.connect() as conn:
        user = user_store.get_user_by_name(conn, name)
    assert user is not None
    return user


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    """ada (admin) and bob; bob submitted NEW (an XSS title) an hour ago, upvoted B, and is A's confirmed
    author Alan Turing."""
    with members.client(sqlite_engine, rate_limits=RateLimits(signup="1000 per minute")) as c:
        members.signup(c, "ada")
        members.signup(members.another(c), "bob")
        ada, bob = _user(sqlite_engine, "ada"), _user(sqlite_engine, "bob")
        fresh = members.paper(NEW, XSS_TITLE, published_at=datetime(2025, 3, 5, tzinfo=UTC))

        def fetch(arxiv_id: str) -> Paper | None:
            return fresh if arxiv_id == NEW else None

        with sqlite_engine.begin() as conn:
            submit_ops.submit_paper(conn, bob, NEW, NOW - timedelta(hours=1), fetch)
            votes.set_vote(conn, bob, B, True, NOW)
            claim = claims.claim_authorship(conn, bob, A, "Alan Turing", NOW)
            claims.decide_claim(conn, ada, claim.id, True, NOW)
        yield c


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def _section(html: str, name: str) -> str:
    return html.split(f'id="{name}"')[1].split("</section>")[0]


def test_the_profile_page_lists_submitted_authored_and_upvoted_papers(client: TestClient) -> None:
    response = client.get("/u/bob")
    assert response.status_code == 200
    html = response.text
    assert "@bob" in html
    assert f'href="/papers/{NEW}"' in _section(html, "submitted")
    assert f'href="/papers/{A}"' in _section(html, "authored")
    assert f'href="/papers/{B}"' in _section(html, "upvoted")
    assert f'href="/papers/{B}"' not in _section(html, "submitted")
    assert '<link rel="alternate" type="application/atom+xml"' in html and 'href="/u/bob/feed.atom"' in html
    assert "bob@example.org" not in html

    admin = client.get("/u/ada").text
    assert '<span class="tag">admin</span>' in admin
    # webhub's A was submitted on Hugging Face by a user also called "ada": not this member's submission
    assert "No papers submitted yet." in _section(admin, "submitted")

    upper = client.get("/u/BOB", follow_redirects=False)
    assert upper.status_code == 301 and upper.headers["location"] == "/u/bob"


def test_the_json_twin_has_the_same_papers_and_nothing_private(client: TestClient) -> None:
    response = client.get("/api/users/bob")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "bob" and body["fullname"] == "bob" and body["isAdmin"] is False
    assert body["createdAt"] == "2025-03-06T12:00:00.000Z"
    assert [p["paper"]["id"] for p in body["submitted"]] == [NEW]
    assert [p["paper"]["id"] for p in body["upvoted"]] == [B]
    assert [p["paper"]["id"] for p in body["authored"]] == [A]
    assert body["submitted"][0]["submittedBy"]["name"] == "bob"
    assert body["submitted"][0]["title"] == XSS_TITLE
    assert not {k.lower() for k in _keys(body)} & PRIVATE
    text = response.text.lower()
    assert "bob@example.org" not in text and "argon2" not in text and "pb_" not in text
    assert client.get("/api/users/ADA").json()["isAdmin"] is True


def test_the_atom_feed_parses_and_holds_submitted_and_authored_newest_first(client: TestClient) -> None:
    response = client.get("/u/bob/feed.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    links = [e.link for e in feed.entries]
    # NEW was submitted an hour before now; A was featured on Mar 5
    assert links == [f"https://papers.example.org/papers/{NEW}", f"https://papers.example.org/papers/{A}"]
    assert feed.entries[0].title == XSS_TITLE
    assert XSS not in response.text
    assert feed.feed.link == "https://papers.example.org/u/bob"

    empty = feedparser.parse(client.get("/u/ada/feed.atom").content)
    assert empty.bozo == 0 and empty.entries == []


def test_unknown_members_are_404s(client: TestClient) -> None:
    for path in ("/u/nobody", "/u/nobody/feed.atom", "/u/%3Cscript%3E"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "<script>" not in response.text
    api = client.get("/api/users/nobody")
    assert api.status_code == 404 and "nobody" in api.json()["error"]


def test_a_title_with_markup_stays_text_on_the_profile(client: TestClient) -> None:
    html = client.get("/u/bob").text
    assert XSS not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
