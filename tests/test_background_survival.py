"""Background loops outlive a broken database: the database is broken under a RUNNING loop (the SQLite file
locked past the busy timeout; the PostgreSQL server stopped and started again), the loop records the error,
keeps it in memory while the status cannot be written, and resumes by itself; an exception that is not a
PaperboyError (IntegrityError, RuntimeError) does not end the thread either.

Real parts throughout: a SQLite file, a PostgreSQL server of our own (pgserver's binaries, stopped and
started with pg_ctl), real index files; only the embedding model is the tests' HashEmbedder.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from searchkit import CORPUS, HashEmbedder, paper, records
from sqlalchemy.engine import Engine

from paperboy.config import Settings
from paperboy.db import make_engine, upgrade
from paperboy.db.schema import papers as papers_table
from paperboy.models import Record
from paperboy.scheduler import Backoff, Job, Scheduler, StatusBoard
from paperboy.serve import IndexWorker, build_digest_scheduler, open_search
from paperboy.store import background
from paperboy.store.background import LoopStatus
from paperboy.store.papers import paper_to_row, upsert_records
from paperboy.web.app import create_app

BUSY_MS = 200  # the busy timeout of these tests' SQLite connections (the app's is 10 s)
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def wait_for(probe: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {value!r})")
        time.sleep(0.02)


def stored(engine: Engine, name: str) -> LoopStatus | None:
    """The status row as another process reads it (None while the database cannot be read)."""
    try:
        with engine.connect() as conn:
            return background.get(conn, name)
    except sa.exc.OperationalError:
        return None


def new_records(*ids: str) -> list[Record]:
    return [
        Record(paper(i, f"Fresh paper {i} on sparse retrieval", "A new method for sparse retrieval."))
        for i in ids
    ]


class GatedEmbedder(HashEmbedder):
    """The test model, with a gate: `embed_documents` waits while the gate is closed (so the test can break
    the database between the worker's read of pending papers and its write of their vectors)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(30)
        return super().embed_documents(texts, batch_size)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "paperboy.sqlite3"


@pytest.fixture
def quick_sqlite(sqlite_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file whose connections give up on a lock after BUSY_MS (listeners run in order:
    this one after make_engine's own pragmas)."""
    engine = make_engine(f"sqlite:///{sqlite_path}")

    def short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        cursor.close()

    sa.event.listen(engine, "connect", short_busy_timeout)
    upgrade(engine)
    yield engine
    engine.dispose()


def start_worker(
    engine: Engine, data_dir: Path, embedder: HashEmbedder
) -> tuple[IndexWorker, StatusBoard, Any]:
    parts = open_search(Settings(data_dir=data_dir), engine, embedder=embedder, sync=False)
    board = StatusBoard(engine, utcnow, heartbeat=0)  # every report written: the test reads the table
    worker = IndexWorker(
        engine, parts, utcnow, batch=8, batches_per_tick=2, board=board, backoff=Backoff(first=0.05, cap=0.4)
    )
    worker.start(idle_seconds=0.05)
    return worker, board, parts


def caught_up(engine: Engine, total: int, since: datetime | None = None) -> Callable[[], LoopStatus | None]:
    """A probe: the stored `index` status says nothing is waiting, with `total` papers stored, after a
    success later than `since`."""

    def probe() -> LoopStatus | None:
        s = stored(engine, "index")
        if s is None or not s.ok or s.backlog != 0 or s.detail != {"keyword": 0, "vectors": 0}:
            return None
        if since is not None and (s.last_success_at is None or s.last_success_at <= since):
            return None
        return s if _papers(engine) == total else None

    return probe


def _papers(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(papers_table)).scalar_one()


def test_index_worker_resumes_after_the_sqlite_file_was_locked_past_the_busy_timeout(
    quick_sqlite: Engine, sqlite_path: Path, tmp_path: Path
) -> None:
    engine = quick_sqlite
    with engine.begin() as conn:
        upsert_records(conn, records(), utcnow())
    emb = GatedEmbedder()
    worker, _board, parts = start_worker(engine, tmp_path / "data", emb)
    app = TestClient(create_app(engine))
    locker = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        wait_for(caught_up(engine, len(CORPUS)), "the first indexing")
        before = stored(engine, "index")
        assert before is not None and before.last_error is None

        # A new paper arrives; the worker reads it and starts embedding; meanwhile another process takes
        # the write lock and holds it far past the busy timeout.
        emb.gate.clear()
        with engine.begin() as conn:
            upsert_records(conn, new_records("2612.00001"), utcnow())
        wait_for(emb.waiting.is_set, "the worker to embed the new paper")
        locker.execute("BEGIN EXCLUSIVE")
        locked_at = utcnow()
        emb.gate.set()  # its write of the vectors now waits BUSY_MS and fails, again and again

        failing = wait_for(lambda: worker.health.status.failures >= 3 or None, "failures while locked")
        assert failing
        status = worker.health.status
        assert status.last_error is not None and "database is locked" in status.last_error
        assert status.last_error.startswith("OperationalError")
        assert status.last_error_at is not None and status.last_error_at >= locked_at
        # The status could not be written either (the lock): it waits in memory; the table still shows
        # the last state another process could read.
        row = stored(engine, "index")
        assert row is not None and row.failures == 0 and row.last_error is None
        ready = app.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable" and "database is locked" in ready.json()["reason"]
        assert worker._thread is not None and worker._thread.is_alive()
        time.sleep(3 * BUSY_MS / 1000)  # well past the busy timeout, many tries
        assert worker._thread.is_alive()
        assert "2612.00001" not in parts.vector

        locker.execute("ROLLBACK")
        released_at = utcnow()
        after = wait_for(caught_up(engine, len(CORPUS) + 1, released_at), "the worker to resume")
        # The table now shows the outage (recorded from memory) and the later success.
        assert after.last_success_at is not None and after.last_success_at > released_at
        assert after.last_error is not None and "database is locked" in after.last_error
        assert after.last_error_at is not None and locked_at <= after.last_error_at <= released_at
        assert after.failures == 0
        assert "2612.00001" in parts.vector
        assert parts.keyword.count() == len(CORPUS) + 1
        ready = app.get("/readyz")
        assert ready.status_code == 200, ready.text
        loop = ready.json()["loops"]["index"]
        assert loop["ok"] and loop["backlog"] == 0 and "database is locked" in loop["lastError"]
    finally:
        emb.gate.set()
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
        worker.stop(timeout=10)
    assert not worker._thread.is_alive()


def test_scheduler_job_resumes_after_the_sqlite_file_was_locked(
    quick_sqlite: Engine, sqlite_path: Path
) -> None:
    engine = quick_sqlite
    runs: list[str] = []

    def ingest() -> object:  # a new paper each run: a write, which waits for the lock and fails
        with engine.begin() as conn:
            counts = upsert_records(conn, new_records(f"2612.3{len(runs):04d}"), utcnow())
        runs.append("ok")
        return counts

    board = StatusBoard(engine, utcnow, heartbeat=0)
    every = timedelta(seconds=0.05)
    job = Job("huggingface", lambda last, now: now if last is None else last + every, ingest)
    sched = Scheduler([job], utcnow, poll_seconds=0.05, board=board, backoff=Backoff(first=0.05, cap=0.4))
    sched.start()
    locker = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        first = wait_for(lambda: stored(engine, "huggingface"), "the first run")
        assert first.ok and first.detail is not None and first.detail["inserted"] == 1
        locker.execute("BEGIN EXCLUSIVE")
        locked_at = utcnow()
        wait_for(lambda: board.loop("huggingface").status.failures >= 3 or None, "failures while locked")
        assert "database is locked" in (board.loop("huggingface").status.last_error or "")
        assert job.failures >= 3 and sched._thread is not None and sched._thread.is_alive()
        locker.execute("ROLLBACK")
        released_at = utcnow()

        def resumed() -> LoopStatus | None:
            s = stored(engine, "huggingface")
            ok = s is not None and s.ok and s.last_success_at is not None and s.last_success_at > released_at
            return s if ok else None

        after = wait_for(resumed, "the job to succeed again")
        assert after.last_error_at is not None and locked_at <= after.last_error_at <= released_at
        assert "database is locked" in (after.last_error or "")
        assert job.failures == 0 and job.retry_at is None
    finally:
        if locker.in_transaction:
            locker.execute("ROLLBACK")
        locker.close()
        sched.stop()
    assert not sched._thread.is_alive()


def test_an_integrity_error_inside_a_job_does_not_end_the_thread(sqlite_engine: Engine) -> None:
    """Not a PaperboyError: the old loop died on it. The job inserts a paper; the second run inserts the
    same one again (a real IntegrityError from the primary key), later runs insert new ones."""
    ids = ["2612.10001", "2612.10001", "2612.10002", "2612.10003"]
    tried: list[str] = []

    def insert_next() -> object:
        arxiv_id = ids[min(len(tried), len(ids) - 1)]
        tried.append(arxiv_id)
        with sqlite_engine.begin() as conn:
            conn.execute(
                sa.insert(papers_table).values(
                    **paper_to_row(paper(arxiv_id, "T", "A")), changed_at=utcnow(), first_seen_at=utcnow()
                )
            )
        return {"inserted": arxiv_id}

    board = StatusBoard(sqlite_engine, utcnow, heartbeat=0)
    every = timedelta(seconds=0.02)
    job = Job("inserter", lambda last, now: now if last is None else last + every, insert_next)
    sched = Scheduler([job], utcnow, poll_seconds=0.02, board=board, backoff=Backoff(first=0.02, cap=0.1))
    sched.start()
    try:
        done = wait_for(
            lambda: (s := stored(sqlite_engine, "inserter")) and s.detail == {"inserted": ids[-1]} and s,
            "runs after the IntegrityError",
        )
        assert done.ok and done.last_error is not None and done.last_error.startswith("IntegrityError")
        assert sched._thread is not None and sched._thread.is_alive()
    finally:
        sched.stop()
    assert tried[:4] == ids


class FlakyEmbedder(HashEmbedder):
    """A model that fails twice (out of memory, a file gone) before it works."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[Exception] = [RuntimeError("onnxruntime: out of memory"), OSError(5, "I/O error")]

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if texts and self.errors:
            raise self.errors.pop(0)
        return super().embed_documents(texts, batch_size)


def test_index_worker_survives_errors_that_are_not_paperboy_errors(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with sqlite_engine.begin() as conn:
        upsert_records(conn, records(), utcnow())
    emb = FlakyEmbedder()
    worker, _board, parts = start_worker(sqlite_engine, tmp_path / "data", emb)
    try:
        status = wait_for(caught_up(sqlite_engine, len(CORPUS)), "indexing despite the model's failures")
        assert status.last_error is not None and status.last_error.startswith("OSError")
        assert parts.vector is not None and len(parts.vector) == len(CORPUS)
        assert worker._thread is not None and worker._thread.is_alive()
    finally:
        worker.stop(timeout=10)


# --- PostgreSQL: the server stops under the running loops and starts again --------------------------------


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A PostgreSQL server of this test's own (the session's shared one must not be stopped)."""
    pgserver = pytest.importorskip("pgserver")
    pgdata = Path(tempfile.mkdtemp(prefix="paperboy-pgr-"))
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="delete")
    except Exception as exc:  # pragma: no cover - depends on the machine
        shutil.rmtree(pgdata, ignore_errors=True)
        pytest.skip(f"PostgreSQL unavailable: pgserver could not start a server in {pgdata} ({exc})")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def _pg_ctl(server: Any, *args: str) -> None:
    from pgserver._commands import pg_ctl  # pgserver's bundled pg_ctl, run as the server's system user

    pg_ctl(list(args), pgdata=server.pgdata, user=server.system_user, timeout=60)


@pytest.mark.postgres
def test_loops_resume_after_the_postgresql_server_restarts(own_postgres: Any, tmp_path: Path) -> None:
    server = own_postgres
    url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        upsert_records(conn, records(), utcnow())
    emb = HashEmbedder()
    worker, board, parts = start_worker(engine, tmp_path / "data", emb)
    settings = Settings(data_dir=tmp_path / "data", secret_key="k" * 40)
    digests = build_digest_scheduler(engine, settings, utcnow, board=board)
    digests.jobs[0].next_run = lambda last, now: now if last is None else last + timedelta(seconds=0.05)
    digests.backoff = Backoff(first=0.05, cap=0.4)
    digests.poll_seconds = 0.05
    digests.start()
    app = TestClient(create_app(engine))
    try:
        wait_for(caught_up(engine, len(CORPUS)), "the first indexing")
        wait_for(lambda: stored(engine, "digests"), "the first digest round")
        assert app.get("/readyz").status_code == 200

        _pg_ctl(server, "-w", "-m", "fast", "stop")
        stopped_at = utcnow()
        for name in ("index", "digests"):
            wait_for(lambda n=name: board.loop(n).status.failures >= 2 or None, f"{name} failing while down")
        assert "OperationalError" in (board.loop("index").status.last_error or "")
        down = app.get("/readyz")
        assert down.status_code == 503 and down.json()["reason"].startswith("database: OperationalError")
        assert down.json()["loops"] == {}  # this app was not given the board: nothing in memory to show
        time.sleep(0.5)
        assert worker._thread is not None and worker._thread.is_alive()
        assert digests._thread is not None and digests._thread.is_alive()

        server.ensure_postgres_running()  # pg_ctl start again, same data and socket
        started_at = utcnow()
        with engine.begin() as conn:  # new papers after the restart: the worker indexes them
            upsert_records(conn, new_records("2612.20001", "2612.20002"), utcnow())
        inserted_at = utcnow()
        # A tick that ran between the restart and the insert reports "nothing waiting" after started_at:
        # the probe waits for the new vectors themselves, then for a report made after they were stored.
        probe = caught_up(engine, len(CORPUS) + 2, inserted_at)
        after = wait_for(
            lambda: probe() if all(i in parts.vector for i in ("2612.20001", "2612.20002")) else None,
            "the index worker to resume",
        )
        assert after.last_success_at is not None and after.last_success_at > started_at
        assert after.last_error_at is not None and stopped_at <= after.last_error_at <= started_at

        def digests_resumed() -> LoopStatus | None:
            s = stored(engine, "digests")
            return (
                s if s is not None and s.ok and s.last_success_at and s.last_success_at > started_at else None
            )

        d = wait_for(digests_resumed, "the digest loop to resume")
        assert d.backlog == 0 and d.last_error is not None
        ready = app.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ok", ready.text
    finally:
        digests.stop()
        worker.stop(timeout=10)
        engine.dispose()
