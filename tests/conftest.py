"""Shared fixtures: real databases (a SQLite file per test; PostgreSQL where a test asks for `engine`).

PostgreSQL comes from PAPERBOY_TEST_POSTGRES_URL when set (a server URL whose user may CREATE DATABASE),
else from a throwaway server that the `pgserver` package starts once per session (as root it runs the
server as a `pgserver` system user it creates). Each test gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run; each test gets a copy (~2 ms instead of ~50 ms)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "paperboy.sqlite3"
    _migrated(f"sqlite:///{path}").dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy: no -wal/-shm beside it
    conn.close()
    return path


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A migrated SQLite database in a real file (WAL, foreign keys on), private to the test."""
    path = tmp_path / "paperboy.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
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


@pytest.fixture(scope="session")
def postgres_template(postgres_server_url: str) -> Iterator[str]:
    """The name of a database migrated to head once per run, which each test's database is created from
    (CREATE DATABASE … TEMPLATE copies it in ~0.25 s; creating and migrating one takes ~0.55 s)."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    name = f"paperboy_template_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        pytest.skip(f"PostgreSQL unavailable at {postgres_server_url}: {exc}")
    url = sa.engine.make_url(postgres_server_url).set(database=name)
    _migrated(url.render_as_string(hide_password=False)).dispose()  # no one may stay connected to a template
    try:
        yield name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_engine(postgres_server_url: str, postgres_template: str) -> Iterator[Engine]:
    """A migrated, freshly created PostgreSQL database (a copy of the template), dropped after the test."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    name = f"paperboy_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"'))
    url = sa.engine.make_url(postgres_server_url).set(database=name)
    engine = make_engine(url.render_as_string(hide_password=False))
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


def pytest_configure(config: pytest.Config) -> None:
    """No test reaches the Hugging Face hub: set before any test module imports huggingface_hub, which reads
    these once at import (a fixture that sets them later is too late, and a lookup of an unknown model then
    waits ~70 s for network time-outs instead of failing at once). Subprocesses inherit them."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX cache folder holding the default model's export (fp32 and int8), made once per test run.

    Exporting takes ~10 s of CPU (the graph built from the safetensors weights and checked, then quantized,
    in child processes, without torch); every test that loads the default model shares this one instead:
    pass it as `cache_dir`, or link `data_dir/models` to it (where `paperboy` keeps its cache). Under
    pytest-xdist the workers share one folder: the first exports under a lock, the others wait for it. When
    the model cannot be exported here (a package missing), the folder stays empty and the code under test
    meets what it would have met without this fixture.
    """
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # basetemp/popen-gwN: its parent is this run's, shared
        root = root.parent
    folder, done = root / "onnx-models", root / "onnx-models.done"
    with (root / "onnx-models.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            folder.mkdir(exist_ok=True)
            try:
                from paperboy.errors import EmbeddingUnavailable
                from paperboy.search.embed import load_embedder

                load_embedder(None, backend="onnx-int8", cache_dir=folder)  # fp32 export, then int8
            except (ImportError, EmbeddingUnavailable):
                pass
            done.touch()
    return folder


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
