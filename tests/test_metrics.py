"""GET /metrics on the wire: Prometheus text that prometheus_client's own parser reads, request counters
that move by route template (never the raw path), the database figures (a queued and a failed job on
PostgreSQL's queue, the embedding backlog, the outbox, a failing background loop) cached against a scrape
storm, the bearer-token gate, and `paperboy web --workers 2` adding up both processes' counters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import members
import pytest
import sqlalchemy as sa
import webhub
from browserkit import free_port, serving
from livehub import ROOMY, Live, live
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from paperboy.db import transaction
from paperboy.store import background, outbox
from paperboy.store.background import LoopStatus
from paperboy.web.app import create_app

TOKEN = "metrics-" + "t" * 40


def scrape(hub: Live, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}, read by prometheus_client's parser."""
    r = hub.request("GET", "/metrics", headers=headers)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert r.headers["cache-control"] == "no-store"
    return samples(r.text)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def requests_of(found: dict, method: str, route: str, status: str) -> float:  # type: ignore[type-arg]
    key = ("paperboy_http_requests_total", (("method", method), ("route", route), ("status", status)))
    return float(found.get(key, 0.0))


def test_counters_move_by_route_template_and_the_text_parses(sqlite_engine: Engine) -> None:
    """Two paper pages, a HEAD, a page served from the page cache, a path nothing serves and a refused
    body: each counted under its template (`/papers/{arxiv_id:path}`, `/papers`, `unmatched`), the
    latency histogram grows with them, and no label holds a raw path."""
    with live(sqlite_engine, page_cache_seconds=30) as hub:
        before = scrape(hub)
        assert hub.request("GET", f"/papers/{webhub.A}").status_code == 200
        assert hub.request("GET", f"/papers/{webhub.B}").status_code == 200
        assert hub.request("HEAD", "/papers").status_code == 200
        for _ in range(2):  # the second is answered by the page cache, before any routing
            assert hub.request("GET", "/papers/trending").status_code == 200
        assert hub.request("GET", "/no/such/page/2503.99999").status_code == 404
        big = hub.request("POST", f"/api/papers/{webhub.A}/comments", content=b"x" * (300 * 1024))
        assert big.status_code == 413
        after = scrape(hub)
        text = hub.request("GET", "/metrics").text

    def moved(method: str, route: str, status: str) -> float:
        return requests_of(after, method, route, status) - requests_of(before, method, route, status)

    assert moved("GET", "/papers/{arxiv_id:path}", "200") == 2
    assert moved("HEAD", "/papers", "200") == 1
    assert moved("GET", "/papers/trending", "200") == 2
    assert moved("GET", "unmatched", "404") == 1
    assert moved("POST", "/api/papers/{arxiv_id:path}/comments", "413") == 1
    assert requests_of(after, "GET", "/metrics", "200") >= 1
    hist = (
        "paperboy_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/papers/{arxiv_id:path}")),
    )
    assert after[hist] - before.get(hist, 0.0) == 2
    inf = (
        "paperboy_http_request_duration_seconds_bucket",
        (("le", "+Inf"), ("method", "GET"), ("route", "/papers/{arxiv_id:path}")),
    )
    assert after[inf] == after[hist]
    for raw in (webhub.A, webhub.B, "/no/such", "2503.99999"):
        assert raw not in text, f"{raw} in a label"
    routes = {dict(labels).get("route") for (name, labels) in after if name == "paperboy_http_requests_total"}
    assert all(r == "unmatched" or r.startswith("/") for r in routes), routes
    assert after[("paperboy_database_up", ())] == 1


def test_the_token_gates_metrics_and_nothing_else_opens_them(sqlite_engine: Engine) -> None:
    """With a metrics token, /metrics answers 401 (WWW-Authenticate: Bearer) to no header, a wrong token, a
    member's own API token and a signed-in session, and 200 to the token; other routes are unaffected."""
    with live(sqlite_engine, metrics_token=TOKEN) as hub:
        session = hub.signup("ada")
        member_token = hub.make_token(session)
        for headers, cookie in (
            ({}, None),
            ({"authorization": "Bearer wrong"}, None),
            ({"authorization": f"Bearer {member_token}"}, None),
            ({"authorization": f"Basic {TOKEN}"}, None),
            ({}, session),
        ):
            r = hub.request("GET", "/metrics", headers=headers, session=cookie)
            assert r.status_code == 401, (headers, r.status_code)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert "paperboy_http" not in r.text
        assert hub.request("GET", "/healthz").status_code == 200
        found = scrape(hub, authorization=f"Bearer {TOKEN}")
        assert requests_of(found, "GET", "/metrics", "401") == 5


