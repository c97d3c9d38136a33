"""The real `huggingface_hub` client against the real app served by uvicorn on 127.0.0.1.

This is the promise of the API: a bot written for huggingface.co works when pointed at a paperboy hub.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import uvicorn
from huggingface_hub import HfApi
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import PaperInfo
from smallhub import NOW, UNLISTED, A, B, C, D, E, F, load_small_hub
from sqlalchemy.engine import Engine

from paperboy.jobs import ingest_hf_file
from paperboy.web.app import create_app
from paperboy.web.deps import Site


def serve(engine: Engine, clock: datetime) -> Iterator[str]:
    """Run the app with uvicorn in a thread on a free port; yield its base URL; stop it afterwards."""
    app = create_app(engine, site=Site("paperboy", "http://127.0.0.1", 7), clock=lambda: clock)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws="none", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client reads HF_HUB_OFFLINE once, at import; a machine with it set would refuse every request.
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")


@pytest.fixture
def api(sqlite_engine: Engine, online: None) -> Iterator[HfApi]:
    load_small_hub(sqlite_engine)
    for url in serve(sqlite_engine, NOW):
        yield HfApi(endpoint=url, token=False)


def test_list_daily_papers_by_date(api: HfApi) -> None:
    papers = list(api.list_daily_papers(date="2026-08-10", token=False))
    assert [p.id for p in papers] == [F, E, D]  # most upvoted first, as huggingface.co answers a date
    f = papers[0]
    assert f.title == "Scaling Laws for Retrieval"
    assert [a.name for a in f.authors] == ["Claude Shannon", "Ada Lovelace"]
    assert all(a.hidden is False for a in f.authors)
    assert f.upvotes == 25
    assert f.comments == 2
    assert f.published_at == datetime(2026, 8, 9, 10, 0, tzinfo=UTC)  # arXiv date
    assert f.submitted_at == datetime(2026, 8, 10, 1, 0, tzinfo=UTC)  # put on the daily list
    assert f.submitted_by is not None
    assert (f.submitted_by.username, f.submitted_by.fullname) == ("akhaliq", "AK")
    assert f.summary == "How retrieval quality scales with corpus size."


def test_list_daily_papers_by_week_month_submitter_sort_and_page(api: HfApi) -> None:
    def listed(**kw: object) -> list[str]:
        return [p.id for p in api.list_daily_papers(token=False, **kw)]

    assert listed(week="2026-W32") == [A, C, B]
    assert listed(month="2026-08", submitter="akhaliq") == [A, F, C]
    assert listed(date="2026-08-10", sort="trending") == [F, D, E]
    assert listed(date="2026-08-10", sort="publishedAt") == [D, E, F]
    assert listed(limit=2, p=1) == [F, C]


def test_bad_input_raises_the_clients_http_error(api: HfApi) -> None:
    with pytest.raises(HfHubHTTPError) as info:
        list(api.list_daily_papers(week="2026-32", token=False))
    assert info.value.response.status_code == 400
    assert "week" in info.value.response.json()["error"]


def test_paper_info(api: HfApi) -> None:
    paper = api.paper_info(A)
    assert paper.id == A
    assert paper.title == "Sparse Attention Is All You Need Again"
    assert [a.name for a in paper.authors] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert paper.upvotes == 40
    assert paper.published_at == datetime(2026, 8, 2, 17, 59, tzinfo=UTC)
    assert paper.submitted_at == datetime(2026, 8, 3, 2, 10, tzinfo=UTC)
    assert paper.submitted_by is not None and paper.submitted_by.username == "akhaliq"
    assert paper.ai_summary == "Sparse attention scales to long documents."
    assert paper.ai_keywords == ["sparse attention", "long context"]
    assert paper.github_repo == "https://github.com/acme/sparse"
    assert paper.github_stars == 1200
    assert paper.project_page == "https://acme.example/sparse"
    assert paper.organization is not None and paper.organization.fullname == "Acme AI"
    old = api.paper_info("hep-th/9901001")
    assert old.id == E and old.title == "An Old-Style Identifier Paper"
    unlisted = api.paper_info(UNLISTED)
    assert unlisted.submitted_at is None and unlisted.submitted_by is None


def test_paper_info_unknown_is_a_404(api: HfApi) -> None:
    with pytest.raises(HfHubHTTPError) as info:
        api.paper_info("2608.99999")
    assert info.value.response.status_code == 404


def test_list_papers_searches(api: HfApi) -> None:
    found = list(api.list_papers(query="sparse attention", token=False))
    assert [p.id for p in found] == [UNLISTED, A]
    assert found[1].upvotes == 40 and found[1].title == "Sparse Attention Is All You Need Again"
    assert [p.id for p in api.list_papers(query=D, token=False)] == [D]
    assert [p.id for p in api.list_papers(query="agents", limit=1, token=False)] == [B]


# --- the real recorded response of 2026-08-12, served back ---


@pytest.mark.shared_data
def test_a_real_day_round_trips_through_the_client(
    sqlite_engine: Engine, shared_data: Path, online: None
) -> None:
    """Import huggingface.co's own response for 2026-08-12, serve it, read it with the client: same papers,
    same order, same fields as the client reads from the original."""
    fixture = shared_data / "hf_daily_papers" / "fixtures" / "daily_papers_2026-08-12.json"
    if not fixture.is_file():
        pytest.skip(f"{fixture} not found")
    original = [PaperInfo(**item) for item in json.loads(fixture.read_text(encoding="utf-8"))]
    now = datetime(2026, 8, 12, 18, 0, tzinfo=UTC)
    ingest_hf_file(sqlite_engine, fixture, lambda: now)
    for url in serve(sqlite_engine, now):
        api = HfApi(endpoint=url, token=False)
        served = list(api.list_daily_papers(date="2026-08-12", token=False))
        assert [p.id for p in served] == [p.id for p in original]  # HF's order: most upvoted first
        for ours, theirs in zip(served, original, strict=True):
            assert ours.title == theirs.title
            assert [a.name for a in ours.authors] == [a.name for a in theirs.authors]
            assert ours.upvotes == theirs.upvotes
            assert ours.comments == theirs.comments
            assert ours.published_at == theirs.published_at
            assert ours.submitted_by.fullname == theirs.submitted_by.fullname
            assert ours.discussion_id == theirs.discussion_id
            if theirs.organization is None:
                assert ours.organization is None
            else:  # upstream's slug and full name ("google", "Google"), not the full name twice
                assert ours.organization is not None
                assert (ours.organization.name, ours.organization.fullname) == (
                    theirs.organization.name,
                    theirs.organization.fullname,
                )
            assert ours.submitted_at is not None and ours.submitted_at.date() == date(2026, 8, 12)
        first = original[0]
        info = api.paper_info(first.id)
        raw = json.loads(fixture.read_text(encoding="utf-8"))[0]["paper"]
        assert (info.id, info.title, info.upvotes) == (first.id, first.title, first.upvotes)
        assert info.ai_summary == raw["ai_summary"] and info.ai_keywords == raw["ai_keywords"]
        assert info.github_repo == raw.get("githubRepo")
        assert next(p.id for p in api.list_papers(query=first.id, token=False)) == first.id


def test_organization_keeps_slug_and_full_name_and_discussion_id_is_kept(api: HfApi) -> None:
    paper = api.paper_info(A)
    assert paper.organization is not None
    assert (paper.organization.name, paper.organization.fullname) == ("acme", "Acme AI")  # as upstream
    assert paper.discussion_id == "7ad45e34df1061992960f67f"
    listed = next(p for p in api.list_daily_papers(date="2026-08-03", token=False) if p.id == A)
    assert listed.organization is not None and listed.organization.name == "acme"
    assert listed.discussion_id == "7ad45e34df1061992960f67f"


def test_read_paper_returns_the_paper_page_as_markdown(api: HfApi) -> None:
    text = api.read_paper(A)  # GET /papers/{id}.md, as on huggingface.co
    assert text.startswith("# Sparse Attention Is All You Need Again\n")
    assert "**Authors:** Ada Lovelace, Alan Turing, Grace Hopper" in text
    assert "## Abstract\n\nWe revisit sparse attention for long documents and show it scales.\n" in text
    assert "Sparse attention scales to long documents." in text  # the AI summary
    assert "<https://github.com/acme/sparse>" in text and f"<https://arxiv.org/pdf/{A}>" in text
    assert api.read_paper("hep-th/9901001").startswith("# An Old-Style Identifier Paper\n")
    with pytest.raises(HfHubHTTPError) as info:
        api.read_paper("2608.99999")
    assert info.value.response.status_code == 404


def test_the_hf_cli_reads_a_paper_from_the_hub(sqlite_engine: Engine, online: None, tmp_path: Path) -> None:
    """`hf papers read ID` — huggingface_hub's own command line, in its own process — against the hub."""
    import os
    import subprocess
    import sys

    load_small_hub(sqlite_engine)
    hf = Path(sys.executable).with_name("hf")
    if not hf.is_file():
        pytest.skip("huggingface_hub's `hf` command is not installed")
    for url in serve(sqlite_engine, NOW):
        env = {**os.environ, "HF_ENDPOINT": url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
        env["HF_HOME"] = str(tmp_path / "hf")
        env.pop("HF_TOKEN", None)
        done = subprocess.run(
            [str(hf), "papers", "read", A], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("# Sparse Attention Is All You Need Again")
        missing = subprocess.run(
            [str(hf), "papers", "read", "2608.99999"], env=env, capture_output=True, text=True, timeout=120
        )
        assert missing.returncode != 0 and "not found" in (missing.stderr + missing.stdout)
