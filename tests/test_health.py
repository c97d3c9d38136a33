"""GET /healthz (liveness: no database) and GET /readyz (database, search index, background loops), and the
loops' status on /admin, /api/admin and `paperboy index status`."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import members
import pytest
import sqlalchemy as sa
import webhub
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.cli import main
from paperboy.config import Settings
from paperboy.db import make_engine, upgrade
from paperboy.scheduler import StatusBoard
from paperboy.serve import open_search
from paperboy.store import background
from paperboy.web.app import create_app
from paperboy.web.health import Ready, Unavailable
from paperboy.web.security import RateLimits

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_healthz_answers_without_the_database(tmp_path: Path) -> None:
    """Liveness never waits for the database: with the pool's only connection held elsewhere, /healthz
    answers at once while /readyz says why it is not ready."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}", pool_size=1, pool_timeout=0.5)
    upgrade(engine)
    client = TestClient(create_app(engine))
    with engine.connect():  # the pool is now empty
        started = time.monotonic()
        r = client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert time.monotonic() - started < 0.4
        assert r.headers["cache-control"] == "no-store"
        assert client.head("/healthz").status_code == 200  # load balancers that probe with HEAD
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("database: TimeoutError")
    assert client.get("/readyz").status_code == 200
    engine.dispose()


def test_readyz_shows_the_index_and_each_loop(sqlite_engine: Engine, tmp_path: Path) -> None:
    webhub.load(sqlite_engine)
    parts = open_search(Settings(data_dir=tmp_path), sqlite_engine, with_vectors=False)
    clock = Clock()
    app = create_app(sqlite_engine, searcher=parts.searcher(), clock=clock)
    client = TestClient(app)
    r = client.get("/readyz")
    assert r.status_code == 200
    body = Ready.model_validate(r.json())  # the documented schema
    assert body.status == "ok" and body.loops == {} and body.failing == []
    assert r.json()["index"] == {"keywordDocs": parts.keyword.count(), "vectors": None}
    assert r.json()["index"]["keywordDocs"] > 0
    assert r.headers["cache-control"] == "no-store"

    board = StatusBoard(sqlite_engine, clock, heartbeat=0)
    board.loop("index").succeeded(backlog=3, detail={"keyword": 1, "vectors": 2})
    board.loop("huggingface").failed(RuntimeError("upstream down"))
    r = client.get("/readyz")
    assert r.status_code == 200  # a failing loop does not take the pages down: "degraded", still 200
    assert r.json()["status"] == "degraded" and r.json()["failing"] == ["huggingface"]
    loops = r.json()["loops"]
    assert loops["index"] == {
        "ok": True,
        "lastSuccessAt": T0.isoformat(),
        "lastErrorAt": None,
        "lastError": None,
        "failures": 0,
        "backlog": 3,
        "detail": {"keyword": 1, "vectors": 2},
        "updatedAt": T0.isoformat(),
    }
    assert loops["huggingface"]["ok"] is False and loops["huggingface"]["failures"] == 1
    assert loops["huggingface"]["lastError"] == "RuntimeError: upstream down"

    clock.now += timedelta(minutes=5)
    board.loop("huggingface").succeeded()
    r = client.get("/readyz")
    assert r.json()["status"] == "ok"
    hf = r.json()["loops"]["huggingface"]
    # the last error stays visible after the recovery, with its time
    assert hf["ok"] and hf["lastError"] == "RuntimeError: upstream down"
    assert hf["lastSuccessAt"] > hf["lastErrorAt"]
    parts.keyword.close()


