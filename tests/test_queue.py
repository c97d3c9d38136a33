"""`paperboy worker` on PostgreSQL's job queue (procrastinate), with real worker processes.

- The roles refuse to start where they cannot work (SQLite, no shared secret key).
- Two workers run each scheduled ingest slot once: the slot is deferred once (a unique constraint), and
  taken by one of them.
- A worker killed with SIGKILL in the middle of a job loses nothing: another worker takes the job again
  once the dead one's heartbeat is stale, and what it stores is stored once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from upstream import Reply, Upstream

from paperboy.cli import main

pytestmark = pytest.mark.postgres

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "k" * 48


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _env(engine: Engine, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(
        PAPERBOY_DATABASE_URL=_url(engine),
        PAPERBOY_SECRET_KEY=KEY,
        PAPERBOY_DATA_DIR=str(tmp_path / "data"),
        PAPERBOY_EMBEDDING_MODEL="/no/such/model",  # no embedding: these tests are about the queue
        PAPERBOY_DIGESTS="false",
        PAPERBOY_HTTP_RETRIES="0",
    )
    env.update(extra)
    return env


@contextmanager
def workers(n: int, env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = []
    logs = []
    try:
        for i in range(n):
            log = open(tmp_path / f"worker{i}.log", "ab")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "paperboy", "worker"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


def _logs(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(tmp_path.glob("worker*.log")))


def _wait(predicate, timeout: float, tmp_path: Path, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}\n{_logs(tmp_path)}")


def _jobs(engine: Engine, task: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, status::text AS status, attempts, args, worker_id FROM procrastinate_jobs"
                " WHERE task_name = :t ORDER BY id"
            ),
            {"t": task},
        ).mappings()
        return [dict(r) for r in rows]


def test_web_and_worker_refuse_sqlite_and_a_missing_secret_key(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = {"PAPERBOY_DATA_DIR": str(tmp_path), "PAPERBOY_SECRET_KEY": KEY}
    for role in ("web", "worker"):
        sqlite = runner.invoke(
            main, [role], env={**base, "PAPERBOY_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
        )
        assert sqlite.exit_code == 1
        assert "PostgreSQL" in sqlite.output and "paperboy serve" in sqlite.output
        keyless = runner.invoke(
            main,
            [role],
            env={"PAPERBOY_DATA_DIR": str(tmp_path), "PAPERBOY_DATABASE_URL": _url(postgres_engine)},
        )
        assert keyless.exit_code == 1
        assert "PAPERBOY_SECRET_KEY" in keyless.output and "every" in keyless.output


def test_jobs_command_says_sqlite_has_no_queue(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["jobs"], env={"PAPERBOY_DATA_DIR": str(tmp_path), "PAPERBOY_DATABASE_URL": ""}
    )
    assert result.exit_code == 1
    assert "no job queue" in result.output


def test_two_workers_run_each_ingest_slot_once(postgres_engine: Engine, tmp_path: Path) -> None:
    small = json.loads((FIXTURES / "hf_daily_papers_small.json").read_text())
    with Upstream() as upstream:
        upstream.route("/api/daily_papers", None, Reply.json(small[:4]))
        env = _env(
            postgres_engine,
            tmp_path,
            PAPERBOY_HF_ENDPOINT=upstream.url,
            PAPERBOY_HF_SYNC_CRON="* * * * * */4",  # a slot every 4 seconds
        )
        with workers(2, env, tmp_path):
            _wait(
                lambda: (
                    sum(j["status"] == "succeeded" for j in _jobs(postgres_engine, "ingest_huggingface")) >= 4
                ),
                60,
                tmp_path,
                "four Hugging Face slots to run",
            )
        ingests = _jobs(postgres_engine, "ingest_huggingface")
        slots = [j["args"]["timestamp"] for j in ingests]  # type: ignore[index]
        assert len(slots) == len(set(slots)), f"a slot was queued twice: {sorted(slots)}"
        ran = [j for j in ingests if j["status"] == "succeeded"]
        with postgres_engine.connect() as conn:
            runs = conn.execute(
                sa.text("SELECT count(*) FROM ingest_runs WHERE source LIKE 'huggingface%'")
            ).scalar()
            papers = conn.execute(sa.text("SELECT count(*) FROM papers")).scalar()
        # each succeeded job is one ingest run (a job still running at shutdown may add one more)
        assert len(ran) <= runs <= len(ran) + 1
        assert papers == 4
        # every slot asked Hugging Face once: the first for the last week, each later one for its cursor day
        asked = upstream.requests_to("/api/daily_papers")
        first_days = len({r.query["date"] for r in asked})
        assert len(asked) <= first_days + 2 * len(ran)


def test_a_job_of_a_killed_worker_is_taken_again_and_done_once(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    import procrastinate

    from paperboy.tasks import conninfo

    small = json.loads((FIXTURES / "hf_daily_papers_small.json").read_text())
    with Upstream() as upstream:
        # The first request hangs (the worker is killed while it waits); later ones answer at once.
        upstream.route("/api/daily_papers", None, Reply.json(small[:3], delay=60), Reply.json(small[:3]))
        env = _env(
            postgres_engine,
            tmp_path,
            PAPERBOY_HF_ENDPOINT=upstream.url,
            PAPERBOY_HF_SYNC_CRON="0 0 1 1 *",  # no slot during the test: the job is deferred by hand
            PAPERBOY_HTTP_TIMEOUT="120",
        )
        app = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo(_url(postgres_engine)))
        )
        with workers(1, env, tmp_path) as (first,):
            # the worker has migrated and registered itself before the job is deferred
            _wait(lambda: _live_workers(postgres_engine) == 1, 60, tmp_path, "the first worker to start")
            with app.open():
                app.configure_task("ingest_huggingface", lock="ingest:huggingface").defer(timestamp=1)
            _wait(
                lambda: len(upstream.requests_to("/api/daily_papers")) >= 1, 30, tmp_path, "the job to start"
            )
            assert _jobs(postgres_engine, "ingest_huggingface")[0]["status"] == "doing"
            first.send_signal(signal.SIGKILL)
            first.wait()
        with workers(1, env, tmp_path):
            _wait(
                lambda: _jobs(postgres_engine, "ingest_huggingface")[0]["status"] == "succeeded",
                90,
                tmp_path,
                "the second worker to take the job again",
            )
        days = len({r.query["date"] for r in upstream.requests_to("/api/daily_papers")})
    (job,) = _jobs(postgres_engine, "ingest_huggingface")
    assert job["attempts"] == 2  # the killed attempt and the one that finished
    with postgres_engine.connect() as conn:
        papers = conn.execute(sa.text("SELECT count(*) FROM papers")).scalar()
        featured = conn.execute(sa.text("SELECT count(*) FROM featurings")).scalar()
    assert papers == 3
    assert featured == 3 * days  # once a day each, though the job ran twice


def _live_workers(engine: Engine) -> int:
    from paperboy.store.queue import live_workers

    with engine.connect() as conn:
        return live_workers(conn, 30)


def _succeeded(engine: Engine, task: str) -> int:
    return sum(j["status"] == "succeeded" for j in _jobs(engine, task))


def test_admin_page_and_jobs_command_show_the_queue(postgres_engine: Engine, tmp_path: Path) -> None:
    import members
    import procrastinate

    from paperboy.tasks import conninfo

    connector = procrastinate.SyncPsycopgConnector(conninfo=conninfo(_url(postgres_engine)))
    app = procrastinate.App(connector=connector)
    with app.open():
        app.configure_task("ingest_arxiv", lock="arxiv").defer(timestamp=7, category="cs.CL")
    with members.client(postgres_engine) as admin:
        members.signup(admin, "root-admin")
        page = admin.get("/admin")
        data = admin.get("/api/admin").json()["queue"]
    assert page.status_code == 200
    assert 'id="jobs"' in page.text and "ingest_arxiv" in page.text and "cs.CL" in page.text
    assert data["counts"]["todo"] == 1 and data["counts"]["failed"] == 0
    (job,) = data["jobs"]
    assert job["task"] == "ingest_arxiv" and job["status"] == "todo" and job["args"]["category"] == "cs.CL"

    listed = CliRunner().invoke(
        main,
        ["jobs", "--json"],
        env={"PAPERBOY_DATABASE_URL": _url(postgres_engine), "PAPERBOY_DATA_DIR": str(tmp_path)},
    )
    assert listed.exit_code == 0, listed.output
    out = json.loads(listed.output)
    assert out["counts"]["todo"] == 1 and out["jobs"][0]["task"] == "ingest_arxiv"


def test_index_upkeep_publishes_a_snapshot_only_when_the_indexes_moved(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from paperboy.config import Settings
    from paperboy.models import Record
    from paperboy.scheduler import StatusBoard
    from paperboy.search.snapshot import restore_latest
    from paperboy.serve import open_search
    from paperboy.sources.snapshot import parse_line
    from paperboy.store.papers import upsert_records
    from paperboy.tasks import Collaborators, upkeep_index

    now = lambda: datetime(2026, 12, 6, tzinfo=UTC)  # noqa: E731
    lines = (FIXTURES / "arxiv_listing_small.jsonl").read_text().splitlines()
    records = [Record(parse_line(json.loads(line), "fixture")) for line in lines]
    with postgres_engine.begin() as conn:
        upsert_records(conn, records[:20], now())
    settings = Settings(data_dir=tmp_path / "worker", database_url=_url(postgres_engine), secret_key=KEY)
    c = Collaborators(postgres_engine, settings, now, StatusBoard(postgres_engine, now), lambda: None)
    first = upkeep_index(c)
    assert first["published"] is True
    assert upkeep_index(c) == {
        "published": False,
        "snapshot": first["snapshot"],
        "why": "nothing changed since it",
    }
    with postgres_engine.begin() as conn:
        upsert_records(conn, records[20:30], now())
    again = upkeep_index(c)
    assert again["published"] is True and again["keyword_seq"] > first["keyword_seq"]

    # a new web node starts from it: its replica holds the 30 papers before any sync
    node = Settings(data_dir=tmp_path / "web", database_url=_url(postgres_engine), secret_key=KEY)
    assert restore_latest(postgres_engine, tmp_path / "web" / "index", None)
    parts = open_search(node, postgres_engine, sync=False)
    assert parts.keyword.count() == 30
    parts.keyword.close()
