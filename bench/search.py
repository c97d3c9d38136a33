"""End-to-end search speed at N papers: what one query costs through paperboy's real searcher.

    python bench/search.py --n 100000              # 200 queries
    python bench/search.py --n 2000 --queries 20   # CI's toy size
    python bench/search.py --n 1000000 --workdir /tmp/pb1m   # keep what it builds; run again to time only


Builds, in a temporary folder: a SQLite database of N papers, the tantivy keyword index over them and the
usearch HNSW index over their vectors. Papers and vectors: the 74,728 real arXiv cs papers of
../shared/data/arxiv_metadata/ with their precomputed all-MiniLM-L6-v2 vectors (../shared/data/embeddings/);
past that, synthesised papers (a real paper's text under a new id) with synthesised vectors
(normalise(x_i + 0.3 x_j + noise), as bench/search_ann.py). `queries` real papers are held out of the index:
their vectors measure recall and ANN latency against numpy exact search, their titles (first eight words)
are the text queries timed end to end.

e2e = Searcher.search: the query's embedding by the real model (one thread), BM25 top 100, HNSW top 100,
weighted RRF, and fetching the page of 20 rows from the database. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import search_ann  # noqa: E402

from paperboy import db  # noqa: E402
from paperboy.models import Record  # noqa: E402
from paperboy.search import indexer  # noqa: E402
from paperboy.search.embed import load_embedder  # noqa: E402
from paperboy.search.hybrid import Searcher  # noqa: E402
from paperboy.search.query import SearchQuery  # noqa: E402
from paperboy.search.vector import VectorIndex  # noqa: E402
from paperboy.sources.snapshot import parse_line  # noqa: E402
from paperboy.store.papers import upsert_records  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
LISTING = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
IDS = SHARED / "embeddings" / "minilm_arxiv_cs_ids.txt"
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "arxiv_listing_small.jsonl"
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def _records(path: Path) -> dict[str, dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return {r["id"]: r for r in map(json.loads, f)}


def corpus(
    n: int, queries: int, seed: int
) -> tuple[list[str], np.ndarray, list[dict[str, Any]], np.ndarray, dict[str, Any]]:
    """(ids, vectors, raw records) of the N indexed papers, the held-out query rows' records and vectors."""
    rng = np.random.default_rng(seed)
    if search_ann.VECTORS.is_file() and IDS.is_file() and LISTING.is_file():
        real = search_ann._normalise(np.load(search_ann.VECTORS).astype(np.float32))
        real_ids = IDS.read_text().split()
        raw = _records(LISTING)
        order = rng.permutation(len(real))
        held, pool = order[:queries], order[queries:]
        source = "real papers with precomputed all-MiniLM-L6-v2 vectors from ../shared/data"
    else:
        raw_list = list(_records(FIXTURE).values())
        real = search_ann.random_clusters(len(raw_list), 384, rng)
        real_ids = [r["id"] for r in raw_list]
        raw = {r["id"]: r for r in raw_list}
        order = rng.permutation(len(real))
        held, pool = order[: min(queries, len(real) // 4)], order[min(queries, len(real) // 4) :]
        source = "repo fixture papers with synthesised vectors (../shared/data not found)"
    take = pool[:n]
    ids = [real_ids[j] for j in take]
    records = [raw[i] for i in ids]
    vectors = real[take]
    extra = n - len(ids)
    if extra > 0:
        vectors = np.concatenate([vectors, search_ann.synthesise(vectors, extra, rng)])
        for k in range(extra):
            clone = dict(records[k % len(take)])
            clone["id"] = f"{3001 + k // 99_999}.{k % 99_999 + 1:05d}"
            records.append(clone)
            ids.append(clone["id"])
    query_records = [raw[real_ids[j]] for j in held]
    info = {"papers": source, "real": n - max(extra, 0), "synthesised": max(extra, 0)}
    return (
        ids,
        np.ascontiguousarray(vectors),
        records,
        real[held],
        {**info, "queries_from": query_records},
    )


def _build(
    root: Path, ids: list[str], vectors: np.ndarray, records: list[dict[str, Any]], model: str
) -> dict[str, Any]:
    """Load the database and build both indexes in `root`; their timings and sizes."""
    n = len(ids)
    engine = db.make_engine(f"sqlite:///{root / 'bench.sqlite3'}")
    db.upgrade(engine)
    t = time.perf_counter()
    for s in range(0, len(records), 5000):
        batch = [Record(parse_line(r, "bench")) for r in records[s : s + 5000]]
        with engine.begin() as conn:
            upsert_records(conn, batch, NOW)
    load_s = time.perf_counter() - t

    t = time.perf_counter()
    keyword = indexer.open_keyword_index(root / "keyword", engine)
    keyword_s = time.perf_counter() - t
    keyword.close()
    engine.dispose()

    vector = VectorIndex.create(root / "vectors.hnsw", vectors.shape[1], model, capacity=n)
    t = time.perf_counter()
    for s in range(0, n, 50_000):
        vector.upsert(ids[s : s + 50_000], vectors[s : s + 50_000])
    build_s = time.perf_counter() - t
    vector.save()
    vector_bytes = sum(p.stat().st_size for p in root.glob("vectors.hnsw*"))
    keyword_bytes = sum(p.stat().st_size for p in (root / "keyword").rglob("*") if p.is_file())
    return {
        "build_s": round(build_s, 1),
        "keyword_build_s": round(keyword_s, 1),
        "db_load_s": round(load_s, 1),
        "index_bytes_per_paper": round(vector_bytes / n),
        "keyword_bytes_per_paper": round(keyword_bytes / n),
    }


def _time_queries(
    root: Path, ids: list[str], vectors: np.ndarray, qvecs: np.ndarray, texts: list[str], embedder: Any
) -> dict[str, Any]:
    engine = db.make_engine(f"sqlite:///{root / 'bench.sqlite3'}")
    db.upgrade(engine)  # a kept build may predate newer migrations
    keyword = indexer.open_keyword_index(root / "keyword", engine)
    vector = VectorIndex.load(root / "vectors.hnsw", vectors.shape[1], embedder.model)
    exact_s: list[float] = []
    ann_s: list[float] = []
    found = 0
    with search_ann._one_blas_thread():
        for q in qvecs:
            t = time.perf_counter()
            truth = {ids[j] for j in search_ann.exact_top(vectors, q)}
            exact_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            got = vector.search(q, search_ann.K)
            ann_s.append(time.perf_counter() - t)
            found += len(truth & {i for i, _ in got})

        searcher = Searcher(keyword, vector, embedder)
        e2e_s: list[float] = []
        modes: set[tuple[str, ...]] = set()
        with engine.connect() as conn:
            for text in texts[:5]:  # warm caches and code paths
                searcher.search(conn, SearchQuery(text + " warmup"))
            for text in texts:
                t = time.perf_counter()
                res = searcher.search(conn, SearchQuery(text, limit=20))
                e2e_s.append(time.perf_counter() - t)
                modes.add(res.modes)
    keyword.close()
    engine.dispose()
    return {
        "recall_at_10": round(found / (search_ann.K * len(qvecs)), 4),
        "ann_p50_ms": search_ann._pct(ann_s, 50),
        "ann_p99_ms": search_ann._pct(ann_s, 99),
        "e2e_p50_ms": search_ann._pct(e2e_s, 50),
        "e2e_p99_ms": search_ann._pct(e2e_s, 99),
        "exact_p50_ms": search_ann._pct(exact_s, 50),
        "modes": sorted("+".join(m) for m in modes),
    }


def run(n: int, queries: int, seed: int = 0, workdir: Path | None = None) -> dict[str, Any]:
    """Build (or, with a `workdir` that already holds this build, reuse) and time; the JSON line's fields."""
    ids, vectors, records, qvecs, info = corpus(n, queries, seed)
    query_records: list[dict[str, Any]] = info.pop("queries_from")
    texts = [" ".join(r["title"].split()[:8]) for r in query_records]
    embedder = load_embedder(None, threads=1)
    with tempfile.TemporaryDirectory(prefix="paperboy-search-") as tmp:
        root = Path(tmp) if workdir is None else workdir
        root.mkdir(parents=True, exist_ok=True)
        marker = root / "build.json"
        key = {"n": n, "queries": queries, "seed": seed, "model": embedder.model}
        built = json.loads(marker.read_text()) if marker.is_file() else None
        reused = built is not None and built.get("key") == key
        if not reused:
            if workdir is not None and any(root.iterdir()):
                raise SystemExit(
                    f"{root} holds something else than this build; give an empty or new --workdir"
                )
            built = {"key": key, "figures": _build(root, ids, vectors, records, embedder.model)}
            marker.write_text(json.dumps(built))
        assert built is not None
        timed = _time_queries(root, ids, vectors, qvecs, texts, embedder)
    figures = built["figures"]
    return {
        "n": n,
        **{k: timed[k] for k in ("recall_at_10", "ann_p50_ms", "ann_p99_ms", "e2e_p50_ms", "e2e_p99_ms")},
        "exact_p50_ms": timed["exact_p50_ms"],
        **figures,
        "build_reused": reused,
        "queries": len(texts),
        "modes": timed["modes"],
        "model": embedder.model,
        **info,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="papers in the index (default 100,000)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="build here and keep it (default: a temporary folder); a later run with the same --n, --queries "
        "and --seed reuses the build and only times the queries (build figures are those of the first run)",
    )
    args = parser.parse_args(argv)
    if args.n < 100 or args.queries < 1:
        parser.error("--n must be at least 100 and --queries at least 1")
    print(json.dumps(run(args.n, args.queries, args.seed, args.workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
