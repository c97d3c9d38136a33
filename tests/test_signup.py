"""Sign-up against a hostile visitor: the first account (the admin) needs the setup code `paperboy serve`
printed when others can reach the hub; with PAPERBOY_SIGNUP_VERIFY_EMAIL the answer does not tell whether an
address has an account (its owner is mailed instead), and nothing is stored before the mailed link is
opened. Over the real app and real databases; `serve` itself in a subprocess for the setup code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import members
import pytest
import sqlalchemy as sa
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.config import Settings
from paperboy.db.schema import outbox, users
from paperboy.digest.send import send_pending
from paperboy.serve import first_account_code, only_this_machine
from paperboy.web.app import create_app
from paperboy.web.security import RateLimits

CODE = "ABCDE-FGHJK-MNPQR"
MANY = RateLimits(signup="1000 per minute", signin="1000 per minute")


def _client(engine: Engine, **kwargs: Any) -> TestClient:
    app = create_app(
        engine,
        site=webhub.SITE,
        clock=lambda: webhub.NOW,
        hasher=members.FAST_HASHER,
        rate_limits=kwargs.pop("rate_limits", MANY),
        **kwargs,
    )
    return TestClient(app, base_url="https://testserver")


def _signup(c: TestClient, **fields: str) -> Any:
    data = {"username": "ada", "email": "ada@example.org", "password": members.PASSWORD, **fields}
    return c.post("/signup", data={**data, "csrf_token": members.csrf(c, "/signup")}, follow_redirects=False)


def _users(engine: Engine) -> list[tuple[str, str, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.username, users.c.email, users.c.is_admin).order_by(users.c.id))
        return [(r[0], r[1], bool(r[2])) for r in rows]


def _mails(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)).mappings())


# --- the first account's setup code ------------------------------------------------------------------------


def test_the_first_sign_up_needs_the_setup_code_and_later_ones_never_do(engine: Engine) -> None:
    with _client(engine, setup_code=CODE) as c:
        page = c.get("/signup").text
        assert 'name="setup_code"' in page and "setup code" in page
        r = _signup(c)
        assert r.status_code == 403 and 'id="e-setup_code"' in r.text and "needs the setup code" in r.text
        r = _signup(c, setup_code="ZZZZZ-ZZZZZ-ZZZZZ")
        assert r.status_code == 403 and "not the setup code" in r.text
        assert _users(engine) == []  # refused: nothing stored, nobody signed in
        assert "pb_session" not in c.cookies
        r = _signup(c, setup_code=" abcde fghjk mnpqr ")  # as read off a terminal: case and spaces aside
        assert r.status_code == 303
        assert _users(engine) == [("ada", "ada@example.org", True)]

        other = members.another(c)
        assert 'name="setup_code"' not in other.get("/signup").text  # asked only while it is needed
        assert _signup(other, username="bob", email="bob@example.org").status_code == 303
        assert (
            _signup(members.another(c), username="cyd", email="c@example.org", setup_code="x").status_code
            == 303
        )
        assert [u[2] for u in _users(engine)] == [True, False, False]  # the code made no one else an admin


def test_without_a_setup_code_the_first_sign_up_is_the_admin_as_before(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        assert 'name="setup_code"' not in c.get("/signup").text
        assert _signup(c).status_code == 303
    assert _users(sqlite_engine) == [("ada", "ada@example.org", True)]


@pytest.mark.parametrize(
    ("host", "base_url", "alone"),
    [
        ("127.0.0.1", None, True),
        ("localhost", "http://localhost:8000", True),
        ("::1", None, True),
        ("0.0.0.0", None, False),  # every interface: others reach it
        ("192.168.1.5", None, False),
        ("127.0.0.1", "https://papers.example.org", False),  # loopback behind a public proxy
    ],
)
def test_a_setup_code_is_made_only_when_others_can_reach_an_empty_hub(
    sqlite_engine: Engine, tmp_path: Path, host: str, base_url: str | None, alone: bool
) -> None:
    settings = Settings(data_dir=tmp_path, host=host, base_url=base_url)
    assert only_this_machine(settings) is alone
    told: list[str] = []
    code = first_account_code(sqlite_engine, settings, told.append)
    assert (code is None) is alone
    if code is not None:
        assert re.fullmatch(r"[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5}", code)
        assert code in told[0] and "/signup" in told[0]
        with _client(sqlite_engine, setup_code=code) as c:
            assert _signup(c, setup_code=code).status_code == 303
        assert first_account_code(sqlite_engine, settings, told.append) is None  # a member now: no code


def test_serve_on_every_interface_prints_a_code_the_first_sign_up_needs(tmp_path: Path) -> None:
    import httpx
    from servekit import serve

    env = {"PAPERBOY_BASE_URL": "http://127.0.0.1:1"}  # links only; the server is reached on loopback
    with serve(tmp_path, "--host", "0.0.0.0", env=env) as served:
        log = (tmp_path / f"serve-{served.port}.log").read_text()
        found = re.search(r"setup code ([A-Z0-9-]{17})", log)
        assert found, log
        with httpx.Client(base_url=served.url) as c:
            token = re.findall(r'name="csrf_token" value="([0-9a-f]{64})"', c.get("/signup").text)[0]
            form = {"username": "ada", "email": "ada@example.org", "password": members.PASSWORD}
            assert c.post("/signup", data={**form, "csrf_token": token}).status_code == 403
            r = c.post("/signup", data={**form, "csrf_token": token, "setup_code": found.group(1)})
            assert r.status_code == 303


def test_serve_on_loopback_asks_no_code(tmp_path: Path) -> None:
    import httpx
    from servekit import serve

    with serve(tmp_path) as served, httpx.Client(base_url=served.url) as c:
        assert "setup code" not in (tmp_path / f"serve-{served.port}.log").read_text()
        page = c.get("/signup").text
        assert 'name="setup_code"' not in page
        token = re.findall(r'name="csrf_token" value="([0-9a-f]{64})"', page)[0]
        form = {
            "username": "ada",
            "email": "ada@example.org",
            "password": members.PASSWORD,
            "csrf_token": token,
        }
        assert c.post("/signup", data=form).status_code == 303


# --- sign-up by mail (PAPERBOY_SIGNUP_VERIFY_EMAIL) --------------------------------------------------------


@pytest.fixture
def verifying(sqlite_engine: Engine) -> Iterator[TestClient]:
    with _client(sqlite_engine, signup_verify_email=True) as c:
        yield c


def _link(mail: Any) -> str:
    found = re.search(r"https://papers\.example\.org/signup/confirm\?t=\S+", mail["text_body"])
    assert found, mail["text_body"]
    return found.group(0)


def test_a_taken_address_gets_the_same_answer_and_its_owner_a_mail(
    verifying: TestClient, sqlite_engine: Engine
) -> None:
    with _client(sqlite_engine) as instant:
        members.signup(instant, "owner", "taken@example.org")  # an account made before
    before = _users(sqlite_engine)

    new = _signup(members.another(verifying), username="ada", email="new@example.org")
    taken = _signup(members.another(verifying), username="bob", email="taken@example.org")
    assert new.status_code == taken.status_code == 200
    assert "Check your inbox" in new.text
    assert new.text.replace("new@example.org", "X") == taken.text.replace("taken@example.org", "X")
    assert "pb_session" not in new.cookies and "pb_session" not in taken.cookies
    assert _users(sqlite_engine) == before  # nothing stored before the link is opened

    to_new, to_owner = _mails(sqlite_engine)
    assert (to_new["to_addr"], to_new["kind"]) == ("new@example.org", "signup")
    assert "/signup/confirm?t=" in to_new["text_body"] and "choose your password" in to_new["text_body"]
    assert to_owner["to_addr"] == "taken@example.org"
    assert (
        "has an account already" in to_owner["text_body"] and "/signup/confirm" not in to_owner["text_body"]
    )
    assert "/login" in to_owner["text_body"]


def test_the_mailed_link_makes_the_account_once(verifying: TestClient, sqlite_engine: Engine) -> None:
    assert _signup(verifying, password="").status_code == 200
    link = _link(_mails(sqlite_engine)[0])
    path = urlsplit(link).path + "?" + urlsplit(link).query
    page = verifying.get(path)
    assert page.status_code == 200 and "ada@example.org" in page.text and 'value="ada"' in page.text
    token = parse_qs(urlsplit(link).query)["t"][0]
    csrf = members.csrf(verifying, path)

    weak = verifying.post(
        "/signup/confirm", data={"t": token, "username": "ada", "password": "password", "csrf_token": csrf}
    )
    assert weak.status_code == 400 and "too easy to guess" in weak.text and _users(sqlite_engine) == []
    r = verifying.post(
        "/signup/confirm",
        data={"t": token, "username": "ada", "password": members.PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "pb_session" in verifying.cookies
    assert _users(sqlite_engine) == [("ada", "ada@example.org", True)]
    assert verifying.get("/settings").status_code == 200

    again = members.another(verifying)
    assert again.get(path).status_code == 400  # used: the address has its account
    r = again.post(
        "/signup/confirm",
        data={
            "t": token,
            "username": "ada2",
            "password": members.PASSWORD,
            "csrf_token": members.csrf(again),
        },
    )
    assert r.status_code == 400 and len(_users(sqlite_engine)) == 1


@pytest.mark.parametrize("mangle", ["cut", "altered", "expired", "other-key"])
def test_a_bad_link_is_a_400_that_stores_nothing(sqlite_engine: Engine, mangle: str) -> None:
    with _client(sqlite_engine, signup_verify_email=True, secret_key=b"k" * 32) as c:
        _signup(c)
        token = parse_qs(urlsplit(_link(_mails(sqlite_engine)[0])).query)["t"][0]
    later = webhub.NOW
    key = b"k" * 32
    if mangle == "cut":
        token = token[:-5]
    elif mangle == "altered":
        token = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    elif mangle == "expired":
        later = webhub.NOW + timedelta(hours=49)
    else:
        key = b"q" * 32
    app = create_app(
        sqlite_engine,
        site=webhub.SITE,
        clock=lambda: later,
        hasher=members.FAST_HASHER,
        secret_key=key,
        signup_verify_email=True,
    )
    with TestClient(app, base_url="https://testserver") as c:
        assert c.get("/signup/confirm", params={"t": token}).status_code == 400
        r = c.post(
            "/signup/confirm",
            data={"t": token, "username": "ada", "password": members.PASSWORD, "csrf_token": members.csrf(c)},
        )
        assert r.status_code == 400
    assert _users(sqlite_engine) == []


def test_an_address_gets_at_most_three_sign_up_mails_in_six_hours(
    verifying: TestClient, sqlite_engine: Engine
) -> None:
    pages = [_signup(members.another(verifying), username=f"ada{i}").text for i in range(5)]
    assert len({p for p in pages}) == 1  # the same page every time
    assert len(_mails(sqlite_engine)) == 3


def test_with_verification_the_first_account_still_needs_the_setup_code(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine, signup_verify_email=True, setup_code=CODE) as c:
        assert _signup(c).status_code == 403 and _mails(sqlite_engine) == []
        assert _signup(c, setup_code=CODE).status_code == 200
        token = parse_qs(urlsplit(_link(_mails(sqlite_engine)[0])).query)["t"][0]
        r = c.post(
            "/signup/confirm",
            data={"t": token, "username": "ada", "password": members.PASSWORD, "csrf_token": members.csrf(c)},
            follow_redirects=False,
        )
        assert r.status_code == 303
    assert _users(sqlite_engine) == [("ada", "ada@example.org", True)]


def test_a_taken_username_may_still_be_said(verifying: TestClient, sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as instant:
        members.signup(instant, "ada", "ada@example.org")
    r = _signup(members.another(verifying), username="ADA", email="other@example.org")
    assert r.status_code == 400 and "taken" in r.text  # public anyway: /u/ada
    assert _mails(sqlite_engine) == []


class Recorded:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, msg: EmailMessage) -> None:
        self.sent.append(msg)

    def close(self) -> None:
        pass


def test_sign_up_mails_leave_through_the_outbox(verifying: TestClient, sqlite_engine: Engine) -> None:
    _signup(verifying)
    mailer = Recorded()
    report = send_pending(sqlite_engine, mailer, lambda: webhub.NOW, sender="Lab <p@example.org>", rate=1000)
    assert [m["To"] for m in mailer.sent] == ["ada@example.org"], report
    assert mailer.sent[0]["Subject"] == "Confirm your sign-up to Lab Papers"
