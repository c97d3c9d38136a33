"""Hybrid search: BM25 and HNSW candidates, fused, filtered, paged, and fetched from the store.

The keyword index answers at once for every paper; the vector index answers for the papers whose vectors have
landed (embedding runs behind ingest, never in its way). Either index may be missing — the searcher uses what
it has and says which modes answered.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

from paperboy.errors import NotFound
from paperboy.models import parse_arxiv_id
from paperboy.search.embed import Embedder
from paperboy.search.fusion import HYBRID_K, hybrid_weights, rrf
from paperboy.search.keyword import Filters, KeywordIndex
from paperboy.search.query import (
    CANDIDATES,
    MAX_QUERY_CHARS,
    Hit,
    SearchQuery,
    SearchResults,
    has_words,
    query_terms,
)
from paperboy.search.vector import VectorIndex
from paperboy.store import embeddings as embedding_store
from paperboy.store import papers as store


def fused_ranking(rankings: list[list[str]], modes: list[str]) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion of the keyword and vector lists (k and weights measured in
    bench/relevance.py; docs/search.md, "Relevance")."""
    return rrf(rankings, k=HYBRID_K, weights=hybrid_weights([m for m in modes if m != "id"]))


class Searcher:
    def __init__(
        self,
        keyword: KeywordIndex | None,
        vector: VectorIndex | None = None,
        embedder: Embedder | None = None,
        candidates: int = CANDIDATES,
    ) -> None:
        self.keyword = keyword
        self.vector = vector
        self.embedder = embedder
        self.candidates = candidates

    def search(self, conn: Connection, q: SearchQuery) -> SearchResults:
        text = q.text.strip()[:MAX_QUERY_CHARS]
        if not text or not has_words(text):
            return SearchResults([], 0, ())
        rankings: list[list[str]] = []
        modes: list[str] = []
        keyword_ranks: dict[str, int] = {}
        vector_ranks: dict[str, int] = {}
        pinned: list[str] = []
        parsed = parse_arxiv_id(text)
        if parsed is not None:
            pinned = [parsed[0]] if store.get_paper(conn, parsed[0]) is not None else []
            modes.append("id")
        else:
            filters = Filters(q.start, q.end, q.categories)
            if self.keyword is not None:
                ids = [i for i, _ in self.keyword.search(text, self.candidates, filters)]
                keyword_ranks = {i: n for n, i in enumerate(ids, 1)}
                rankings.append(ids)
                modes.append("keyword")
            if self.vector is not None and self.embedder is not None and len(self.vector) > 0:
                qv = self.embedder.embed_query(text)
                allowed = self._allowed(conn, q)
                ids = [i for i, _ in self.vector.search(qv, self.candidates, allowed)]
                vector_ranks = {i: n for n, i in enumerate(ids, 1)}
                rankings.append(ids)
                modes.append("vector")
        fused = [(i, 1.0) for i in pinned] + [
            (i, s) for i, s in fused_ranking(rankings, modes) if i not in pinned
        ]
        if q.start or q.end or q.categories:  # the keyword index filtered already; the pinned id did not
            keep = store.filter_ids(conn, [i for i, _ in fused], q.start, q.end, q.categories)
            fused = [(i, s) for i, s in fused if i in keep]
        window = fused[q.page * q.limit : (q.page + 1) * q.limit]
        found = store.get_papers(conn, [i for i, _ in window])
        hits = [Hit(found[i], s, keyword_ranks.get(i), vector_ranks.get(i)) for i, s in window if i in found]
        return SearchResults(hits, len(fused), tuple(modes), query_terms(text))

    def _allowed(self, conn: Connection, q: SearchQuery) -> Callable[[str], bool] | None:
        """The vector index's filter: the ids the store says match the date range and categories."""
        if not (q.start or q.end or q.categories):
            return None
        return store.ids_matching(conn, q.start, q.end, q.categories).__contains__

    def similar(self, conn: Connection, arxiv_id: str, k: int = 10) -> list[Hit]:
        """The papers nearest to `arxiv_id` by vector (empty while its vector has not landed)."""
        if store.get_paper(conn, arxiv_id) is None:
            raise NotFound(f"paper {arxiv_id} is not in this hub")
        if self.vector is None or self.embedder is None:
            return []
        stored = embedding_store.get_vectors(conn, self.embedder.model, [arxiv_id]).get(arxiv_id)
        if stored is None:
            return []
        import numpy as np

        qv = np.frombuffer(stored, dtype=np.float32)
        near = [(i, s) for i, s in self.vector.search(qv, k + 1) if i != arxiv_id][:k]
        found = store.get_papers(conn, [i for i, _ in near])
        return [Hit(found[i], s, None, n) for n, (i, s) in enumerate(near, 1) if i in found]
