"""Passwords easy to guess are refused, with zxcvbn's reason, wherever one is chosen: the sign-up form, the
settings page, `paperboy user create` and `paperboy user password`."""

from __future__ import annotations

from pathlib import Path

import members
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from paperboy import accounts, db
from paperboy.cli import main
from paperboy.config import Settings
from paperboy.db.schema import users
from paperboy.errors import FieldInvalid
from paperboy.web.security import RateLimits

MANY = RateLimits(signup="1000 per minute", signin="1000 per minute")
WEAK = [
    ("password", "top-10 common password"),
    ("12345678", "top-10 common password"),
    ("qwertyuiop", "common password"),
    ("P@ssw0rd123", "similar to a commonly used password"),
    ("Summer2024!", "similar to a commonly used password"),
    ("AdaLovelace", "must not be your username"),
    ("adalovelace1", "too easy to guess"),  # the username and a digit
    ("ada.lovelace@example.org", "too easy to guess"),  # the email address
    ("x" * 40, 'Repeats like "aaa" are easy to guess'),
]
STRONG = ["violet kettle ninety drums", "kq8#Lm2!zp", "Lab Papers 2025", members.PASSWORD]


@pytest.mark.parametrize(("password", "reason"), WEAK)
def test_easy_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    with pytest.raises(FieldInvalid) as refused:
        accounts.check_password(password, "adalovelace", email="ada.lovelace@example.org")
    assert refused.value.field == "password"
    assert reason in str(refused.value)


@pytest.mark.parametrize("password", STRONG)
def test_hard_passwords_pass(password: str) -> None:
    accounts.check_password(password, "adalovelace", email="ada.lovelace@example.org")


def test_the_length_limits_still_come_first() -> None:
    with pytest.raises(FieldInvalid, match="at least 8"):
        accounts.check_password("Xk#9q")
    with pytest.raises(FieldInvalid, match="at most 1024"):
        accounts.check_password("kq8#Lm2!zp" * 103)
    accounts.check_password("kq8#Lm2!zp" * 102)  # long ones are judged by their first 72 characters, quickly


@pytest.mark.parametrize(("password", "reason"), WEAK[:4])
def test_the_sign_up_form_shows_the_reason_and_stores_nothing(
    sqlite_engine: Engine, password: str, reason: str
) -> None:
    with members.client(sqlite_engine, rate_limits=MANY) as c:
        data = {"username": "ada", "email": "ada@example.org", "password": password}
        r = c.post("/signup", data={**data, "csrf_token": members.csrf(c, "/signup")})
    assert r.status_code == 400 and 'id="e-password"' in r.text and reason in r.text
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one() == 0


def test_a_new_password_on_the_settings_page_is_checked_too(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine, rate_limits=MANY) as c:
        members.signup(c, "ada")
        token = members.csrf(c, "/settings")
        form = {"current_password": members.PASSWORD, "new_password": "qwertyuiop", "csrf_token": token}
        r = c.post("/settings/password", data=form)
        assert r.status_code == 400 and 'id="e-new_password"' in r.text and "common password" in r.text
        form["new_password"] = "violet kettle ninety drums"
        assert "Password changed" in c.post("/settings/password", data=form).text


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    return CliRunner()


def test_user_create_refuses_an_easy_password_and_says_why(runner: CliRunner) -> None:
    out = runner.invoke(main, ["user", "create", "ada", "--email", "ada@example.org"], input="password\n")
    assert out.exit_code != 0
    assert "too easy to guess" in out.output and "top-10 common password" in out.output
    out = runner.invoke(
        main, ["user", "create", "ada", "--email", "ada@example.org"], input="violet kettle ninety drums\n"
    )
    assert out.exit_code == 0, out.output


def test_user_password_sets_a_checked_password_and_ends_sessions(runner: CliRunner) -> None:
    runner.invoke(
        main, ["user", "create", "ada", "--email", "ada@example.org"], input=f"{members.PASSWORD}\n"
    )
    engine = db.make_engine(Settings().resolved_database_url)
    with engine.begin() as conn:
        user = accounts.authenticate(conn, accounts.new_hasher(), "ada", members.PASSWORD)
        assert user is not None
        accounts.start_session(conn, user, user.created_at)
    out = runner.invoke(main, ["user", "password", "ada"], input="12345678\n")
    assert out.exit_code != 0 and "top-10 common password" in out.output
    out = runner.invoke(main, ["user", "password", "ada"], input="violet kettle ninety drums\n")
    assert out.exit_code == 0 and "1 session(s) ended" in out.output, out.output
    with engine.connect() as conn:
        assert (
            accounts.authenticate(conn, accounts.new_hasher(), "ada", "violet kettle ninety drums")
            is not None
        )
    out = runner.invoke(main, ["user", "password", "nobody"], input="violet kettle ninety drums\n")
    assert out.exit_code != 0 and "no member named 'nobody'" in out.output
    engine.dispose()