def test_a_status_the_database_refused_is_written_later(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    sa.event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=100"))
    upgrade(engine)
    clock = Clock()
    board = StatusBoard(engine, clock, heartbeat=0)
    app = create_app(engine)
    app.state.background = board  # as `paperboy serve` does
    client = TestClient(app)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        board.loop("digests").failed(OSError(28, "No space left on device"))  # must not raise
        assert board.loop("digests").flush() is False
        down = client.get("/readyz")
        assert down.status_code == 503
        body = Unavailable.model_validate(down.json())
        assert body.reason == "database: OperationalError: database is locked"
        # what this process knows, from memory
        assert down.json()["loops"]["digests"]["lastError"] == "OSError: [Errno 28] No space left on device"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    with engine.connect() as conn:
        assert background.get(conn, "digests") is None
    clock.now += timedelta(seconds=30)
    board.loop("digests").succeeded(backlog=0)
    with engine.connect() as conn:
        row = background.get(conn, "digests")
    assert row is not None and row.ok and row.backlog == 0
    assert row.last_error_at == T0 and row.last_success_at == T0 + timedelta(seconds=30)
    assert client.get("/readyz").status_code == 200
    engine.dispose()


def test_a_fresh_process_does_not_erase_the_last_error(engine: Engine) -> None:
    """The upsert writes the columns the writer knows: a restarted loop's first success keeps the error an
    earlier process recorded (on SQLite and PostgreSQL)."""
    clock = Clock()
    StatusBoard(engine, clock, heartbeat=0).loop("index").failed(ValueError("bad vector"))
    clock.now += timedelta(minutes=1)
    StatusBoard(engine, clock, heartbeat=0).loop("index").succeeded(backlog=7, detail={"keyword": 7})
    with engine.connect() as conn:
        rows = background.all_statuses(conn)
    assert len(rows) == 1
    row = rows[0]
    assert (row.name, row.failures, row.backlog, row.detail) == ("index", 0, 7, {"keyword": 7})
    assert row.last_error == "ValueError: bad vector" and row.last_error_at == T0
    assert row.last_success_at == T0 + timedelta(minutes=1) == row.updated_at


def test_readyz_is_503_when_postgresql_does_not_answer() -> None:
    pytest.importorskip("psycopg")
    engine = make_engine("postgresql+psycopg://paperboy@127.0.0.1:9/paperboy?connect_timeout=2")
    client = TestClient(create_app(engine))
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert r.json()["reason"].startswith("database: OperationalError:")
    assert client.get("/healthz").status_code == 200
    engine.dispose()


def test_health_checks_are_never_rate_limited(sqlite_engine: Engine) -> None:
    strict = RateLimits(
        signin="1 per hour",
        signup="1 per hour",
        vote="1 per hour",
        comment="1 per hour",
        submit="1 per hour",
        claim="1 per hour",
        subscribe="1 per hour",
    )
    client = TestClient(create_app(sqlite_engine, rate_limits=strict))
    codes = {client.get(path).status_code for _ in range(30) for path in ("/healthz", "/readyz")}
    assert codes == {200}


def test_admin_page_and_its_json_show_the_loops(sqlite_engine: Engine) -> None:
    clock = Clock()
    board = StatusBoard(sqlite_engine, clock, heartbeat=0)
    board.loop("index").succeeded(backlog=12, detail={"keyword": 2, "vectors": 10})
    board.loop("arxiv:cs.CL").failed(RuntimeError("arXiv answered 503"))
    with members.client(sqlite_engine) as admin:
        members.signup(admin, "root-admin")  # the first account is the admin
        page = admin.get("/admin")
        assert page.status_code == 200
        assert "Background work" in page.text
        assert "arXiv answered 503" in page.text and "failing" in page.text
        assert "keyword 2, vectors 10" in page.text
        data = admin.get("/api/admin").json()["background"]
        assert data["index"]["backlog"] == 12 and data["index"]["ok"] is True
        assert data["arxiv:cs.CL"]["lastError"] == "RuntimeError: arXiv answered 503"


def test_index_status_prints_the_loops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(data))
    monkeypatch.setenv("PAPERBOY_EMBEDDING_MODEL", str(tmp_path / "no-model"))  # keyword only, at once
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAPERBOY_CONFIG", raising=False)
    engine = make_engine(f"sqlite:///{data / 'paperboy.sqlite3'}")
    upgrade(engine)
    StatusBoard(engine, Clock(), heartbeat=0).loop("index").failed(RuntimeError("tick failed"))
    engine.dispose()
    result = CliRunner().invoke(main, ["index", "status"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout.strip().splitlines()[-1])
    assert status["background"]["index"]["failures"] == 1
    assert status["background"]["index"]["lastError"] == "RuntimeError: tick failed"
