"""`paperboy web` on PostgreSQL: HTTP only, several processes on one port, a search replica that follows
the database (a paper stored by any process is found by keyword within seconds)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browserkit import free_port
from sqlalchemy.engine import Engine

from paperboy.models import Paper, Record
from paperboy.store.papers import upsert_records

pytestmark = pytest.mark.postgres


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - a loopback test server
        return r.status, r.read()


def _record(arxiv_id: str, title: str) -> Record:
    paper = Paper(
        arxiv_id=arxiv_id,
        version=1,
        title=title,
        abstract="An abstract about " + title.lower(),
        authors=("Ada Lovelace",),
        categories=("cs.CL",),
        published_at=datetime(2026, 12, 1, tzinfo=UTC),
        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    return Record(paper)


def test_web_processes_share_a_port_restart_and_follow_the_database(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(
        PAPERBOY_DATABASE_URL=postgres_engine.url.render_as_string(hide_password=False),
        PAPERBOY_SECRET_KEY="s" * 48,
        PAPERBOY_DATA_DIR=str(tmp_path / "data"),
        PAPERBOY_EMBEDDING_MODEL="/no/such/model",
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "paperboy",
                "web",
                "--workers",
                "2",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                try:
                    if _get(base + "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            found = re.search(r"pids (\d+), (\d+)", log_path.read_text())
            assert found, log_path.read_text()[-3000:]
            first, second = int(found.group(1)), int(found.group(2))

            # a paper stored by another process (an ingest, a worker) is found by keyword on this node
            with postgres_engine.begin() as conn:
                upsert_records(
                    conn,
                    [_record("2612.00001", "Zygomorphic tokenizers for quokka speech")],
                    datetime.now(UTC),
                )
            deadline = time.monotonic() + 60
            hits: list[str] = []
            while time.monotonic() < deadline and "2612.00001" not in hits:
                _, body = _get(base + "/api/papers/search?q=zygomorphic+quokka")
                hits = [p["paper"]["id"] if "paper" in p else p.get("id") for p in json.loads(body)]
                time.sleep(0.5)
            assert "2612.00001" in hits, "not found by keyword within 60 s"

            # a process that dies is replaced; the port keeps answering meanwhile
            os.kill(first, signal.SIGKILL)
            answered = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "starting another" not in log_path.read_text():
                answered += _get(base + "/healthz")[0] == 200
                time.sleep(0.1)
            assert "starting another" in log_path.read_text()
            assert answered > 0
            os.kill(second, 0)  # the other one lives on
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail("paperboy web did not stop on SIGTERM within 30 s")
    assert proc.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
