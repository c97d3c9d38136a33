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
from paperboy.search.fusion import HYBRID_K, fuse_search, hybrid_weights, rrf
from paperboy.search.keyword import Filters, KeywordIndex
from paperboy.search.query import (
    AUTHOR_CANDIDATES,
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
        """One page of results: an arXiv id's paper; else the papers of the people the query names (all of
        them, bounded by AUTHOR_CANDIDATES), then the keyword and vector lists fused. Counts are honest:
        `matches` is every paper holding the query's words, `related` the results found by meaning alone
        (close enough to the query to show), and gibberish matches nothing."""
        text = q.text.strip()[:MAX_QUERY_CHARS]
        if not text or not has_words(text):
            return SearchResults([], 0, ())
        parsed = parse_arxiv_id(text)
        if parsed is not None:
            pinned = [parsed[0]] if store.get_paper(conn, parsed[0]) is not None else []
            if pinned and (q.start or q.end or q.categories):
                pinned = [
                    i for i in pinned if i in store.filter_ids(conn, pinned, q.start, q.end, q.categories)
                ]
            fused = [(i, 1.0) for i in pinned]
            return self._page(conn, q, fused, {}, {}, ("id",), text, matches=len(pinned))

        filters = Filters(q.start, q.end, q.categories)
        modes: list[str] = []
        person: list[str] = []
        people: tuple[str, ...] = ()
        by_authors = 0
        meaning_text = text
        keyword_ids: list[str] = []
        matches = 0
        if self.keyword is not None:
            named = self.keyword.find_names(text)
            if named.names:
                meaning_text = named.rest  # a name's embedding finds namesakes of words, not the person
                found, by_authors = self.keyword.by_authors(
                    named.names, named.rest, AUTHOR_CANDIDATES, filters
                )
                person = [i for i, _ in found]
                if person:
                    people = named.names
                    modes.append("author")
            found, matches = self.keyword.search_counted(text, self.candidates, filters)
            keyword_ids = [i for i, _ in found]
            modes.append("keyword")
        vector_hits: list[tuple[str, float]] = []
        if (
            self.vector is not None
            and self.embedder is not None
            and len(self.vector) > 0
            and has_words(meaning_text)
        ):
            qv = self.embedder.embed_query(meaning_text)
            vector_hits = self.vector.search(qv, self.candidates, self._allowed(conn, q))
            modes.append("vector")
        vector_ids = [i for i, _ in vector_hits]

        # Papers found by meaning alone: related when close enough, dropped when not (gibberish has nearest
        # neighbours too). Those holding a query word beyond the keyword list's depth are matches.
        in_keyword = set(keyword_ids)
        outside = [i for i in vector_ids if i not in in_keyword]
        worded = (
            self.keyword.matching(text, outside, filters) if self.keyword is not None and outside else set()
        )
        if "vector" in modes:
            assert self.vector is not None  # noqa: S101 ("vector" joins modes only with an index; for mypy)
            fusion = fuse_search(keyword_ids, vector_hits, worded, self.vector.__contains__)
            ranked, related = fusion.ranking, fusion.related
        else:
            ranked, related = (rrf([keyword_ids], k=HYBRID_K) if keyword_ids else []), frozenset()
        in_person = set(person)
        top = 1.0 + 1.0 / HYBRID_K  # above any fused score: the people's papers come first
        fused = [(i, top - n / (len(person) + 1) / HYBRID_K) for n, i in enumerate(person)]
        fused += [(i, s) for i, s in ranked if i not in in_person]
        if q.start or q.end or q.categories:  # both indexes filtered already: the store has the last word
            keep = store.filter_ids(conn, [i for i, _ in fused], q.start, q.end, q.categories)
            fused = [(i, s) for i, s in fused if i in keep]
        shown_related = sum(1 for i, _ in fused if i in related)
        keyword_ranks = {i: n for n, i in enumerate(keyword_ids, 1)}
        vector_ranks = {i: n for n, i in enumerate(vector_ids, 1)}
        return self._page(
            conn,
            q,
            fused,
            keyword_ranks,
            vector_ranks,
            tuple(modes),
            text,
            matches=matches,
            related=shown_related,
            people=self._spellings(conn, people, person),
            by_authors=by_authors,
        )

    def _page(
        self,
        conn: Connection,
        q: SearchQuery,
        fused: list[tuple[str, float]],
        keyword_ranks: dict[str, int],
        vector_ranks: dict[str, int],
        modes: tuple[str, ...],
        text: str,
        *,
        matches: int,
        related: int = 0,
        people: tuple[str, ...] = (),
        by_authors: int = 0,
    ) -> SearchResults:
        window = fused[q.page * q.limit : (q.page + 1) * q.limit]
        found = store.get_papers(conn, [i for i, _ in window])
        hits = [Hit(found[i], s, keyword_ranks.get(i), vector_ranks.get(i)) for i, s in window if i in found]
        return SearchResults(
            hits,
            len(fused),
            modes,
            query_terms(text),
            matches=matches,
            related=related,
            authors=people,
            by_authors=by_authors,
        )

    def _spellings(self, conn: Connection, keys: tuple[str, ...], person: list[str]) -> tuple[str, ...]:
        """The people named, as their papers spell them ("yann lecun" -> "Yann LeCun")."""
        if not keys or self.keyword is None:
            return ()
        keyword = self.keyword
        found = store.get_papers(conn, person[:20])
        out: list[str] = []
        for key in keys:
            spelled = next(
                (
                    a
                    for i in person[:20]
                    if i in found
                    for a in found[i].paper.authors
                    if keyword.name_key(a) == key
                ),
                None,
            )
            if spelled is not None:
                out.append(spelled)
        return tuple(out)

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
