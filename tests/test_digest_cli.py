"""`paperboy digest send | preview | unsubscribe` end to end: a real SQLite file in a temporary data dir and
a real SMTP server (aiosmtpd) for the mail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_digest_plan import FRIDAY, _Inbox, _load, _subscribe
from test_digest_plan import smtp as smtp  # the fixture

from paperboy import db
from paperboy.cli import main
from paperboy.config import Settings
from paperboy.db.schema import digest_runs, outbox, subscriptions


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PAPERBOY_BASE_URL", "https://papers.example.org")
    monkeypatch.setenv("PAPERBOY_MAIL_FROM", "Lab Papers <papers@example.org>")
    monkeypatch.setenv("PAPERBOY_EMBEDDING_MODEL", "/no/such/model")  # no model: keyword matching is enough
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAPERBOY_SMTP_URL", raising=False)
    yield CliRunner()


def _engine() -> db.Engine:
    engine = db.make_engine(Settings().resolved_database_url)
    db.upgrade(engine)
    return engine


def _summary(output: str) -> dict[str, object]:
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_send_plans_then_sends_once_and_dry_run_writes_nothing(
    runner: CliRunner,
    smtp: tuple[str, _Inbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, inbox = smtp
    engine = _engine()
    _load(engine)
    _subscribe(engine, "ada@example.org", topics=("KV cache",))
    dry = runner.invoke(main, ["digest", "send", "--as-of", FRIDAY.isoformat(), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    summary = _summary(dry.output)
    assert (summary["due"], summary["planned"], summary["mails"], summary["dry_run"]) == (1, 1, 1, True)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(digest_runs)).scalar_one() == 0

    unsent = runner.invoke(main, ["digest", "send", "--as-of", "2026-11-27T14:00"])  # no offset: UTC
    assert unsent.exit_code == 0, unsent.output
    assert "PAPERBOY_SMTP_URL is not set" in unsent.output and _summary(unsent.output)["mails"] == 1

    monkeypatch.setenv("PAPERBOY_SMTP_URL", url)
    sent = runner.invoke(main, ["digest", "send", "--as-of", FRIDAY.isoformat()])
    assert sent.exit_code == 0, sent.output
    assert _summary(sent.output)["sent"] == 1 and _summary(sent.output)["already_planned"] == 1
    assert [m["To"] for m in inbox.messages] == ["ada@example.org"]
    again = runner.invoke(main, ["digest", "send", "--as-of", FRIDAY.isoformat()])
    assert _summary(again.output)["sent"] == 0 and len(inbox.messages) == 1


def test_send_exits_1_when_the_smtp_server_is_down(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine()
    _load(engine)
    _subscribe(engine, "ada@example.org", topics=("KV cache",))
    monkeypatch.setenv("PAPERBOY_SMTP_URL", "smtp://127.0.0.1:9")  # nothing listens on the discard port
    out = runner.invoke(main, ["digest", "send", "--as-of", FRIDAY.isoformat()])
    assert out.exit_code == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(outbox.c.status)).scalar_one() == "pending"  # kept for the next run


def test_preview_prints_one_and_unsubscribe_stops_them(runner: CliRunner) -> None:
    engine = _engine()
    _load(engine)
    _subscribe(engine, "ada@example.org", topics=("KV cache",))
    out = runner.invoke(main, ["digest", "preview", "ADA@example.org", "--as-of", FRIDAY.isoformat()])
    assert out.exit_code == 0, out.output
    assert "KV cache eviction for long contexts" in out.output and "List-Unsubscribe:" in out.output
    html = runner.invoke(
        main, ["digest", "preview", "ada@example.org", "--as-of", FRIDAY.isoformat(), "--html"]
    )
    assert "<!doctype html>" in html.output
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(digest_runs)).scalar_one() == 0
    assert runner.invoke(main, ["digest", "preview", "nobody@example.org"]).exit_code != 0
    bad = runner.invoke(main, ["digest", "send", "--as-of", "yesterday"])
    assert bad.exit_code == 2 and "ISO" in bad.output

    out = runner.invoke(main, ["digest", "unsubscribe", "ada@example.org"])
    assert out.exit_code == 0 and "unsubscribed ada@example.org" in out.output
    with engine.connect() as conn:
        assert conn.execute(sa.select(subscriptions.c.status)).scalar_one() == "unsubscribed"


def test_unsuppress_lets_an_address_get_mail_again(runner: CliRunner) -> None:
    from paperboy.store import outbox as outbox_store

    engine = _engine()
    with engine.begin() as conn:
        outbox_store.suppress(conn, "gone@example.org", "550 no such user", FRIDAY)
    out = runner.invoke(main, ["digest", "unsuppress", "Gone@example.org"])
    assert out.exit_code == 0 and "gone@example.org may get mail again" in out.output
    with engine.connect() as conn:
        assert not outbox_store.is_suppressed(conn, "gone@example.org")
    again = runner.invoke(main, ["digest", "unsuppress", "gone@example.org"])
    assert again.exit_code != 0 and "is not suppressed" in again.output


@pytest.mark.parametrize("command", [["send"], ["send", "--dry-run"], ["preview", "ada@example.org"]])
def test_mail_commands_refuse_when_they_cannot_name_the_server(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    engine = _engine()
    _load(engine)
    _subscribe(engine, "ada@example.org", topics=("KV cache",))
    monkeypatch.delenv("PAPERBOY_BASE_URL")
    for host in (None, "127.0.0.1", "0.0.0.0", "::"):  # loopback or every interface: not a name for links
        if host is not None:
            monkeypatch.setenv("PAPERBOY_HOST", host)
        out = runner.invoke(main, ["digest", *command, "--as-of", FRIDAY.isoformat()])
        assert out.exit_code == 1, out.output
        assert out.output.strip() == (
            "Error: cannot tell where the server is for the links in mail: set PAPERBOY_BASE_URL to its "
            "public address (e.g. PAPERBOY_BASE_URL=https://papers.example.org)"
        )
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(digest_runs)).scalar_one() == 0


def test_mail_links_come_from_the_configured_public_url(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine()
    _load(engine)
    _subscribe(engine, "ada@example.org", topics=("KV cache",))
    monkeypatch.setenv("PAPERBOY_BASE_URL", "https://hub.lab.example/papers/")
    out = runner.invoke(main, ["digest", "preview", "ada@example.org", "--as-of", FRIDAY.isoformat()])
    assert out.exit_code == 0, out.output
    links = re.findall(r"https?://[^\s<>\"]+", out.output)
    assert links and all(
        u.startswith("https://hub.lab.example/papers/") or u.startswith("https://arxiv.org/") for u in links
    ), links
    # no base URL, but PAPERBOY_HOST names this server as serve would listen on it
    monkeypatch.delenv("PAPERBOY_BASE_URL")
    monkeypatch.setenv("PAPERBOY_HOST", "papers.lab.example")
    monkeypatch.setenv("PAPERBOY_PORT", "8080")
    out = runner.invoke(main, ["digest", "send", "--as-of", FRIDAY.isoformat()])
    assert out.exit_code == 0, out.output
    with engine.connect() as conn:
        text = conn.execute(sa.select(outbox.c.text_body)).scalar_one()
    assert "http://papers.lab.example:8080/unsubscribe?t=" in text and "localhost" not in text
