"""Embedding speed and quality per backend: documents per second, agreement with fp32, query latency.

    python bench/embed.py                      # 500 abstracts of the shared arXiv sample, every backend
    python bench/embed.py --n 16               # CI's toy size
    python bench/embed.py --quality            # also nDCG@10 on cranfield and cisi (../shared/data)
    python bench/embed.py --variants           # also the steps: no length sorting, a 128-token limit

Prints one JSON line:
    {"n", "cpus", "loadavg_start", "loadavg_after_timing", "loadavg_end",
     "backends": {name: {"abstracts_per_s", "cpu_ms_per_abstract",
                         "cosine_vs_fp32_min", "cosine_vs_fp32_mean", "ndcg@10": {"cranfield", "cisi"}}},
     "query_ms": {"onnx_1_thread" | "torch_2_threads": {"idle": {"p50", "p99"}, "loaded": {"p50", "p99"}}}}
"abstracts_per_s" is wall-clock on this machine, best of --repeat runs; "cpu_ms_per_abstract" is the
process's CPU time per abstract (steadier when other work shares the machine). "torch" is the fp32
reference the cosines are taken against. "loaded" latencies run while one CPU-burning process per core
competes. Exits 2 when the input file is missing, 3 when the model package is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paperboy.errors import EmbeddingUnavailable
from paperboy.search.embed import BACKENDS, SentenceEmbedder, document_text, load_embedder

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "data"
DEFAULT_FILE = SHARED / "arxiv_metadata" / "arxiv_daily_cs_sample_1000.jsonl"
IR_DIR = SHARED / "ir_benchmarks"
COLLECTIONS = ("cranfield", "cisi")
# name -> (backend, max_seq_length or None, batches in input order instead of by length)
VARIANTS: dict[str, tuple[str, int | None, bool]] = {
    "torch-unsorted": ("torch", None, True),
    "onnx-unsorted": ("onnx", None, True),
    "torch-bf16@128": ("torch-bf16", 128, False),
    "onnx-int8@128": ("onnx-int8", 128, False),
}


def read_abstracts(path: Path, n: int) -> list[str]:
    texts: list[str] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                texts.append(document_text(r["title"], r.get("summary") or r.get("abstract") or ""))
            if len(texts) >= n:
                break
    return texts


def embed_all(e: SentenceEmbedder, texts: Sequence[str], unsorted: bool, batch_size: int = 32) -> np.ndarray:
    if not unsorted:
        return e.embed_documents(texts, batch_size=batch_size)
    # one call per batch of 32 in input order: each batch is padded to its longest text
    parts = [
        e.embed_documents(texts[i : i + batch_size], batch_size) for i in range(0, len(texts), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, e.dim), dtype=np.float32)


def throughput(
    e: SentenceEmbedder, texts: Sequence[str], unsorted: bool, repeat: int
) -> tuple[np.ndarray, float, float]:
    e.embed_documents(texts[:4])  # warm-up: first-run allocations and kernel selection
    best, cpu_best, vectors = 0.0, float("inf"), np.zeros((0, e.dim), dtype=np.float32)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        vectors = embed_all(e, texts, unsorted)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best = max(best, len(texts) / wall)
        cpu_best = min(cpu_best, cpu * 1000 / len(texts))
    return vectors, best, cpu_best


def read_collection(name: str) -> tuple[list[str], list[str], dict[str, str], dict[str, dict[str, int]]]:
    folder = IR_DIR / name
    ids, docs = [], []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            ids.append(r["_id"])
            docs.append(document_text(r.get("title") or "", r.get("text") or ""))
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(s)
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["_id"] in qrels:
                queries[r["_id"]] = r["text"]
    return ids, docs, queries, qrels


def ndcg10(e: SentenceEmbedder, collection: str) -> float:
    import ir_measures
    from ir_measures import nDCG

    ids, docs, queries, qrels = read_collection(collection)
    matrix = e.embed_documents(docs)
    run = []
    for qid, text in queries.items():
        scores = matrix @ e.embed_query(text)
        for j in np.argsort(-scores)[:100]:
            run.append(ir_measures.ScoredDoc(qid, ids[j], float(scores[j])))
    qrel_rows = [ir_measures.Qrel(q, d, s) for q, ds in qrels.items() for d, s in ds.items()]
    return float(ir_measures.calc_aggregate([nDCG @ 10], qrel_rows, run)[nDCG @ 10])


def _burners() -> list[subprocess.Popen[bytes]]:
    code = "import time\nend = time.time() + 600\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]


def latencies(fn: Callable[[str], Any], queries: Sequence[str]) -> dict[str, float]:
    for q in queries[:5]:
        fn(q + " warm")
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return {"p50": round(float(np.percentile(out, 50)), 2), "p99": round(float(np.percentile(out, 99)), 2)}


def query_latency(cache_dir: Path | None, queries: Sequence[str], with_torch: bool) -> dict[str, Any]:
    e = load_embedder(None, threads=1, backend="onnx", cache_dir=cache_dir, query_cache_size=0)
    fns: dict[str, Callable[[str], Any]] = {"onnx_1_thread": e.embed_query}
    if with_torch:  # the "before": torch's own pool of 2 threads, shared by the whole process
        import torch

        st = load_embedder(None, backend="torch", cache_dir=cache_dir, batch_threads=2)._st
        torch.set_num_threads(2)

        def torch_query(q: str) -> Any:
            with torch.inference_mode():
                return st.encode([q], normalize_embeddings=True, show_progress_bar=False)

        fns["torch_2_threads"] = torch_query
    out: dict[str, Any] = {name: {"idle": latencies(fn, queries)} for name, fn in fns.items()}
    procs = _burners()
    try:
        time.sleep(0.5)
        for name, fn in fns.items():
            out[name]["loaded"] = latencies(fn, queries)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help="JSON-lines arXiv records (title, summary)"
    )
    ap.add_argument("--n", type=int, default=500, help="abstracts to embed per backend")
    ap.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated, from " + ", ".join(BACKENDS)
    )
    ap.add_argument("--variants", action="store_true", help="also " + ", ".join(VARIANTS))
    ap.add_argument("--quality", action="store_true", help="nDCG@10 on cranfield and cisi (exact search)")
    ap.add_argument("--queries", type=int, default=200, help="short queries timed for the latency figures")
    ap.add_argument("--repeat", type=int, default=1, help="throughput runs per backend (the best is kept)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="ONNX cache (default ~/.cache/paperboy)")
    args = ap.parse_args(argv)
    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    texts = read_abstracts(args.file, args.n)
    names = [b for b in args.backends.split(",") if b]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown:
        ap.error(f"unknown backend(s): {', '.join(unknown)}")
    plan: dict[str, tuple[str, int | None, bool]] = {"torch": ("torch", None, False)}
    plan.update({b: (b, None, False) for b in names})
    if args.variants:
        plan.update(VARIANTS)
    result: dict[str, Any] = {"n": len(texts), "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    backends: dict[str, Any] = {}
    reference: np.ndarray | None = None
    try:
        for name, (backend, limit, unsorted) in plan.items():
            e = load_embedder(None, backend=backend, max_seq_length=limit, cache_dir=args.cache_dir)
            vectors, per_s, cpu_ms = throughput(e, texts, unsorted, args.repeat)
            if reference is None:
                reference = vectors
            cos = (vectors * reference).sum(axis=1)
            row: dict[str, Any] = {
                "abstracts_per_s": round(per_s, 2),
                "cpu_ms_per_abstract": round(cpu_ms, 1),
                "cosine_vs_fp32_min": round(float(cos.min()), 5),
                "cosine_vs_fp32_mean": round(float(cos.mean()), 5),
            }
            backends[name] = row
            del e
        words = [t.split(". ")[0].split()[:6] for t in texts]
        queries = [" ".join(w) for w in words if w] * (args.queries // max(1, len(words)) + 1)
        queries = [f"{q} {i}" for i, q in enumerate(queries[: args.queries])]  # distinct: no cache hits
        result["query_ms"] = query_latency(args.cache_dir, queries, with_torch="torch" in plan)
        result["loadavg_after_timing"] = os.getloadavg()
        # quality last, so that the timings above are not spread over the slow part
        for name, (backend, limit, unsorted) in plan.items() if args.quality else ():
            if not unsorted:  # batch order changes no vector: the nDCG is the sorted one's
                e = load_embedder(None, backend=backend, max_seq_length=limit, cache_dir=args.cache_dir)
                backends[name]["ndcg@10"] = {c: round(ndcg10(e, c), 4) for c in COLLECTIONS}
                del e
    except EmbeddingUnavailable as exc:
        print(f"embedding model unavailable: {exc}", file=sys.stderr)
        return 3
    result["backends"] = backends
    result["loadavg_end"] = os.getloadavg()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
