"""What hybrid search ranks and counts (issue 11): a person's name finds their papers first, a missing vector
is never a penalty, vectors are computed newest first, and counts are what matches.

Real tantivy and HNSW indexes in tmp_path and a real database (SQLite, and PostgreSQL where the store is
involved); vectors from the HashEmbedder of tests/searchkit.py (words hashed into 64 dimensions), which is
enough here: what is tested is how the lists are put together, not what vectors mean.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from searchkit import NOW, HashEmbedder, paper
from sqlalchemy.engine import Engine

from paperboy.models import Featuring, Paper, Record
from paperboy.search import indexer
from paperboy.search.fusion import fuse_search, hybrid_fuse
from paperboy.search.hybrid import Searcher
from paperboy.search.query import SearchQuery, SearchResults
from paperboy.store import embeddings as embedding_store
from paperboy.store.papers import upsert_records
from paperboy.web.app import create_app
from paperboy.web.deps import Site

SONG_HAN = [
    paper("2604.00001", "Deep compression by pruning", "Pruning and quantization shrink networks.", day=1),
    paper("2604.00002", "Efficient inference engine", "A chip for compressed models.", day=2),
    paper("2604.00003", "Once-for-all networks", "Train one network, deploy many.", day=3),
    paper("2604.00004", "Streaming language model decoding", "Attention sinks keep decoding stable.", day=4),
    paper("2604.00005", "Sparse point cloud convolution", "Voxels for three-dimensional scenes.", day=5),
    paper("2604.00006", "Token merging for diffusion", "Fewer tokens in image generation.", day=6),
]
SONG_HAN = [
    dataclasses.replace(p, authors=("Ji Lin", "Song Han") if n % 2 else ("Song Han",))
    for n, p in enumerate(SONG_HAN)
]
# Papers that say "song" in their text (music), and papers with a "Li Song" and a "Han Wei" but no Song Han.
OTHERS = [
    paper(
        f"2605.{n:05d}",
        f"Song generation with language models, part {n}",
        "We generate a song, a song lyric and a song melody: song after song, in Han dynasty style too.",
        authors=("Ada Lovelace",),
        day=10 + n,
    )
    for n in range(1, 13)
] + [
    paper(
        f"2606.{n:05d}",
        f"Graph learning study {n}",
        "Message passing on graphs.",
        authors=("Li Song", "Han Wei"),
        day=1 + n,
        month=5,
    )
    for n in range(1, 8)
]
SCHOLKOPF = paper(
    "2607.00001",
    "Causal representation learning",
    "Causality meets learning.",
    authors=("Bernhard Schölkopf",),
)


AALST = paper(
    "2607.00002",
    "Object-centric event logs",
    "Mining processes from logs.",
    authors=("Wil M. P. van der Aalst",),
)


def _build(engine: Engine, tmp_path: Path, papers: Sequence[Paper]) -> Searcher:
    with engine.begin() as conn:
        upsert_records(conn, [Record(p) for p in papers], NOW)
    emb = HashEmbedder()
    keyword = indexer.open_keyword_index(tmp_path / "keyword", engine)
    vector = indexer.open_vector_index(tmp_path / "vectors.hnsw", engine, emb.model, emb.dim)
    indexer.embed_pending(engine, emb, vector, lambda: NOW)
    return Searcher(keyword, vector, emb)


@pytest.fixture
def hub(sqlite_engine: Engine, tmp_path: Path) -> tuple[Engine, Searcher]:
    return sqlite_engine, _build(sqlite_engine, tmp_path, [*SONG_HAN, *OTHERS, SCHOLKOPF, AALST])


def search(hub: tuple[Engine, Searcher], text: str, **kw: object) -> SearchResults:
    engine, searcher = hub
    with engine.connect() as conn:
        return searcher.search(conn, SearchQuery(text, **kw))  # type: ignore[arg-type]


def ids(results: SearchResults) -> list[str]:
    return [h.item.paper.arxiv_id for h in results.hits]


SONG_HAN_IDS = {p.arxiv_id for p in SONG_HAN}


# --- names find people -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Song Han", "song han", "SONG HAN", "papers by Song Han"])
def test_a_name_ranks_that_persons_papers_first(hub: tuple[Engine, Searcher], text: str) -> None:
    res = search(hub, text, limit=10)
    assert set(ids(res)[:6]) == SONG_HAN_IDS, ids(res)
    assert res.authors == ("Song Han",) and res.by_authors == 6
    assert "author" in res.modes
    # the rest of the query's matches follow: "Li Song" + "Han Wei" papers and songs, not before
    assert set(ids(res)[6:]) <= {p.arxiv_id for p in OTHERS}


def test_a_name_inside_a_longer_query_ranks_their_matching_paper_first(hub: tuple[Engine, Searcher]) -> None:
    res = search(hub, "Song Han streaming decoding", limit=10)
    assert ids(res)[0] == "2604.00004"
    assert set(ids(res)[:6]) == SONG_HAN_IDS


def test_a_pure_name_lists_their_papers_newest_first(hub: tuple[Engine, Searcher]) -> None:
    assert ids(search(hub, "Song Han", limit=6)) == [f"2604.0000{n}" for n in (6, 5, 4, 3, 2, 1)]


def test_two_authors_side_by_side_are_not_one_name(hub: tuple[Engine, Searcher]) -> None:
    """ "Li Song" and "Han Wei" on one paper do not make it a "Song Han" paper (no phrase across authors)."""
    _engine, searcher = hub
    assert searcher.keyword is not None
    assert searcher.keyword.find_names("Song Han").names == ("song han",)
    res = search(hub, "Song Han", limit=20)
    graph = [n for n, i in enumerate(ids(res)) if i.startswith("2606.")]
    assert graph and min(graph) >= 6


def test_accents_and_case_fold(hub: tuple[Engine, Searcher]) -> None:
    for text in ("bernhard scholkopf", "Bernhard Schölkopf", "BERNHARD SCHÖLKOPF causality"):
        res = search(hub, text)
        assert ids(res)[:1] == ["2607.00001"], text
        assert res.authors == ("Bernhard Schölkopf",)


def test_a_six_word_name_is_a_name(hub: tuple[Engine, Searcher]) -> None:
    res = search(hub, "Wil M. P. van der Aalst event logs")
    assert ids(res)[:1] == ["2607.00002"] and res.authors == ("Wil M. P. van der Aalst",)


def test_a_name_with_filters_keeps_to_them(hub: tuple[Engine, Searcher]) -> None:
    res = search(hub, "Song Han", start=date(2026, 3, 4))
    assert ids(res)[:3] == ["2604.00006", "2604.00005", "2604.00004"]
    assert res.by_authors == 3
    assert all(h.item.paper.published_at >= datetime(2026, 3, 4, tzinfo=UTC) for h in res.hits)  # type: ignore[operator]


def test_one_word_is_not_a_name(hub: tuple[Engine, Searcher]) -> None:
    res = search(hub, "Song")
    assert res.authors == () and "author" not in res.modes


# --- honest counts -----------------------------------------------------------------------------------------


def test_gibberish_matches_nothing_and_shows_nothing(hub: tuple[Engine, Searcher]) -> None:
    res = search(hub, "qzxvbn wplkmrt")
    assert res.matches == 0 and res.related == 0
    assert res.hits == [] and res.total == 0 and res.empty


def test_matches_count_every_paper_with_a_query_word(hub: tuple[Engine, Searcher]) -> None:
    res = search(hub, "song", limit=5)
    assert res.matches == 12 + 7 + 6  # the songs (text), the "Li Song" and the Song Han papers (authors)
    assert len(res.hits) == 5 and res.total >= res.matches


def test_a_category_filter_narrows_the_count(hub: tuple[Engine, Searcher]) -> None:
    everything = search(hub, "graph song")
    narrowed = search(hub, "graph song", categories=("cs.CL",))
    none = search(hub, "graph song", categories=("cs.CV",))
    assert 0 == none.matches < narrowed.matches <= everything.matches
    assert narrowed.total <= everything.total


# --- pending vectors never hurt ----------------------------------------------------------------------------


def test_a_paper_without_a_vector_keeps_its_keyword_rank(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The best keyword match, still waiting for its vector, stays first (it was ranked below papers that had
    one: a missing vector counted as a miss)."""
    target = paper("2608.00001", "Mixture of experts routing", "Routing tokens to experts.", day=9)
    near = [
        paper(f"2608.{n:05d}", f"Experts for tokens {n}", "Mixture models route tokens to experts.", day=n)
        for n in range(2, 8)
    ]
    searcher = _build(sqlite_engine, tmp_path, [target, *near])
    assert searcher.vector is not None and searcher.keyword is not None
    keyword_first = searcher.keyword.search("mixture of experts routing", 1)[0][0]
    assert keyword_first == target.arxiv_id
    searcher.vector.delete([target.arxiv_id])  # as if its vector were still pending
    with sqlite_engine.connect() as conn:
        res = searcher.search(conn, SearchQuery("mixture of experts routing"))
    assert "vector" in res.modes
    assert ids(res)[0] == target.arxiv_id


