"""ANN speed and recall of paperboy's vector index (paperboy.search.vector.VectorIndex) against exact search.

    python bench/search_ann.py                      # N = 100,000, 200 queries
    python bench/search_ann.py --n 1000000          # the target size: a 51-minute build here, under load
    python bench/search_ann.py --n 3000 --queries 20    # CI's toy size

Vectors: the precomputed all-MiniLM-L6-v2 vectors of the 74,728 arXiv cs papers in
../shared/data/embeddings/. The queries are real rows held out of the index (a new paper asking for its
neighbours); past the real rows the index is topped up with synthesised vectors, each
normalise(x_i + 0.3 · x_j + N(0, 0.035² I)) for random indexed rows i, j (cosine ≈ 0.8 to x_i, about the
cosine between a real paper and its nearest neighbour). Without ../shared the vectors are synthesised from
random clusters and the output says so.

Prints one JSON line: n, recall_at_10 (against numpy exact search), ann_p50_ms / ann_p99_ms (one query at a
time through VectorIndex.search, one thread), exact_p50_ms (numpy brute force on one thread, same
queries, same run),
build_s (VectorIndex.upsert of all N vectors, `--threads` threads), index_bytes_per_paper (the saved index
file and its sidecar, divided by N), and how the vectors were made. `run()` is the same, importable
(bench/search.py reuses it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from paperboy.search import vector  # noqa: E402
from paperboy.search.vector import VectorIndex  # noqa: E402

EMBEDDINGS = REPO_ROOT.parent / "shared" / "data" / "embeddings"
VECTORS = EMBEDDINGS / "minilm_arxiv_cs_f16.npy"
MODEL = "all-MiniLM-L6-v2"
K = 10


def _normalise(m: np.ndarray) -> np.ndarray:
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def synthesise(seed_rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` vectors near the seed rows: normalise(x_i + 0.3 x_j + Gaussian noise)."""
    out = np.empty((count, seed_rows.shape[1]), dtype=np.float32)
    for s in range(0, count, 100_000):
        m = min(100_000, count - s)
        i = rng.integers(0, len(seed_rows), m)
        j = rng.integers(0, len(seed_rows), m)
        noise = rng.normal(0.0, 0.035, (m, seed_rows.shape[1])).astype(np.float32)
        out[s : s + m] = _normalise(seed_rows[i] + 0.3 * seed_rows[j] + noise)
    return out


