"""Shared fixtures: real databases (a SQLite file per test; PostgreSQL where a test asks for `engine`).

PostgreSQL comes from PAPERBOY_TEST_POSTGRES_URL when set (a server URL whose user may CREATE DATABASE),
else from a throwaway server that the `pgserver` package starts once per session (as root it runs the
server as a `pgserver` system user it creates). Each test gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from upstream import Upstream

from paperboy.db import make_engine, upgrade

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _migrated(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database in a real file (WAL, foreign keys on), private to the test."""
    engine = _migrated(f"sqlite:///{tmp_path / 'paperboy.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL (SQLAlchemy form, psycopg 3), or a skip saying why there is none."""
    configured = os.environ.get("PAPERBOY_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        pytest.skip(f"PostgreSQL unavailable: pgserver is not installed ({exc})")
    # Not under pytest's basetemp: pytest keeps that folder private (0700), which locks out the `pgserver`
    # user the server runs as when we are root. A short path also keeps the Unix socket path under ~100 bytes.
    pgdata = Path(tempfile.mkdtemp(prefix="paperboy-pg-"))
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="delete")
    except Exception as exc:  # pragma: no cover - depends on the machine
        shutil.rmtree(pgdata, ignore_errors=True)
        pytest.skip(f"PostgreSQL unavailable: pgserver could not start a server in {pgdata} ({exc})")
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    try:
        yield uri.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()  # stop it (and delete its folder) now rather than at interpreter exit
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture
def postgres_engine(postgres_server_url: str) -> Iterator[Engine]:
    """A migrated, freshly created PostgreSQL database, dropped after the test."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    name = f"paperboy_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        pytest.skip(f"PostgreSQL unavailable at {postgres_server_url}: {exc}")
    url = sa.engine.make_url(postgres_server_url).set(database=name)
    engine = _migrated(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on both backends: a migrated SQLite file, then a fresh PostgreSQL database."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def shared_data() -> Path:
    """../shared/data next to the repository, or a skip naming the missing folder."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A real HTTP server on 127.0.0.1 playing Hugging Face and arXiv (tests/upstream.py)."""
    with Upstream() as server:
        yield server
        assert not server.errors, f"the test upstream failed while answering: {server.errors!r}"


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian chromium through Playwright (tests/browserkit.py), or a skip saying what is missing."""
    import browserkit

    with browserkit.launched() as b:
        yield b