def test_fusion_scores_a_missing_vector_by_keyword_rank_alone() -> None:
    plain = hybrid_fuse(["a", "b"], ["b", "c"])
    assert [i for i, _ in plain] == ["b", "c", "a"]
    fair = hybrid_fuse(["a", "b"], ["b", "c"], has_vector=lambda i: i != "a")
    assert next(i for i, _ in fair) == "a"
    assert dict(fair)["a"] == pytest.approx((0.7 + 1.0) / 21)
    # a paper that has a vector and is not in the vector list gets no vector share
    assert dict(hybrid_fuse(["a"], ["c"], has_vector=lambda i: True))["a"] == pytest.approx(0.7 / 21)


def test_fusion_drops_meaning_only_papers_too_far_from_the_query() -> None:
    fused = fuse_search(["a"], [("b", 0.9), ("c", 0.1), ("d", 0.1)], worded={"d"}, min_similarity=0.4)
    assert [i for i, _ in fused.ranking] == ["b", "d", "a"]  # "c": meaning alone, and too far
    assert fused.related == {"b"}


# --- embedding order ---------------------------------------------------------------------------------------


class RecordingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed_documents(texts, batch_size)


def test_pending_vectors_come_newest_first(engine: Engine, tmp_path: Path) -> None:
    """Today's list first, then by arXiv date newest first, undated papers last; on SQLite and PostgreSQL."""
    old = [paper(f"2501.{n:05d}", f"Old paper {n}", "Text.", day=n, month=1) for n in range(1, 5)]
    new = [paper(f"2606.{n:05d}", f"New paper {n}", "Text.", day=n, month=6) for n in range(1, 5)]
    undated = dataclasses.replace(paper("2502.00001", "Undated paper", "Text."), published_at=None)
    featured_old = Featuring(old[1].arxiv_id, date(2026, 7, 1), "huggingface")
    stale_list = Featuring(new[0].arxiv_id, date(2026, 6, 30), "huggingface")
    with engine.begin() as conn:
        upsert_records(
            conn,
            [
                *[Record(p) for p in old if p is not old[1]],
                Record(old[1], featured_old),
                Record(new[0], stale_list),
                *[Record(p) for p in new[1:]],
                Record(undated),
            ],
            NOW,
        )
    want = [
        old[1].arxiv_id,  # on the newest daily list
        *[p.arxiv_id for p in reversed(new)],
        *[p.arxiv_id for p in reversed(old) if p is not old[1]],
        undated.arxiv_id,
    ]
    with engine.connect() as conn:
        assert [t.arxiv_id for t in embedding_store.pending(conn, "m", 100)] == want
        assert [t.arxiv_id for t in embedding_store.pending(conn, "m", 3)] == want[:3]
    emb = RecordingEmbedder()
    vector = indexer.open_vector_index(tmp_path / "v.hnsw", engine, emb.model, emb.dim)
    assert indexer.embed_pending(engine, emb, vector, lambda: NOW, batch=2) == len(want)
    titles = {p.arxiv_id: p.title for p in [*old, *new, undated]}
    assert [t.split(".")[0] for t in emb.texts] == [titles[i] for i in want]