def random_clusters(count: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Stand-in for the real vectors when ../shared is absent: points around 500 random centres."""
    centres = _normalise(rng.normal(size=(500, dim)).astype(np.float32))
    pick = rng.integers(0, len(centres), count)
    return _normalise(centres[pick] + rng.normal(0.0, 0.035, (count, dim)).astype(np.float32))


def dataset(n: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(index vectors, query vectors, a description) for an index of `n` papers."""
    rng = np.random.default_rng(seed)
    if VECTORS.is_file():
        real = np.load(VECTORS).astype(np.float32)
        real = _normalise(real[rng.permutation(len(real))])
        if queries >= len(real):
            raise SystemExit(f"--queries must be below {len(real)}")
        held_out, pool = real[:queries], real[queries:]
        base = pool[:n]
        synthesised = n - len(base)
        if synthesised:
            base = np.concatenate([base, synthesise(base, synthesised, rng)])
        source = "precomputed all-MiniLM-L6-v2 from ../shared/data/embeddings"
        how = "queries are real rows held out of the index; extra rows are normalise(x_i + 0.3 x_j + noise)"
    else:
        pool = random_clusters(n + queries, 384, rng)
        held_out, base = pool[:queries], pool[queries:]
        synthesised = n
        source = "synthesised random clusters (../shared/data/embeddings not found)"
        how = "queries are held-out rows of the same clusters"
    info = {"vectors": source, "real": n - synthesised, "synthesised": synthesised, "method": how}
    return np.ascontiguousarray(base), np.ascontiguousarray(held_out), info


def exact_top(base: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    sims = base @ q
    top = np.argpartition(-sims, k)[:k]
    return top[np.argsort(-sims[top])]


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Exact search on one thread, like the index's searches (threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _pct(samples: list[float], p: float) -> float:
    return round(float(np.percentile(np.array(samples) * 1000.0, p)), 3)


def _measure(
    index: VectorIndex, qs: np.ndarray, truth: list[set[str]]
) -> tuple[float, list[float], list[float]]:
    """Recall@10, wall-clock seconds and CPU seconds of each query (CPU time leaves out the time this
    thread waited for a core: on a shared machine it shows the index's own cost)."""
    for q in qs[: min(20, len(qs))]:  # warm-up
        index.search(q, K)
    took: list[float] = []
    cpu: list[float] = []
    found = 0
    for q, want in zip(qs, truth, strict=True):
        t, c = time.perf_counter(), time.thread_time()
        got = index.search(q, K)
        took.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
        found += len({i for i, _ in got} & want)
    return found / (K * len(qs)), took, cpu


def run(
    n: int = 100_000,
    queries: int = 200,
    seed: int = 0,
    threads: int = 2,
    ef: int | None = None,
    sweep: tuple[int, ...] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Build the index over `n` vectors, query it, and return the figures (see the module docstring).
    `sweep` adds recall and latency at other search depths, from the same build; `progress` reports the
    build's progress on stderr."""
    base, qs, info = dataset(n, queries, seed)
    ids = [f"p{j:07d}" for j in range(n)]

    exact_s: list[float] = []
    truth: list[set[str]] = []
    with _one_blas_thread():
        for q in qs:
            t = time.perf_counter()
            top = exact_top(base, q)
            exact_s.append(time.perf_counter() - t)
            truth.append({ids[j] for j in top})

    with tempfile.TemporaryDirectory(prefix="paperboy-ann-") as tmp:
        path = Path(tmp) / "vectors.hnsw"
        index = VectorIndex.create(path, base.shape[1], MODEL, capacity=n)
        t = time.perf_counter()
        for s in range(0, n, 50_000):
            index.upsert(ids[s : s + 50_000], base[s : s + 50_000], threads=threads)
            if progress:
                print(
                    f"indexed {min(s + 50_000, n):,} / {n:,} in {time.perf_counter() - t:.0f} s",
                    file=sys.stderr,
                )
        build_s = time.perf_counter() - t
        del base
        if ef is not None:
            index.expansion_search = ef
        index.save()
        disk = path.stat().st_size + path.with_name(path.name + ".json").stat().st_size
        ram = int(index._index.memory_usage)

        recall, ann_s, ann_cpu = _measure(index, qs, truth)
        chosen_ef = index.expansion_search
        swept = []
        for other in sweep:
            index.expansion_search = other
            r, took, cpu = _measure(index, qs, truth)
            swept.append(
                {
                    "ef": other,
                    "recall_at_10": round(r, 4),
                    "p50_ms": _pct(took, 50),
                    "p99_ms": _pct(took, 99),
                    "p50_cpu_ms": _pct(cpu, 50),
                }
            )

    out = {
        "n": n,
        "recall_at_10": round(recall, 4),
        "ann_p50_ms": _pct(ann_s, 50),
        "ann_p99_ms": _pct(ann_s, 99),
        "ann_p50_cpu_ms": _pct(ann_cpu, 50),
        "exact_p50_ms": _pct(exact_s, 50),
        "build_s": round(build_s, 1),
        "index_bytes_per_paper": round(disk / n),
        "ram_bytes_per_paper": round(ram / n),
        "queries": len(qs),
        **info,
        "index": {
            "library": "usearch",
            "dtype": "f16",
            "M": vector.CONNECTIVITY,
            "ef_construction": vector.EXPANSION_ADD,
            "ef": chosen_ef,
            "build_threads": threads,
            "search_threads": 1,
        },
    }
    if swept:
        out["sweep"] = swept
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="papers in the index (default 100000)")
    ap.add_argument("--queries", type=int, default=200, help="held-out query vectors (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="threads for the build (searches use one)")
    ap.add_argument("--ef", type=int, default=None, help="search depth (default: the index's own choice)")
    ap.add_argument("--sweep", default="", help="also measure these search depths, e.g. 64,128,256")
    args = ap.parse_args(argv)
    if args.n < 2 * K or args.queries < 1:
        ap.error("--n must be at least 20 and --queries at least 1")
    sweep = tuple(int(x) for x in args.sweep.split(",") if x.strip())
    figures = run(args.n, args.queries, args.seed, args.threads, args.ef, sweep, progress=True)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
