"""Fusing ranked lists from several retrievers (BM25, vectors) into one: pure functions.

`rrf` is what search uses, with `HYBRID_K` and the weights of `hybrid_weights`; `score_fusion` is the
score-normalising alternative that `bench/relevance.py --variants` measures against it (docs/search.md,
`## Relevance`, has the figures behind the choice).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

# Weighted RRF, measured best across both collections of bench/relevance.py (docs/search.md, `## Relevance`):
# k=20 with the BM25 list at weight 0.7 beats both single modes on both (weights 0.5 to 0.8, k 20 to 60: a
# plateau); plain RRF (k=60, equal weights) only ties vector-only search on CISI. Rank-based, so it needs no
# score calibration and behaves with one-result lists, where score normalisation did not measure better.
HYBRID_K = 20
KEYWORD_WEIGHT = 0.7
VECTOR_WEIGHT = 1.0


def _check_weights(n: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} lists")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"weights must be finite and not negative: {list(weights)}")
    return [float(w) for w in weights]


def rrf(
    rankings: list[list[str]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): best first.

    score(d) = Σ_i weights[i] / (k + rank_i(d)), rank 1-based, summed over the lists that contain d. An id
    repeated within one list counts at its best rank. Ties go to the id with the better best rank, then to
    the smaller id, so the result does not depend on dict order.
    """
    if k < 0:
        raise ValueError(f"k must not be negative: {k}")
    ws = _check_weights(len(rankings), weights)
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for ranking, w in zip(rankings, ws, strict=True):
        seen: set[str] = set()
        for rank, doc in enumerate(ranking, 1):
            if doc in seen:
                continue
            seen.add(doc)
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
            best[doc] = min(best.get(doc, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))


def hybrid_fuse(
    keyword: Sequence[str],
    vector: Sequence[str],
    has_vector: Callable[[str], bool] | None = None,
    k: int = HYBRID_K,
    weights: tuple[float, float] = (KEYWORD_WEIGHT, VECTOR_WEIGHT),
) -> list[tuple[str, float]]:
    """Weighted RRF of a keyword list and a vector list (best first), fair to papers still without a vector.

    A keyword hit for which `has_vector` is false (its vector is pending) could not be in the vector list,
    so its absence there says nothing against it: it is scored by its keyword rank alone at the weight of
    both lists, (w_keyword + w_vector) / (k + rank), as if meaning had ranked it where keywords did. A paper
    that has a vector and is missing from the vector list gets no share of the vector weight: there, absence
    is evidence. Measured in bench/relevance.py (`--missing`): with half the vectors missing, plain RRF fell
    below keyword-only search on both collections; this stays above it (docs/search.md, `## Relevance`).
    """
    wk, wv = weights
    fused = rrf([list(keyword), list(vector)], k=k, weights=[wk, wv])
    if has_vector is None:
        return fused
    scores = dict(fused)
    first: dict[str, int] = {}
    for rank, doc in enumerate(keyword, 1):
        first.setdefault(doc, rank)
    in_vector = set(vector)
    for doc, rank in first.items():
        if doc not in in_vector and not has_vector(doc):
            scores[doc] += wv / (k + rank)
    best = {doc: rank for doc, rank in first.items()}
    for rank, doc in enumerate(vector, 1):
        best[doc] = min(best.get(doc, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))


# A paper found by meaning alone (it holds none of the query's words) is kept as "related by meaning" only
# this close to the query (cosine similarity of all-MiniLM-L6-v2 vectors). Measured on the 74,728 real
# abstracts (docs/search.md, "Honest counts"): random letter strings reach 0.29 (median) and 0.41 (max of
# 60) with their nearest paper; typed topics 0.54 (median), their meaning-only neighbours 0.33 (median), 0.44
# (p90).
RELATED_MIN_SIMILARITY = 0.4


@dataclass(frozen=True)
class Fused:
    ranking: list[tuple[str, float]]  # best first
    related: frozenset[str]  # ids in `ranking` found by meaning alone


def fuse_search(
    keyword: Sequence[str],
    vector: Sequence[tuple[str, float]],
    worded: Collection[str] = (),
    has_vector: Callable[[str], bool] | None = None,
    min_similarity: float = RELATED_MIN_SIMILARITY,
) -> Fused:
    """What hybrid search ranks: `hybrid_fuse` of the keyword ids and the vector hits (id, cosine), less
    the hits found by meaning alone (in neither `keyword` nor `worded`, the ids known to hold a query word)
    that are less similar than `min_similarity`: every query has nearest neighbours, gibberish too."""
    in_keyword = set(keyword)
    outside = [(i, s) for i, s in vector if i not in in_keyword and i not in worded]
    related = frozenset(i for i, s in outside if s >= min_similarity)
    dropped = {i for i, _ in outside} - related
    ranking = hybrid_fuse(keyword, [i for i, _ in vector], has_vector)
    return Fused([(i, s) for i, s in ranking if i not in dropped], related)


def hybrid_weights(modes: Sequence[str]) -> list[float]:
    """The weights for `rrf` of ranked lists from `modes` ("keyword", "vector"), in that order."""
    known = {"keyword": KEYWORD_WEIGHT, "vector": VECTOR_WEIGHT}
    return [known.get(m, 1.0) for m in modes]


def score_fusion(
    results: list[list[tuple[str, float]]],
    weights: Sequence[float] | None = None,
    method: Literal["minmax", "zscore"] = "minmax",
) -> list[tuple[str, float]]:
    """Weighted sum of per-list normalised scores (min-max to [0, 1], or z-scores): best first.

    A document missing from a list gets that list's lowest normalised score (0 for min-max). A list whose
    scores are all equal normalises to 1 (min-max) or 0 (z-score) for every document in it.
    """
    ws = _check_weights(len(results), weights)
    normalised: list[dict[str, float]] = []
    floors: list[float] = []
    for result in results:
        firsts: dict[str, float] = {}
        for doc, s in result:
            firsts.setdefault(doc, s)
        values = list(firsts.values())
        if not values:
            normalised.append({})
            floors.append(0.0)
            continue
        if method == "minmax":
            lo, hi = min(values), max(values)
            span = hi - lo
            norm = {d: (s - lo) / span if span > 0 else 1.0 for d, s in firsts.items()}
            floors.append(0.0)
        elif method == "zscore":
            mean = sum(values) / len(values)
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
            norm = {d: (s - mean) / sd if sd > 0 else 0.0 for d, s in firsts.items()}
            floors.append(min(norm.values()))
        else:
            raise ValueError(f"unknown normalisation {method!r}")
        normalised.append(norm)
    docs: dict[str, None] = {}
    for norm in normalised:
        docs.update(dict.fromkeys(norm))
    fused = {
        d: sum(w * norm.get(d, floor) for norm, floor, w in zip(normalised, floors, ws, strict=True))
        for d in docs
    }
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