# --- everywhere: the page, the JSON API, huggingface_hub over the wire -------------------------------------

SITE = Site(name="paperboy", public_url="http://testserver", trending_days=7)


@pytest.fixture
def web(hub: tuple[Engine, Searcher]) -> Iterator[TestClient]:
    engine, searcher = hub
    with TestClient(create_app(engine, site=SITE, clock=lambda: NOW, searcher=searcher)) as c:
        yield c


def test_the_search_page_puts_the_person_first_and_counts_honestly(web: TestClient) -> None:
    page = web.get("/papers", params={"q": "Song Han"}).text
    cards = re.findall(r'href="/papers/(\d{4}\.\d{5})"', page)
    assert list(dict.fromkeys(cards))[:6] == [f"2604.0000{n}" for n in (6, 5, 4, 3, 2, 1)]
    assert "6 papers by Song Han · 25 papers match “Song Han”" in page


def test_the_search_page_says_when_nothing_matches(web: TestClient) -> None:
    page = web.get("/papers", params={"q": "qzxvbn wplkmrt"}).text
    assert "No papers match “qzxvbn wplkmrt”" in page and "Check the spelling" in page
    assert "papers matching" not in page and 'class="cards"' not in page
    filtered = web.get("/papers", params={"q": "Song Han", "category": "cs.CV"}).text
    assert "No papers match “Song Han” with these filters" in filtered
    assert "25 papers match without them" in filtered


