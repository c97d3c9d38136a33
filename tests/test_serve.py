"""`paperboy serve`'s first start and its schedule, without the web server itself."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from upstream import Reply, Upstream

from paperboy.config import Settings
from paperboy.serve import build_scheduler, first_start
from paperboy.sources.http import PoliteClient
from paperboy.store import ingest_state
from paperboy.store import papers as store

FIXTURES = Path(__file__).resolve().parent / "fixtures"

NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket is closed


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def test_offline_first_start_loads_the_demo_set(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path, hf_endpoint=f"http://127.0.0.1:{_closed_port()}")
    messages: list[str] = []
    with PoliteClient(retries=0, timeout=2) as client:
        assert first_start(sqlite_engine, settings, lambda: NOW, client, messages.append) == "demo"
    assert any("could not reach Hugging Face" in m for m in messages)
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) >= 10
        runs = ingest_state.recent_runs(conn)
    # The failed attempt is logged like any run, then the demo load.
    assert [(r.source, r.status) for r in runs] == [("demo", "ok"), ("huggingface", "failed")]


def test_no_sync_loads_the_demo_without_touching_the_network(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path, sync=False, hf_endpoint=f"http://127.0.0.1:{_closed_port()}")
    with PoliteClient(retries=0, timeout=2) as client:
        assert first_start(sqlite_engine, settings, lambda: NOW, client, lambda m: None) == "demo"
        assert client.requests == 0


def test_existing_database_is_left_alone(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path, sync=False)
    with PoliteClient(retries=0) as client:
        first_start(sqlite_engine, settings, lambda: NOW, client, lambda m: None)
        assert first_start(sqlite_engine, settings, lambda: NOW, client, lambda m: None) == "existing"


def test_schedule_has_a_job_per_source(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path, arxiv_categories=["cs.CL", "cs.LG"])
    names = [j.name for j in build_scheduler(sqlite_engine, settings, lambda: NOW).jobs]
    assert names == ["huggingface", "arxiv:cs.CL", "arxiv:cs.LG"]
    settings = _settings(tmp_path, hf_sync=False)
    assert build_scheduler(sqlite_engine, settings, lambda: NOW).jobs == []


def test_online_first_start_imports_recent_hugging_face_days(
    sqlite_engine: Engine, tmp_path: Path, upstream: Upstream
) -> None:
    small = json.loads((FIXTURES / "hf_daily_papers_small.json").read_text())
    upstream.route("/api/daily_papers", None, Reply.json([]))  # other days: nothing listed
    upstream.route("/api/daily_papers", {"date": "2026-08-10"}, Reply.json(small[3:6]))
    settings = _settings(tmp_path, hf_endpoint=upstream.url, hf_initial_days=3)
    now = datetime(2026, 8, 10, 18, tzinfo=UTC)
    with PoliteClient(retries=0, timeout=5) as client:
        assert first_start(sqlite_engine, settings, lambda: now, client, lambda m: None) == "huggingface"
    asked = sorted({r.query["date"] for r in upstream.requests if r.path == "/api/daily_papers"})
    assert asked == ["2026-08-10"]  # 08-08 and 08-09 are a weekend: not asked
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 3
        assert store.latest_featured_day(conn) == date(2026, 8, 10)
