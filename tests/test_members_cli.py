"""`paperboy user …` and `paperboy token …` over a real SQLite file; the secret key `serve` signs with."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from paperboy import db
from paperboy.cli import main
from paperboy.config import Settings
from paperboy.serve import secret_key
from paperboy.store import users as store
from paperboy.web.app import create_app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    return CliRunner()


def _engine() -> db.Engine:
    return db.make_engine(Settings().resolved_database_url)


def test_user_create_reads_the_password_from_stdin_and_the_token_works_on_the_api(runner: CliRunner) -> None:
    out = runner.invoke(
        main, ["user", "create", "ada", "--email", "Ada@Example.org"], input="s3cret-enough\n"
    )
    assert out.exit_code == 0, out.output
    assert "created admin ada <ada@example.org>" in out.output  # the first member is the admin
    out = runner.invoke(
        main, ["user", "create", "bob", "--email", "bob@example.org"], input="bobs own kettle drum\n"
    )
    assert "created member bob" in out.output
    out = runner.invoke(
        main,
        ["user", "create", "cyd", "--email", "cy@example.org", "--admin"],
        input="cyd tangerine window\n",
    )
    assert "created admin cyd" in out.output

    out = runner.invoke(main, ["token", "create", "bob"])
    assert out.exit_code == 0, out.output
    secret = out.output.strip()
    assert secret.startswith("pb_") and len(secret) > 40

    engine = _engine()
    with engine.connect() as conn:
        found = store.credentials(conn, "bob")
        assert found is not None and found[1].startswith("$argon2id$")  # hashed, never the password
        assert "bobs own kettle drum" not in found[1]
        (tok,) = store.list_tokens(conn, found[0].id)
        assert secret.startswith(tok.prefix) and secret != tok.prefix
    client = TestClient(create_app(engine), base_url="https://testserver")
    r = client.delete("/api/papers/2501.00001/upvote", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 404  # authenticated as bob: the paper is what is missing

    out = runner.invoke(main, ["user", "list"])
    assert "ada" in out.output and "bob" in out.output and "admin" in out.output

    out = runner.invoke(main, ["token", "revoke", "bob", str(tok.id)])
    assert out.exit_code == 0, out.output
    r = client.delete("/api/papers/2501.00001/upvote", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["user", "create", "ada", "--email", "ada@example.org"], "short\n", "at least 8 characters"),
        (["user", "create", "a", "--email", "ada@example.org"], "long-enough\n", "3 to 40 letters"),
        (["user", "create", "ada", "--email", "not-an-email"], "long-enough\n", "email address"),
        (["token", "create", "nobody"], "", "no member named 'nobody'"),
        (["user", "disable", "nobody"], "", "no member named 'nobody'"),
    ],
)
def test_bad_input_is_a_clear_error_and_a_non_zero_exit(
    runner: CliRunner, args: list[str], stdin: str, message: str
) -> None:
    out = runner.invoke(main, args, input=stdin)
    assert out.exit_code != 0
    assert message in out.output


def test_a_taken_name_is_refused_and_the_first_account_is_kept(runner: CliRunner) -> None:
    runner.invoke(main, ["user", "create", "ada", "--email", "ada@example.org"], input="first-password\n")
    out = runner.invoke(
        main, ["user", "create", "ADA", "--email", "x@example.org"], input="second-password\n"
    )
    assert out.exit_code != 0 and "taken" in out.output
    with _engine().connect() as conn:
        assert [u.email for u in store.list_users(conn)] == ["ada@example.org"]


def test_disable_ends_sessions_and_enable_restores(runner: CliRunner) -> None:
    runner.invoke(main, ["user", "create", "ada", "--email", "ada@example.org"], input="first-password\n")
    out = runner.invoke(main, ["user", "disable", "ada"])
    assert out.exit_code == 0 and "disabled ada" in out.output
    with _engine().connect() as conn:
        found = store.get_user_by_name(conn, "ada")
        assert found is not None and found.disabled
    runner.invoke(main, ["user", "disable", "ada", "--enable"])
    with _engine().connect() as conn:
        found = store.get_user_by_name(conn, "ada")
        assert found is not None and not found.disabled


def test_the_secret_key_is_made_once_owner_only_and_an_explicit_one_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    first = secret_key(settings)
    assert len(first) == 64 and secret_key(settings) == first
    mode = stat.S_IMODE((tmp_path / "d" / "secret_key").stat().st_mode)
    assert mode == 0o600
    assert secret_key(Settings(data_dir=tmp_path / "d", secret_key="x" * 40)) == b"x" * 40


def test_a_bad_rate_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOY_RATE_VOTE", "lots")
    with pytest.raises(ValueError, match="not a rate"):
        Settings()
