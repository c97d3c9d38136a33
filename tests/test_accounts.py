"""Accounts over the real app and a real SQLite file: sign up, sign in, sign out, change password, delete
account, API tokens on the settings page; rate limits on sign-in and sign-up; refusals change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import members
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import NOW, A

from paperboy import accounts
from paperboy.community import comments as comment_ops
from paperboy.db.schema import api_tokens, comments, sessions, users, votes
from paperboy.store import users as store
from paperboy.web.security import RateLimits

MANY = RateLimits(signup="1000 per minute", signin="1000 per minute")


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with members.client(sqlite_engine, rate_limits=MANY) as c:
        yield c


def _rows(engine: Engine, table: sa.Table) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table)).all()]


def _signup(c: TestClient, **fields: str) -> object:
    data = {"username": "ada", "email": "ada@example.org", "password": members.PASSWORD, **fields}
    return c.post("/signup", data={**data, "csrf_token": members.csrf(c, "/signup")}, follow_redirects=False)


def test_sign_up_signs_in_and_the_first_member_is_the_admin(
    client: TestClient, sqlite_engine: Engine
) -> None:
    r = _signup(client, next="/papers/trending")
    assert r.status_code == 303 and r.headers["location"] == "/papers/trending"
    page = client.get("/papers").text
    assert "Sign out" in page and 'href="/u/ada"' in page and 'href="/admin"' in page
    other = members.another(client)
    members.signup(other, "bob")
    assert 'href="/admin"' not in other.get("/papers").text
    with sqlite_engine.connect() as conn:
        admin_of = dict(conn.execute(sa.select(users.c.username, users.c.is_admin)).all())
    assert admin_of == {"ada": True, "bob": False}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"username": ""}, "username", "Choose a username"),
        ({"username": "a"}, "username", "3 to 40"),
        ({"username": "<script>"}, "username", "3 to 40"),
        ({"username": "admin"}, "username", "reserved"),
        ({"email": "nope"}, "email", "email address"),
        ({"password": "short"}, "password", "at least 8"),
        ({"password": "x" * 1025}, "password", "at most 1024"),
        ({"username": "adalovelace", "password": "AdaLovelace"}, "password", "not be your username"),
    ],
)
def test_a_bad_sign_up_is_a_400_with_the_message_by_the_field_and_stores_nothing(
    client: TestClient, sqlite_engine: Engine, fields: dict[str, str], field: str, message: str
) -> None:
    r = _signup(client, **fields)
    assert r.status_code == 400
    assert f'id="e-{field}"' in r.text and message in r.text
    assert members.PASSWORD not in r.text  # the password never comes back
    assert _rows(sqlite_engine, users) == [] and _rows(sqlite_engine, sessions) == []


def test_taken_usernames_and_emails_are_refused_whatever_their_case(
    client: TestClient, sqlite_engine: Engine
) -> None:
    members.signup(client, "ada")
    other = members.another(client)
    r = _signup(other, username="ADA", email="someone@example.org")
    assert r.status_code == 400 and "taken" in r.text
    r = _signup(other, username="ada2", email="ADA@example.org")
    assert r.status_code == 400 and "sign in instead" in r.text
    assert len(_rows(sqlite_engine, users)) == 1


def test_sign_in_by_name_or_email_and_wrong_passwords(client: TestClient) -> None:
    members.signup(client, "ada")
    for login in ("ada", "ADA", "ada@example.org", " Ada@Example.org "):
        browser = members.another(client)
        r = members.login(browser, login)
        assert r.status_code == 303, login
        assert browser.get("/settings").status_code == 200
    for login, password in (("ada", "wrong password"), ("nobody", members.PASSWORD), ("", "")):
        browser = members.another(client)
        r = members.login(browser, login, password)
        assert r.status_code == 400 and "Wrong username or password" in r.text
        assert "pb_session" not in browser.cookies


def test_sign_in_attempts_are_limited_per_account_and_per_address(sqlite_engine: Engine) -> None:
    limits = RateLimits(signin="3 per 5 minutes", signup="1000 per minute")
    with members.client(sqlite_engine, rate_limits=limits) as c:
        members.signup(c, "ada")
        members.signup(members.another(c), "bob")
        guesser = members.another(c)
        for _ in range(3):
            assert members.login(guesser, "ada", "guess").status_code == 400
        r = members.login(guesser, "ada", members.PASSWORD)  # even the right password: the account is spent
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "pb_session" not in guesser.cookies
        # the same address is spent too (the test client is one address): bob cannot sign in from it now
        assert members.login(members.another(c), "bob").status_code == 429


def test_sign_ups_are_limited_per_address(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine, rate_limits=RateLimits(signup="2 per hour")) as c:
        members.signup(members.another(c), "ada")
        members.signup(members.another(c), "bob")
        r = _signup(members.another(c), username="cyd", email="cyd@example.org")
        assert r.status_code == 429
        assert [row[1] for row in _rows(sqlite_engine, users)] == ["ada", "bob"]


def test_change_password_ends_the_other_sessions_only(client: TestClient, sqlite_engine: Engine) -> None:
    members.signup(client, "ada")
    elsewhere = members.another(client)
    assert members.login(elsewhere, "ada").status_code == 303
    token = members.csrf(client, "/settings")
    r = client.post(
        "/settings/password",
        data={"current_password": "not it", "new_password": "a new password", "csrf_token": token},
    )
    assert r.status_code == 400 and "not your current password" in r.text
    assert elsewhere.get("/settings").status_code == 200  # nothing changed
    r = client.post(
        "/settings/password",
        data={"current_password": members.PASSWORD, "new_password": "short", "csrf_token": token},
    )
    assert r.status_code == 400 and "at least 8" in r.text
    r = client.post(
        "/settings/password",
        data={"current_password": members.PASSWORD, "new_password": "a new password", "csrf_token": token},
    )
    assert r.status_code == 200 and "Password changed" in r.text
    assert client.get("/settings").status_code == 200  # this session goes on
    assert elsewhere.get("/settings", follow_redirects=False).status_code == 303  # that one ended
    assert members.login(members.another(client), "ada").status_code == 400
    assert members.login(members.another(client), "ada", "a new password").status_code == 303


def test_tokens_are_made_shown_once_listed_by_prefix_and_revoked(
    client: TestClient, sqlite_engine: Engine
) -> None:
    members.signup(client, "ada")
    token = members.csrf(client, "/settings")
    r = client.post("/settings/tokens", data={"name": "my bot", "csrf_token": token})
    assert r.status_code == 200
    secret = r.text.split('id="new-token">')[1].split("<")[0]
    assert secret.startswith("pb_")
    page = client.get("/settings").text
    assert "my bot" in page and secret not in page and secret[:10] in page
    ((token_id, *_),) = _rows(sqlite_engine, api_tokens)
    assert secret not in repr(_rows(sqlite_engine, api_tokens))  # stored as a digest only
    script = TestClient(client.app, base_url="https://testserver")
    auth = {"Authorization": f"Bearer {secret}"}
    assert script.post(f"/api/papers/{A}/upvote", headers=auth).status_code == 200
    assert client.post("/settings/tokens", data={"name": " ", "csrf_token": token}).status_code == 400
    other = members.another(client)
    members.signup(other, "bob")
    r = other.post(
        f"/settings/tokens/{token_id}/revoke", data={"csrf_token": members.csrf(other, "/settings")}
    )
    assert r.status_code == 404  # not bob's
    assert script.delete(f"/api/papers/{A}/upvote", headers=auth).status_code == 200
    r = client.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert script.post(f"/api/papers/{A}/upvote", headers=auth).status_code == 401
    assert _rows(sqlite_engine, api_tokens) == []


def test_delete_account_needs_the_password_and_leaves_comments_as_deleted(
    client: TestClient, sqlite_engine: Engine
) -> None:
    members.signup(client, "ada")
    token = members.csrf(client, "/settings")
    client.post(f"/papers/{A}/upvote", data={"csrf_token": token})
    with sqlite_engine.begin() as conn:
        ada = store.get_user_by_name(conn, "ada")
        assert ada is not None
        comment_ops.post(conn, ada, A, "My own words", NOW)
        accounts.create_token(conn, ada, "t", NOW)
    r = client.post("/settings/delete", data={"password": "wrong", "csrf_token": token})
    assert r.status_code == 400 and len(_rows(sqlite_engine, users)) == 1
    r = client.post(
        "/settings/delete", data={"password": members.PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    for table in (users, sessions, api_tokens, votes):
        assert _rows(sqlite_engine, table) == [], table.name
    with sqlite_engine.connect() as conn:
        body, user_id, deleted = conn.execute(
            sa.select(comments.c.body, comments.c.user_id, comments.c.deleted_at)
        ).one()
    assert (body, user_id) == ("", None) and deleted is not None
    assert "My own words" not in client.get(f"/papers/{A}").text
    assert client.get("/settings", follow_redirects=False).status_code == 303


def test_signed_in_members_skip_the_forms_and_next_is_kept(client: TestClient) -> None:
    assert 'name="next" value="/papers/trending"' in client.get("/login?next=/papers/trending").text
    members.signup(client, "ada")
    r = client.get("/login?next=/settings", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/settings"
    assert client.get("/signup", follow_redirects=False).status_code == 303


def test_sessions_expire(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        user = accounts.create_user(
            conn,
            members.FAST_HASHER,
            username="ada",
            email="a@example.org",
            password=members.PASSWORD,
            now=NOW,
        )
        token = accounts.start_session(conn, user, NOW)
        assert accounts.session_user(conn, token, NOW) == user
        later = NOW + timedelta(days=accounts.SESSION_DAYS, seconds=1)
        assert accounts.session_user(conn, token, later) is None
        assert accounts.session_user(conn, "x" * 300, NOW) is None
        assert store.delete_expired_sessions(conn, later) == 1


def test_a_weaker_hash_is_upgraded_at_sign_in(sqlite_engine: Engine) -> None:
    strong = accounts.new_hasher()
    with sqlite_engine.begin() as conn:
        accounts.create_user(
            conn,
            members.FAST_HASHER,
            username="ada",
            email="a@example.org",
            password=members.PASSWORD,
            now=NOW,
        )
        user = accounts.authenticate(conn, strong, "ada", members.PASSWORD)
        assert user is not None
        upgraded = store.password_hash(conn, user.id)
    assert upgraded is not None and not strong.check_needs_rehash(upgraded)