def test_database_figures_on_sqlite_are_cached_against_a_scrape_storm(sqlite_engine: Engine) -> None:
    """On SQLite: no queue figures; the embedding backlog counts the papers without a vector of the
    search's model; a mail due and a failing loop show; 24 concurrent scrapes cost one round of queries,
    and a change shows once the 5 s are over."""
    now = webhub.NOW
    webhub.load(sqlite_engine)
    app = create_app(
        sqlite_engine, site=webhub.SITE, clock=lambda: now, hasher=members.FAST_HASHER, rate_limits=ROOMY
    )
    # what /metrics reads of the search: its embedder's model (a real one takes seconds to load)
    app.state.searcher = SimpleNamespace(embedder=SimpleNamespace(model="test-model"))
    with serving(app, free_port()) as url:
        hub = Live(url)
        app_state = app.state
        with transaction(sqlite_engine) as conn:
            outbox.enqueue(
                conn,
                kind="confirm",
                to_addr="reader@example.org",
                subject="s",
                text_body="t",
                html_body=None,
                headers={},
                message_id="<m1@example.org>",
                now=now,
            )
            background.record(
                conn, LoopStatus("arxiv:cs.CL", failures=3, last_error="SourceError: 503", updated_at=now)
            )
        with sqlite_engine.connect() as conn:
            papers = conn.execute(sa.text("SELECT count(*) FROM papers")).scalar_one()
        results: list[dict] = []  # type: ignore[type-arg]
        threads = [threading.Thread(target=lambda: results.append(scrape(hub))) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 24
        assert app_state.metrics.figures.rounds == 1
        found = results[0]
        assert found[("paperboy_embedding_backlog", ())] == papers > 0
        assert found[("paperboy_outbox_due", ())] == 1
        assert found[("paperboy_background_loop_failures", (("loop", "arxiv:cs.CL"),))] == 3
        assert not [k for k in found if k[0] == "paperboy_queue_jobs"]  # no queue on SQLite
        with transaction(sqlite_engine) as conn:
            background.record(
                conn, LoopStatus("arxiv:cs.CL", failures=0, updated_at=now, last_success_at=now)
            )
        assert scrape(hub)[("paperboy_background_loop_failures", (("loop", "arxiv:cs.CL"),))] == 3  # cached
        app_state.metrics.figures.seconds = 0.0  # the period over
        later = scrape(hub)
        assert later[("paperboy_background_loop_failures", (("loop", "arxiv:cs.CL"),))] == 0
        assert later[
            ("paperboy_background_loop_last_success_timestamp_seconds", (("loop", "arxiv:cs.CL"),))
        ] == (now.timestamp())


@pytest.mark.postgres
def test_queue_figures_on_postgres_show_a_queued_and_a_failed_job(postgres_engine: Engine) -> None:
    with postgres_engine.begin() as conn:
        for task, status in (("paperboy.ingest_slot", "todo"), ("paperboy.embed_batch", "failed")):
            job = conn.execute(
                sa.text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, args)"
                    " VALUES ('default', :t, '{}') RETURNING id"
                ),
                {"t": task},
            ).scalar_one()
            if status == "failed":
                conn.execute(
                    sa.text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = :id"), {"id": job}
                )
                conn.execute(
                    sa.text("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :id"), {"id": job}
                )
    with live(postgres_engine) as hub:
        found = scrape(hub)
    assert found[("paperboy_queue_jobs", (("status", "todo"),))] == 1
    assert found[("paperboy_queue_jobs", (("status", "failed"),))] == 1
    assert found[("paperboy_queue_jobs", (("status", "doing"),))] == 0
    assert found[("paperboy_queue_failed_jobs", (("task", "paperboy.embed_batch"),))] == 1
    assert ("paperboy_queue_failed_jobs", (("task", "paperboy.ingest_slot"),)) not in found
    assert found[("paperboy_database_up", ())] == 1


@contextmanager
def web(engine: Engine, tmp_path: Path, metrics_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(
        PAPERBOY_DATABASE_URL=engine.url.render_as_string(hide_password=False),
        PAPERBOY_SECRET_KEY="s" * 48,
        PAPERBOY_DATA_DIR=str(tmp_path / "data"),
        PAPERBOY_EMBEDDING_MODEL="/no/such/model",
        PAPERBOY_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp_path / "web.log"
    cmd = [
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
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                try:
                    if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.postgres
def test_web_with_two_processes_adds_up_both_processes_counters(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    """`paperboy web --workers 2` with PROMETHEUS_MULTIPROC_DIR: requests spread over both processes (each
    writes its own counter file), and every scrape, whichever process answers it, counts all of them."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    auth = {"authorization": f"Bearer {TOKEN}"}
    with web(postgres_engine, tmp_path, metrics_dir) as base:
        sent = 0
        deadline = time.monotonic() + 60
        while True:
            with httpx.Client(base_url=base, headers={"connection": "close"}, timeout=10) as client:
                for _ in range(20):
                    assert client.get("/healthz").status_code == 200
                    sent += 1
            writers = {p.name.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
            if len(writers) >= 2 or time.monotonic() > deadline:
                break
        assert len(writers) >= 2, f"only {writers} answered {sent} requests"
        for _ in range(6):
            r = httpx.get(base + "/metrics", headers=auth, timeout=10)
            assert r.status_code == 200
            assert requests_of(samples(r.text), "GET", "/healthz", "200") == sent
        assert httpx.get(base + "/metrics", timeout=10).status_code == 401
