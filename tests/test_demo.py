"""The bundled demo papers: labelled as demo, taken away by the first real ingest (unless members used them),
`paperboy demo remove` by hand, and dropped from the search indexes through the deletion tombstones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from searchkit import HashEmbedder
from smallhub import FIXTURE
from sqlalchemy.engine import Engine

from paperboy import jobs
from paperboy.config import Settings
from paperboy.db import transaction
from paperboy.db.schema import comments, featurings, paper_deletions, papers, users, votes
from paperboy.models import Paper, Record
from paperboy.search import indexer
from paperboy.serve import open_search
from paperboy.store import demo
from paperboy.store.deletions import delete_papers
from paperboy.store.papers import upsert_records

NOW = datetime(2026, 8, 10, 18, 0, tzinfo=UTC)
HNSW = "1603.09320"  # a demo paper
AQI = "2506.13901"  # another


def _ids(engine: Engine, source: str | None = None) -> set[str]:
    with engine.connect() as conn:
        if source is None:
            return set(conn.execute(sa.select(papers.c.arxiv_id)).scalars())
        stmt = sa.select(featurings.c.arxiv_id).where(featurings.c.source == source)
        return set(conn.execute(stmt).scalars())


def _member(engine: Engine, name: str) -> int:
    with transaction(engine) as conn:
        return int(
            conn.execute(
                sa.insert(users)
                .values(
                    username=name,
                    username_key=name,
                    email=f"{name}@example.org",
                    password_hash="x",
                    created_at=NOW,
                )
                .returning(users.c.id)
            ).scalar_one()
        )


def test_the_first_real_ingest_takes_the_demo_papers_away_but_keeps_what_members_used(engine: Engine) -> None:
    loaded = jobs.load_demo(engine, lambda: NOW)
    demo_ids = _ids(engine, "demo")
    assert len(demo_ids) == loaded.counts.inserted == 14
    voter, writer = _member(engine, "ada"), _member(engine, "bob")
    with transaction(engine) as conn:
        conn.execute(sa.insert(votes).values(user_id=voter, arxiv_id=HNSW, created_at=NOW))
        conn.execute(sa.insert(comments).values(arxiv_id=AQI, user_id=writer, body="nice", created_at=NOW))
        assert demo.has_demo(conn)

    # A real source: the Hugging Face file ingest of the small fixture.
    result = jobs.ingest_hf_file(engine, FIXTURE, lambda: NOW + timedelta(minutes=5))
    assert result.counts.inserted == 7
    assert result.demo_removed is not None
    assert sorted(result.demo_removed.kept) == sorted([HNSW, AQI])
    assert set(result.demo_removed.papers) == demo_ids - {HNSW, AQI}
    stored = _ids(engine)
    assert not (demo_ids - {HNSW, AQI}) & stored  # deleted
    assert {HNSW, AQI} <= stored and _ids(engine, "demo") == {HNSW, AQI}  # used by members: left as they are
    assert len(_ids(engine, "huggingface")) == 7
    with engine.connect() as conn:
        tombstones = set(conn.execute(sa.select(paper_deletions.c.arxiv_id)).scalars())
    assert tombstones == demo_ids - {HNSW, AQI}

    # Later real runs leave the two alone.
    with transaction(engine) as conn:
        upsert_records(conn, [Record(Paper(arxiv_id="2608.99999", title="New", abstract="A."))], NOW)
    again = jobs.ingest_hf_file(engine, FIXTURE, lambda: NOW + timedelta(minutes=10))
    assert again.demo_removed is None or again.demo_removed.papers == []
    assert _ids(engine, "demo") == {HNSW, AQI}


def test_a_demo_paper_a_real_source_also_brought_stays_without_its_demo_featuring(engine: Engine) -> None:
    jobs.load_demo(engine, lambda: NOW)
    with transaction(engine) as conn:  # the arXiv snapshot had HNSW too: its categories changed the row
        stored = conn.execute(sa.select(papers).where(papers.c.arxiv_id == HNSW)).mappings().one()
        real = Paper(
            arxiv_id=HNSW,
            title=stored["title"],
            abstract=stored["abstract"],
            authors=tuple(stored["authors"]),
            categories=("cs.DS", "cs.CV"),
            primary_category="cs.DS",
        )
        upsert_records(conn, [Record(real)], NOW + timedelta(minutes=1))
    with transaction(engine) as conn:
        removal = demo.remove_demo(conn, NOW + timedelta(minutes=2))
    assert HNSW not in removal.papers and len(removal.papers) == 13 and removal.featurings == 14
    assert _ids(engine) == {HNSW} and _ids(engine, "demo") == set()


def test_a_run_that_brought_nothing_and_the_demo_load_itself_remove_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    jobs.load_demo(engine, lambda: NOW)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    result = jobs.ingest_hf_file(engine, empty, lambda: NOW)
    assert result.demo_removed is None
    assert len(_ids(engine, "demo")) == 14


def test_deleted_papers_leave_both_search_indexes(engine: Engine, tmp_path: Path) -> None:
    jobs.load_demo(engine, lambda: NOW)
    parts = open_search(Settings(data_dir=tmp_path), engine, embedder=HashEmbedder(), sync=True)
    assert parts.keyword is not None and parts.vector is not None and parts.embedder is not None
    indexer.embed_pending(engine, parts.embedder, parts.vector, lambda: NOW)
    assert parts.keyword.holding([HNSW]) == [HNSW] and HNSW in parts.vector
    assert parts.keyword.count() == 14 and len(parts.vector) == 14

    with transaction(engine) as conn:
        removal = demo.remove_demo(conn, NOW)
    assert len(removal.papers) == 14
    indexer.sync_keyword(engine, parts.keyword)
    indexer.sync_vector(engine, parts.vector, parts.embedder.model)
    assert parts.keyword.count() == 0 and parts.keyword.holding([HNSW]) == []
    assert len(parts.vector) == 0 and HNSW not in parts.vector

    # Another process (a fresh open of the same folders) drops them too, and a paper brought back is
    # indexed again, never dropped.
    again = open_search(Settings(data_dir=tmp_path), engine, embedder=HashEmbedder(), sync=True)
    assert again.keyword is not None and again.keyword.count() == 0
    jobs.load_demo(engine, lambda: NOW + timedelta(days=1))
    indexer.sync_keyword(engine, parts.keyword)
    assert parts.keyword.holding([HNSW]) == [HNSW]


def test_sqlite_change_sequence_stays_above_a_deleted_paper(sqlite_engine: Engine) -> None:
    """A deleted row used to free its number: the next paper got a number the index had already synced."""
    engine = sqlite_engine
    jobs.load_demo(engine, lambda: NOW)
    with engine.connect() as conn:
        top_id, top = conn.execute(
            sa.select(papers.c.arxiv_id, papers.c.change_seq).order_by(papers.c.change_seq.desc()).limit(1)
        ).one()
    with transaction(engine) as conn:
        assert delete_papers(conn, [top_id], NOW) == [top_id]
    with transaction(engine) as conn:
        upsert_records(conn, [Record(Paper(arxiv_id="2608.99999", title="New", abstract="A."))], NOW)
        stmt = sa.select(papers.c.change_seq).where(papers.c.arxiv_id == "2608.99999")
        seq = conn.execute(stmt).scalar_one()
    assert seq > top


def test_paperboy_demo_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperboy.cli import main
    from paperboy.db import make_engine, upgrade

    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'paperboy.db'}"
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", url)
    engine = make_engine(url)
    upgrade(engine)
    runner = CliRunner()
    nothing = runner.invoke(main, ["demo", "remove"])
    assert nothing.exit_code == 0, nothing.output
    assert "no demo papers" in nothing.output
    jobs.load_demo(engine, lambda: NOW)
    done = runner.invoke(main, ["demo", "remove"])
    assert done.exit_code == 0, done.output
    assert "removed 14 demo papers" in done.output
    assert _ids(engine) == set()
    engine.dispose()


def test_demo_papers_are_labelled_on_pages_and_in_json_until_real_data_replaces_them(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from paperboy.web.app import create_app

    jobs.load_demo(engine, lambda: NOW)
    app = TestClient(create_app(engine, clock=lambda: NOW))
    today = app.get("/papers")
    assert today.status_code == 200
    assert "Demo papers." in today.text
    assert "14 of the papers here are from the bundled demo set" in today.text
    assert today.text.count('class="tag tag-demo"') == 14
    page = app.get(f"/papers/{HNSW}")
    assert "A demo paper." in page.text
    items = app.get("/api/daily_papers").json()
    assert len(items) == 14 and all(i["demo"] is True for i in items)

    jobs.ingest_hf_file(engine, FIXTURE, lambda: NOW + timedelta(minutes=5))
    after = app.get("/papers?date=2026-08-10")
    assert after.status_code == 200
    assert "Demo papers." not in after.text and "tag-demo" not in after.text
    assert app.get(f"/papers/{HNSW}").status_code == 404
    assert app.get(f"/papers?date={NOW.date().isoformat()}").text.count("tag-demo") == 0
    real = app.get("/api/daily_papers?date=2026-08-10").json()
    assert real and all(i["demo"] is False for i in real)