def test_the_api_ranks_the_person_first_and_counts_in_headers(web: TestClient) -> None:
    r = web.get("/api/papers/search", params={"q": "Song Han", "limit": 6})
    assert r.status_code == 200
    assert [i["paper"]["id"] for i in r.json()] == [f"2604.0000{n}" for n in (6, 5, 4, 3, 2, 1)]
    assert r.headers["X-Search-Matches"] == "25" and r.headers["X-Search-Authors"] == "6"
    assert "X-Search-Suggestion" not in r.headers
    assert 'rel="next"' in r.headers["Link"] and "p=1" in r.headers["Link"]
    empty = web.get("/api/papers/search", params={"q": "qzxvbn wplkmrt"})
    assert empty.json() == [] and empty.headers["X-Search-Matches"] == "0"
    assert empty.headers["X-Search-Related"] == "0"
    assert empty.headers["X-Search-Suggestion"].startswith("No papers match: check the spelling")
    narrowed = web.get("/api/papers/search", params={"q": "graph song", "category": "cs.CL"})
    wide = web.get("/api/papers/search", params={"q": "graph song"})
    assert int(narrowed.headers["X-Search-Matches"]) <= int(wide.headers["X-Search-Matches"])


def test_huggingface_hub_list_papers_finds_the_person(
    hub: tuple[Engine, Searcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    from browserkit import free_port, serving
    from huggingface_hub import HfApi
    from huggingface_hub import constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    engine, searcher = hub
    app = create_app(engine, site=SITE, clock=lambda: NOW, searcher=searcher)
    with serving(app, free_port()) as url:
        found = [p.id for p in HfApi(endpoint=url, token=False).list_papers(query="song han", token=False)]
    assert set(found[:6]) == SONG_HAN_IDS
