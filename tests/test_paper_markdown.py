"""A paper page as Markdown: `GET /papers/{id}.md` and `Accept: text/markdown` on `/papers/{id}` (as
huggingface.co answers them; `hf papers read` is tested against a real server in test_hf_client.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import members
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.db import make_engine, upgrade
from paperboy.models import Paper, Record
from paperboy.store.papers import upsert_records
from paperboy.web.app import create_app
from paperboy.web.paper_markdown import wants_markdown

A = webhub.A


def test_the_md_address_and_the_accept_header_answer_the_same_markdown(sqlite_engine: Engine) -> None:
    c = TestClient(members.app(sqlite_engine), base_url="https://testserver")
    md = c.get(f"/papers/{A}.md")
    assert md.status_code == 200
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.text.startswith("# ") and "## Abstract" in md.text
    assert f"- Page: <https://papers.example.org/papers/{A}>" in md.text
    negotiated = c.get(f"/papers/{A}", headers={"Accept": "text/markdown"})
    assert negotiated.status_code == 200 and negotiated.text == md.text
    assert "accept" in negotiated.headers["vary"].lower()
    html = c.get(f"/papers/{A}", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.headers["content-type"].startswith("text/html") and "accept" in html.headers["vary"].lower()
    assert f'<link rel="alternate" type="text/markdown" href="/papers/{A}.md">' in html.text
    assert c.get(f"/papers/{A}v3.md", follow_redirects=False).headers["location"] == f"/papers/{A}.md"
    assert c.get("/papers/2501.99999.md").status_code == 404
    assert c.head(f"/papers/{A}.md").status_code == 200


def test_accept_negotiation() -> None:
    assert wants_markdown("text/markdown")
    assert wants_markdown("text/markdown, text/html;q=0.5")
    assert wants_markdown("text/markdown;q=0.9, text/plain")
    assert not wants_markdown(None)
    assert not wants_markdown("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    assert not wants_markdown("text/html, text/markdown;q=0.5")
    assert not wants_markdown("text/markdown;q=0")


def test_upstream_text_cannot_become_markup_or_links(sqlite_engine: Engine) -> None:
    hostile = Paper(
        arxiv_id="2503.07777",
        title="# Heading [click](javascript:alert(1)) <script>x</script>",
        abstract="Text with <img src=x onerror=alert(1)> and [a link](http://evil.example) and $x_1^2$.",
        authors=("Eve <b>", "[Mallory](http://evil.example)"),
        published_at=datetime(2025, 3, 5, tzinfo=UTC),
        github_repo="javascript:alert(2)",
        project_page="http://ok.example/a b",
    )
    with sqlite_engine.begin() as conn:
        upsert_records(conn, [Record(hostile)], webhub.NOW)
    c = TestClient(members.app(sqlite_engine, loaded=False), base_url="https://testserver")
    text = c.get("/papers/2503.07777.md").text
    assert text.startswith("# \\# Heading \\[click\\](javascript:alert(1)) &lt;script&gt;x&lt;/script&gt;\n")
    assert "<script>" not in text and "<img" not in text and "<b>" not in text
    assert "](http://evil.example)" not in text.replace("\\](http://evil.example)", "")
    assert "$x_1^2$" in text  # formulas stay readable
    assert "javascript:alert(2)" not in text and "ok.example" not in text


def test_the_page_cache_keeps_markdown_and_html_apart(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    upgrade(engine)
    webhub.load(engine)
    app = create_app(engine, site=webhub.SITE, clock=lambda: webhub.NOW, page_cache_seconds=3600)
    c = TestClient(app, base_url="https://testserver")
    for _ in range(2):
        assert c.get(f"/papers/{A}").headers["content-type"].startswith("text/html")
        md = c.get(f"/papers/{A}", headers={"Accept": "text/markdown"})
        assert md.headers["content-type"].startswith("text/markdown")
