"""Authorship claims: a member claims to be one of a paper's authors, an admin approves or rejects; an
approved claim puts a badge on the author's name (linking to the profile) and the paper on the profile."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import members
import pytest
import sqlalchemy as sa
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import NOW, A, B

from paperboy import accounts
from paperboy.community import claims as ops
from paperboy.community import profiles
from paperboy.community import submit as submit_ops
from paperboy.db.schema import claims
from paperboy.errors import AlreadySubmitted, Conflict, Forbidden
from paperboy.models import Claim
from paperboy.store import users as user_store
from paperboy.web.security import RateLimits

MANY = RateLimits(signup="1000 per minute")
PAPER = f"/papers/{A}"


@pytest.fixture
def ada(sqlite_engine: Engine) -> Iterator[TestClient]:
    """The admin (the first member to sign up)."""
    with members.client(sqlite_engine, rate_limits=MANY) as c:
        members.signup(c, "ada")
        yield c


@pytest.fixture
def bob(ada: TestClient) -> TestClient:
    other = members.another(ada)
    members.signup(other, "bob")
    return other


def _claim(c: TestClient, author: str, arxiv_id: str = A) -> httpx.Response:
    token = members.csrf(c, f"/papers/{arxiv_id}")
    return c.post(
        f"/papers/{arxiv_id}/claim",
        data={"author_name": author, "csrf_token": token},
        follow_redirects=False,
    )


def _decide(c: TestClient, claim_id: int, verdict: str) -> httpx.Response:
    token = members.csrf(c, PAPER)
    return c.post(f"/admin/claims/{claim_id}/{verdict}", data={"csrf_token": token}, follow_redirects=False)


def _all(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(claims).order_by(claims.c.id))]


def _pending(engine: Engine) -> list[Claim]:
    with engine.connect() as conn:
        return ops.pending_claims(conn, 10)


def test_claim_then_approval_puts_a_badge_on_the_paper_and_the_paper_on_the_profile(
    ada: TestClient, bob: TestClient, sqlite_engine: Engine
) -> None:
    page = bob.get(PAPER).text
    assert 'action="/papers/2503.01234/claim"' in page and "<option>Alan Turing</option>" in page

    response = _claim(bob, "Alan Turing")
    assert response.status_code == 303
    assert response.headers["location"] == f"{PAPER}#authorship"
    assert "waiting for an admin" in bob.get(PAPER).text

    [pending] = _pending(sqlite_engine)
    assert (pending.username, pending.arxiv_id, pending.author_name, pending.status) == (
        "bob",
        A,
        "Alan Turing",
        "pending",
    )
    assert 'href="/u/bob"' not in ada.get(PAPER).text  # no badge before an admin approves

    approved = _decide(ada, pending.id, "approve")
    assert approved.status_code == 303 and approved.headers["location"] == PAPER
    assert _pending(sqlite_engine) == []

    anonymous = members.another(ada).get(PAPER).text
    assert 'class="author-confirmed" href="/u/bob"' in anonymous
    assert "confirmed author, @bob" in anonymous
    assert "Claim authorship" not in anonymous  # only members see the form
    assert "confirmed." in bob.get(PAPER).text

    profile = bob.get("/u/bob").text
    authored = profile.split('id="authored"')[1].split("</section>")[0]
    assert f'href="/papers/{A}"' in authored
    assert [p["paper"]["id"] for p in bob.get("/api/users/bob").json()["authored"]] == [A]


def test_only_an_admin_decides_and_a_refusal_changes_nothing(
    ada: TestClient, bob: TestClient, sqlite_engine: Engine
) -> None:
    assert _claim(bob, "Alan Turing").status_code == 303
    [pending] = _pending(sqlite_engine)
    before = _all(sqlite_engine)

    assert _decide(bob, pending.id, "approve").status_code == 403
    assert _decide(bob, pending.id, "reject").status_code == 403
    anonymous = members.another(ada)
    token = members.csrf(anonymous, PAPER)
    refused = anonymous.post(
        f"/admin/claims/{pending.id}/approve", data={"csrf_token": token}, follow_redirects=False
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    no_csrf = ada.post(f"/admin/claims/{pending.id}/approve", follow_redirects=False)
    assert no_csrf.status_code == 403
    assert _all(sqlite_engine) == before

    with sqlite_engine.begin() as conn:
        user = user_store.get_user_by_name(conn, "bob")
        assert user is not None
        with pytest.raises(Forbidden):
            ops.decide_claim(conn, user, pending.id, True, NOW)
    assert _all(sqlite_engine) == before

    assert _decide(ada, 9999, "approve").status_code == 404


def test_a_rejected_claim_shows_no_badge(ada: TestClient, bob: TestClient, sqlite_engine: Engine) -> None:
    assert _claim(bob, "Grace Hopper").status_code == 303
    [pending] = _pending(sqlite_engine)
    assert _decide(ada, pending.id, "reject").status_code == 303
    assert 'href="/u/bob"' not in ada.get(PAPER).text
    assert "not confirmed by an admin" in bob.get(PAPER).text
    assert bob.get("/api/users/bob").json()["authored"] == []


def test_a_name_not_among_the_authors_is_a_400_and_a_repeat_a_409(
    bob: TestClient, sqlite_engine: Engine
) -> None:
    for name in ("Not An Author", "", "Solo Author"):  # Solo Author wrote B, not A
        response = _claim(bob, name)
        assert response.status_code == 400, name
        assert "author" in response.text
    assert _all(sqlite_engine) == []

    assert _claim(bob, " alan  turing ").status_code == 303  # spaces and case aside: the paper's spelling
    assert [c.author_name for c in _pending(sqlite_engine)] == ["Alan Turing"]
    before = _all(sqlite_engine)
    again = _claim(bob, "Grace Hopper")
    assert again.status_code == 409 and "already claimed" in again.text
    assert _all(sqlite_engine) == before
    assert _claim(bob, "Solo Author", B).status_code == 303  # one claim per paper, not per member


def test_a_confirmed_author_name_cannot_be_claimed_by_another_member(
    ada: TestClient, bob: TestClient, sqlite_engine: Engine
) -> None:
    assert _claim(bob, "Alan Turing").status_code == 303
    [pending] = _pending(sqlite_engine)
    assert _decide(ada, pending.id, "approve").status_code == 303
    carol = members.another(ada)
    members.signup(carol, "carol")
    assert "<option>Alan Turing</option>" not in carol.get(PAPER).text
    assert _claim(carol, "Alan Turing").status_code == 409


def test_claims_need_a_member_a_csrf_token_and_a_known_paper(
    ada: TestClient, bob: TestClient, sqlite_engine: Engine
) -> None:
    anonymous = members.another(ada)
    assert _claim(anonymous, "Alan Turing").headers["location"].startswith("/login")
    no_csrf = bob.post(f"{PAPER}/claim", data={"author_name": "Alan Turing"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    token = members.csrf(bob, PAPER)
    unknown = bob.post("/papers/2599.99999/claim", data={"author_name": "X", "csrf_token": token})
    assert unknown.status_code == 404
    assert _all(sqlite_engine) == []


def test_claims_are_rate_limited(sqlite_engine: Engine) -> None:
    limits = RateLimits(signup="1000 per minute", claim="1 per minute")
    with members.client(sqlite_engine, rate_limits=limits) as c:
        members.signup(c, "ada")
        assert _claim(c, "Alan Turing").status_code == 303
        limited = _claim(c, "Solo Author", B)
        assert limited.status_code == 429
        assert len(_all(sqlite_engine)) == 1


def test_the_operations_on_both_backends(engine: Engine) -> None:
    """Submit, claim (a repeat refused inside the transaction), decide, and the profile, on SQLite and
    PostgreSQL alike."""
    webhub.load(engine)
    with engine.begin() as conn:
        admin = accounts.create_user(
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
        fresh = members.paper("2503.02001", published_at=NOW)
        submit_ops.submit_paper(conn, bob, "arXiv:2503.02001v1", NOW, lambda _id: fresh)
        with pytest.raises(AlreadySubmitted):
            submit_ops.submit_paper(conn, bob, "2503.02001", NOW, lambda _id: fresh)
        made = ops.claim_authorship(conn, bob, A, "Grace Hopper", NOW)
    with pytest.raises(Conflict), engine.begin() as conn:
        ops.claim_authorship(conn, bob, A, "Alan Turing", NOW)
    with engine.begin() as conn:
        assert [c.id for c in ops.pending_claims(conn)] == [made.id]
        decided = ops.decide_claim(conn, admin, made.id, True, NOW)
        assert decided.status == "approved" and decided.decided_at == NOW
        assert ops.paper_claims(conn, A, None).members == {"Grace Hopper": "bob"}
        found = profiles.profile(conn, "BOB")
    assert [i.paper.arxiv_id for i in found.submitted] == ["2503.02001"]
    assert [i.paper.arxiv_id for i in found.authored] == [A]
    assert [i.paper.arxiv_id for i in found.feed_items()] == ["2503.02001", A]
