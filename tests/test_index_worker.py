"""serve's IndexWorker and the search parts it runs on, over a real SQLite file and real index files."""

from __future__ import annotations

from pathlib import Path

from searchkit import CORPUS, NOW, HashEmbedder, records
from sqlalchemy.engine import Engine

from paperboy.config import Settings
from paperboy.search.query import SearchQuery
from paperboy.serve import IndexWorker, open_search
from paperboy.store.papers import upsert_records


def test_worker_indexes_new_papers_keyword_first_then_vectors(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    emb = HashEmbedder()
    parts = open_search(settings, sqlite_engine, embedder=emb, sync=False)  # opens fast; the worker syncs
    assert parts.keyword.count() == 0
    with sqlite_engine.begin() as conn:
        upsert_records(conn, records(), NOW)
    worker = IndexWorker(sqlite_engine, parts, lambda: NOW, batch=2, batches_per_tick=1)
    assert worker.tick() == len(CORPUS) + 2  # all papers into the keyword index, 2 embedded
    assert parts.keyword.count() == len(CORPUS)
    assert parts.vector is not None and len(parts.vector) == 2
    while worker.tick():
        pass
    assert len(parts.vector) == len(CORPUS)
    with sqlite_engine.connect() as conn:
        assert parts.searcher().search(conn, SearchQuery("sparse attention")).modes == ("keyword", "vector")
    worker.stop()
    # A restart finds both indexes on disk, current: nothing to do.
    again = open_search(settings, sqlite_engine, embedder=emb, sync=False)
    assert again.keyword.count() == len(CORPUS)
    assert again.vector is not None and len(again.vector) == len(CORPUS)
    calls = emb.calls
    assert IndexWorker(sqlite_engine, again, lambda: NOW).tick() == 0
    assert emb.calls == calls
    again.keyword.close()
