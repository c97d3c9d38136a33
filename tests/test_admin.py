"""The moderation page: only admins see or use it; unfeaturing sticks through re-ingest; disabling a member
ends their sessions and tokens at once; its JSON twin shows no emails."""

from __future__ import annotations

import json
from collections.abc import Iterator

import members
import pytest
import sqlalchemy as sa
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import LATEST, NOW, A, B

from paperboy import accounts
from paperboy.db.schema import featurings, sessions, users
from paperboy.store import users as user_store
from paperboy.store.papers import upsert_records
from paperboy.web.security import RateLimits

DAY = f"/papers/date/{LATEST.isoformat()}"


@pytest.fixture
def hub(sqlite_engine: Engine) -> Iterator[tuple[TestClient, TestClient]]:
    """(the admin's browser, a member's browser)."""
    with members.client(sqlite_engine, rate_limits=RateLimits(signup="100 per minute")) as admin:
        members.signup(admin, "root-admin")
        member = members.another(admin)
        members.signup(member, "bob")
        yield admin, member


def _featured(engine: Engine, arxiv_id: str) -> int:
    with engine.connect() as conn:
        stmt = sa.select(sa.func.count()).select_from(featurings).where(featurings.c.arxiv_id == arxiv_id)
        return conn.execute(stmt).scalar_one()


def _token(engine: Engine, username: str) -> str:
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, username)
        assert user is not None
        return accounts.create_token(conn, user, "t", NOW).secret


def test_only_admins_see_the_moderation_page(hub: tuple[TestClient, TestClient]) -> None:
    admin, member = hub
    page = admin.get("/admin")
    assert page.status_code == 200
    for heading in ("Authorship claims waiting", "Recent comments", "Recently featured", "Members"):
        assert heading in page.text
    assert "bob" in page.text and 'href="/admin"' in page.text  # header link for admins
    assert member.get("/admin").status_code == 403
    assert 'href="/admin"' not in member.get("/papers").text
    visitor = TestClient(admin.app, base_url="https://testserver")
    r = visitor.get("/admin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/admin"


def test_unfeature_takes_a_paper_off_the_day_for_good(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    admin, member = hub
    token = members.csrf(member, "/settings")
    r = member.post(f"/admin/papers/{A}/unfeature", data={"csrf_token": token, "day": LATEST.isoformat()})
    assert r.status_code == 403 and _featured(sqlite_engine, A) == 1
    r = admin.post(f"/admin/papers/{A}/unfeature", data={"day": LATEST.isoformat()})
    assert r.status_code == 403 and _featured(sqlite_engine, A) == 1  # no CSRF token

    token = members.csrf(admin, "/admin")
    r = admin.post(
        f"/admin/papers/{A}/unfeature",
        data={"csrf_token": token, "day": LATEST.isoformat()},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin#featurings"
    assert _featured(sqlite_engine, A) == 0
    assert f"/papers/{A}" not in admin.get(DAY).text
    assert admin.get(f"/papers/{A}").status_code == 200  # the paper itself stays
    # The next sync of that day brings the same featuring: it stays off.
    with sqlite_engine.begin() as conn:
        upsert_records(conn, [r for r in webhub.records() if r.paper.arxiv_id == A], NOW)
    assert _featured(sqlite_engine, A) == 0

    r = admin.post(f"/admin/papers/{A}/unfeature", data={"csrf_token": token, "day": LATEST.isoformat()})
    assert r.status_code == 404
    r = admin.post(f"/admin/papers/{B}/unfeature", data={"csrf_token": token, "day": "2025-13-01"})
    assert r.status_code == 400 and "day" in r.text
    assert _featured(sqlite_engine, B) == 1


def test_disabling_a_member_ends_their_sessions_and_tokens_at_once(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    admin, member = hub
    secret = _token(sqlite_engine, "bob")
    with sqlite_engine.connect() as conn:
        bob_id = conn.execute(sa.select(users.c.id).where(users.c.username == "bob")).scalar_one()
    token = members.csrf(admin, "/admin")
    r = admin.post(f"/admin/users/{bob_id}/disable", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    with sqlite_engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).where(sessions.c.user_id == bob_id)).scalar_one()
    assert left == 0
    assert member.get("/settings", follow_redirects=False).status_code == 303  # signed out
    script = members.another(admin)  # the token alone, no session cookie
    r = script.post(f"/api/papers/{A}/upvote", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401
    assert members.login(members.another(admin), "bob").status_code == 400

    admin.post(f"/admin/users/{bob_id}/enable", data={"csrf_token": token})
    assert members.login(members.another(admin), "bob").status_code == 303
    assert (
        member.post(f"/api/papers/{A}/upvote", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )


def test_an_admin_cannot_disable_themselves_and_members_cannot_disable_anyone(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    admin, member = hub
    with sqlite_engine.connect() as conn:
        ids = dict(conn.execute(sa.select(users.c.username, users.c.id)).all())
    r = admin.post(
        f"/admin/users/{ids['root-admin']}/disable", data={"csrf_token": members.csrf(admin, "/admin")}
    )
    assert r.status_code == 403
    r = member.post(
        f"/admin/users/{ids['root-admin']}/disable", data={"csrf_token": members.csrf(member, "/settings")}
    )
    assert r.status_code == 403
    with sqlite_engine.connect() as conn:
        assert not any(conn.execute(sa.select(users.c.disabled)).scalars())


def test_the_json_twin_is_for_admins_and_never_shows_an_email(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    admin, _member = hub
    script = TestClient(admin.app, base_url="https://testserver")
    r = script.get("/api/admin", headers={"Authorization": f"Bearer {_token(sqlite_engine, 'root-admin')}"})
    assert r.status_code == 200
    data = r.json()
    assert {u["user"] for u in data["users"]} == {"root-admin", "bob"}
    assert any(f["paper"]["id"] == A for f in data["featurings"])
    text = json.dumps(data)
    assert "@example.org" not in text and "email" not in text and "argon2" not in text
    r = script.get("/api/admin", headers={"Authorization": f"Bearer {_token(sqlite_engine, 'bob')}"})
    assert r.status_code == 403
    assert script.get("/api/admin").status_code == 401
