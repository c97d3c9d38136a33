"""The hybrid searcher and the indexer that keeps both indexes current, on SQLite and PostgreSQL.

Real tantivy and HNSW indexes in tmp_path, a real database; the embedding model is the small HashEmbedder
(index maintenance does not depend on what the vectors mean).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
from searchkit import CORPUS, NOW, HashEmbedder, records
from sqlalchemy.engine import Engine

from paperboy.errors import InvalidInput, NotFound
from paperboy.models import Record
from paperboy.search import indexer
from paperboy.search.hybrid import Searcher
from paperboy.search.query import SearchQuery
from paperboy.store import embeddings as embedding_store
from paperboy.store.papers import upsert_records


def _load(engine: Engine, recs: list[Record] | None = None) -> None:
    with engine.begin() as conn:
        upsert_records(conn, recs or records(), NOW)


@pytest.fixture
def built(engine: Engine, tmp_path: Path) -> tuple[Engine, Searcher, HashEmbedder, Path]:
    _load(engine)
    emb = HashEmbedder()
    keyword = indexer.open_keyword_index(tmp_path / "keyword", engine)
    vector = indexer.open_vector_index(tmp_path / "vectors.hnsw", engine, emb.model, emb.dim)
    assert indexer.embed_pending(engine, emb, vector, lambda: NOW) == len(CORPUS)
    return engine, Searcher(keyword, vector, emb), emb, tmp_path


def ids(engine: Engine, searcher: Searcher, q: SearchQuery) -> list[str]:
    with engine.connect() as conn:
        return [h.item.paper.arxiv_id for h in searcher.search(conn, q).hits]


def test_keyword_and_vector_both_answer(built: tuple[Engine, Searcher, HashEmbedder, Path]) -> None:
    engine, searcher, _, _ = built
    with engine.connect() as conn:
        res = searcher.search(conn, SearchQuery("kv cache eviction"))
    assert res.modes == ("keyword", "vector")
    assert res.hits[0].item.paper.arxiv_id == "2603.00001"
    assert res.hits[0].keyword_rank == 1 and res.hits[0].vector_rank == 1
    assert "eviction" in res.terms


def test_arxiv_id_or_url_goes_straight_to_the_paper(
    built: tuple[Engine, Searcher, HashEmbedder, Path],
) -> None:
    engine, searcher, _, _ = built
    for text in ("2603.00003", "2603.00003v2", "https://arxiv.org/abs/2603.00003", "arXiv:2603.00003"):
        assert ids(engine, searcher, SearchQuery(text))[0] == "2603.00003"
    assert ids(engine, searcher, SearchQuery("2699.99999")) == []


def test_author_name_finds_their_papers(built: tuple[Engine, Searcher, HashEmbedder, Path]) -> None:
    engine, searcher, _, _ = built
    assert set(ids(engine, searcher, SearchQuery("Yann LeCun"))[:2]) == {"2603.00002", "2603.00005"}


def test_filters_apply_to_both_modes(built: tuple[Engine, Searcher, HashEmbedder, Path]) -> None:
    engine, searcher, _, _ = built
    april = SearchQuery("language model attention", start=date(2026, 4, 1), end=date(2026, 4, 30))
    assert ids(engine, searcher, april) and set(ids(engine, searcher, april)) <= {
        "2603.00004",
        "2603.00005",
        "2603.00006",
    }
    crypto = SearchQuery("language model", categories=("cs.CR",))
    assert ids(engine, searcher, crypto) == ["2603.00004"]
    by_archive = SearchQuery("graph search", categories=("cs",))
    assert "2603.00003" in ids(engine, searcher, by_archive)
    # an id query is filtered too
    assert ids(engine, searcher, SearchQuery("2603.00003", categories=("cs.CR",))) == []


def test_pages_do_not_overlap(built: tuple[Engine, Searcher, HashEmbedder, Path]) -> None:
    engine, searcher, _, _ = built
    first = ids(engine, searcher, SearchQuery("model attention search language", limit=2))
    second = ids(engine, searcher, SearchQuery("model attention search language", limit=2, page=1))
    assert len(first) == 2 and second and not set(first) & set(second)


@pytest.mark.parametrize(
    "text",
    ['"', "*", "NEAR(a b)", "title:foo", "((", "-", "AND OR NOT", "a" * 10_000, "注意力机制", "русский язык"],
)
def test_odd_queries_never_raise(built: tuple[Engine, Searcher, HashEmbedder, Path], text: str) -> None:
    engine, searcher, _, _ = built
    with engine.connect() as conn:
        res = searcher.search(conn, SearchQuery(text))
    assert isinstance(res.hits, list)


@pytest.mark.parametrize("text", ["", "   ", "?!...", "—"])
def test_empty_and_punctuation_queries_match_nothing(
    built: tuple[Engine, Searcher, HashEmbedder, Path], text: str
) -> None:
    engine, searcher, _, _ = built
    with engine.connect() as conn:
        assert searcher.search(conn, SearchQuery(text)).hits == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"page": -1}, "page"),
        ({"page": 10_000}, "page"),
        ({"start": date(2026, 5, 1), "end": date(2026, 4, 1)}, "ends before it starts"),
        ({"categories": ("cs.CL; DROP TABLE papers",)}, "category"),
    ],
)
def test_bad_queries_are_invalid_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SearchQuery("x", **kwargs)  # type: ignore[arg-type]


def test_similar_papers(built: tuple[Engine, Searcher, HashEmbedder, Path]) -> None:
    engine, searcher, _, _ = built
    with engine.connect() as conn:
        near = searcher.similar(conn, "2603.00001", k=3)
        assert [h.item.paper.arxiv_id for h in near] and "2603.00001" not in [
            h.item.paper.arxiv_id for h in near
        ]
        assert len(near) == 3
        with pytest.raises(NotFound):
            searcher.similar(conn, "2699.99999")


def test_embedding_is_incremental_and_skips_unchanged_text(
    built: tuple[Engine, Searcher, HashEmbedder, Path],
) -> None:
    engine, searcher, emb, _ = built
    assert searcher.vector is not None
    assert indexer.embed_pending(engine, emb, searcher.vector, lambda: NOW) == 0  # nothing pending
    before = emb.embedded
    later = NOW.replace(hour=13)
    changed_text = dataclasses.replace(CORPUS[0], version=2, title="KV cache eviction, revisited")
    more_stars = dataclasses.replace(CORPUS[1], github_stars=500)
    with engine.begin() as conn:
        upsert_records(conn, [Record(changed_text), Record(more_stars)], later)
    assert indexer.embed_pending(engine, emb, searcher.vector, lambda: later) == 2
    assert emb.embedded - before == 1  # only the paper whose text changed was embedded again
    with engine.connect() as conn:
        assert embedding_store.count_pending(conn, emb.model) == 0
    assert indexer.sync_keyword(engine, searcher.keyword) == 2  # type: ignore[arg-type]
    assert ids(engine, searcher, SearchQuery("revisited"))[0] == "2603.00001"


def test_vector_index_rebuilds_from_stored_vectors_when_deleted_or_corrupt(
    built: tuple[Engine, Searcher, HashEmbedder, Path],
) -> None:
    engine, searcher, emb, root = built
    assert searcher.vector is not None
    searcher.vector.save()
    for damage in ("delete", "garbage"):
        files = list(root.glob("vectors.hnsw*"))
        assert files
        for f in files:
            if damage == "delete":
                f.unlink()
            else:
                f.write_bytes(b"not an index")
        calls = emb.calls
        vector = indexer.open_vector_index(root / "vectors.hnsw", engine, emb.model, emb.dim)
        assert len(vector) == len(CORPUS)
        assert emb.calls == calls  # rebuilt from the database's vectors, not by embedding again
        vector.save()


def test_keyword_index_rebuilds_when_corrupt(built: tuple[Engine, Searcher, HashEmbedder, Path]) -> None:
    engine, searcher, _, root = built
    assert searcher.keyword is not None
    searcher.keyword.close()
    (root / "keyword" / "meta.json").write_text("{broken")
    keyword = indexer.open_keyword_index(root / "keyword", engine)
    assert keyword.count() == len(CORPUS)
    keyword.close()


def test_keyword_only_searcher_while_vectors_are_pending(engine: Engine, tmp_path: Path) -> None:
    _load(engine)
    keyword = indexer.open_keyword_index(tmp_path / "keyword", engine)
    searcher = Searcher(keyword, None, None)
    with engine.connect() as conn:
        res = searcher.search(conn, SearchQuery("quantization"))
        assert res.modes == ("keyword",)
        assert [h.item.paper.arxiv_id for h in res.hits] == ["2603.00002"]
        assert searcher.similar(conn, "2603.00002") == []
    keyword.close()
