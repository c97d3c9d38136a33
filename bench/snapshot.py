"""Time for a new search node to be ready from a shared index snapshot, against rebuilding from the database.

    python bench/snapshot.py --n 100000 --new 5000
    python bench/snapshot.py --n 1000000 --new 5000 --workdir /tmp/pb-snap1m --no-rebuild-node
    python bench/snapshot.py --n 500 --new 50 --database-url postgresql+psycopg://…   # CI's toy size

Design (b) of issue 13 (docs/search.md, "Many machines"): every node keeps its own indexes; a worker publishes
a snapshot into the database (paperboy/search/snapshot.py) and a new node restores it and catches up.

1. A PostgreSQL database (pgserver, in --workdir/pg or a temporary folder; or --database-url) is loaded with N
   papers and their vectors: bench/search.py's corpus() (real arXiv cs papers with their precomputed
   all-MiniLM-L6-v2 vectors, then synthesised ones).
2. Node A builds both indexes from the database, as a node without snapshots does (`rebuild_*` figures).
   With --workdir the build is kept and a later run only catches A up.
3. A publishes a snapshot (`publish_s`, `snapshot_bytes`); then `--new` papers and their vectors are written.
4. A new node B starts in a fresh process with an empty folder: restore_latest, then open_keyword_index and
   open_vector_index, which catch up on the new papers (`ready_s` = restore + open + catch-up; each part is
   given). Its memory with both indexes open (`rss_mb`, no embedding model loaded) is read from /proc.
5. Unless --no-rebuild-node, node C starts the same way without a snapshot: it rebuilds both indexes from the
   database (`rebuild_node_ready_s`), side by side with B in the same run.
6. B's answers are checked against A's (caught up): the keyword top 10 of title queries and the vector top 10
   of held-out vectors (ties at the 10th score aside), and B must hold every new paper in its keyword index
   and find 100 of them by their own vectors.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from paperboy import db  # noqa: E402
from paperboy.models import Record  # noqa: E402
from paperboy.search import indexer, snapshot  # noqa: E402
from paperboy.search.embed import DEFAULT_MODEL, document_text, text_hash  # noqa: E402
from paperboy.sources.snapshot import parse_line  # noqa: E402
from paperboy.store import embeddings as embedding_store  # noqa: E402
from paperboy.store.papers import upsert_records  # noqa: E402

NOW = datetime(2026, 12, 6, tzinfo=UTC)
BATCH = 5000


def _now() -> datetime:
    return datetime.now(UTC)


def _rss_mb() -> float:
    """Resident memory of this process now, MB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


@contextmanager
def _database(url: str | None, workdir: Path) -> Iterator[str]:
    """The database URL: the one given, or a pgserver whose data lives in workdir/pg."""
    if url:
        yield url
        return
    import pgserver

    pgdata = workdir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)  # noqa: S103 - pgserver runs the server as its own user when we are root
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()


def _load(
    engine: Any, records: list[dict[str, Any]], ids: list[str], vectors: np.ndarray, model: str
) -> None:
    """Papers and their vectors, stored as the embedder stores its own (so nothing is pending)."""
    for s in range(0, len(records), BATCH):
        papers = [parse_line(r, "bench") for r in records[s : s + BATCH]]
        with db.transaction(engine) as conn:
            upsert_records(conn, [Record(p) for p in papers], NOW)
        rows = [
            (
                p.arxiv_id,
                vectors[s + k].astype("<f4").tobytes(),
                text_hash(document_text(p.title, p.abstract)),
            )
            for k, p in enumerate(papers)
        ]
        with db.transaction(engine) as conn:
            embedding_store.save(conn, model, vectors.shape[1], rows, NOW)
        assert [p.arxiv_id for p in papers] == ids[s : s + BATCH]


def _answers(kw: Any, vec: Any, queries: dict[str, Any]) -> dict[str, Any]:
    return {
        "keyword": [[(i, round(s, 3)) for i, s in kw.search(q, 10)] for q in queries["texts"]],
        "vector": [
            [(i, round(s, 4)) for i, s in vec.search(np.asarray(v, np.float32), 10)]
            for v in queries["vectors"]
        ],
    }


def _same(a: list[list[Any]], b: list[list[Any]]) -> float:
    """The share of queries whose top 10 agree: the same scores, and the same papers at each score above the
    10th (papers that tie at the 10th score may be cut differently; the corpus's synthesised papers repeat
    real papers' text, so many papers tie exactly)."""
    same = 0
    for x, y in zip(a, b, strict=True):
        scores = [s for _, s in x]
        if scores != [s for _, s in y]:
            continue
        last = scores[-1] if scores else None
        same += {(i, s) for i, s in map(tuple, x) if s != last} == {
            (i, s) for i, s in map(tuple, y) if s != last
        }
    return round(same / max(len(a), 1), 4)


def node(
    url: str, root: Path, model: str, dim: int, use_snapshot: bool, queries_file: Path
) -> dict[str, Any]:
    """A new node with an empty folder: (restore), open and catch up; its timings, memory and answers."""
    base_rss = _rss_mb()
    engine = db.make_engine(url)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if use_snapshot:
        restored = snapshot.restore(engine, root, model)
        out["restored"] = list(restored.parts)
        out["refused"] = restored.refused
        out["download_s"] = restored.details.get("download_s")
    t1 = time.perf_counter()
    kw = indexer.open_keyword_index(root / snapshot.KEYWORD_DIR, engine, sync=False)
    vec = indexer.open_vector_index(root / snapshot.VECTOR_FILE, engine, model, dim, sync=False)
    t2 = time.perf_counter()
    kw_done = indexer.sync_keyword(engine, kw)
    vec_done = indexer.sync_vector(engine, vec, model)
    t3 = time.perf_counter()
    out.update(
        {
            "restore_s": round(t1 - t0, 2),
            "open_s": round(t2 - t1, 2),
            "catchup_s": round(t3 - t2, 2),
            "ready_s": round(t3 - t0, 2),
            "caught_up_keyword": kw_done,
            "caught_up_vectors": vec_done,
            "rss_mb": _rss_mb(),
            "rss_before_mb": base_rss,
        }
    )
    queries = json.loads(queries_file.read_text())
    out["answers"] = _answers(kw, vec, queries)
    new_ids, new_vectors = queries["new_ids"], np.asarray(queries["new_vectors"], np.float32)
    out["new_in_keyword"] = round(len(kw.holding(new_ids)) / max(len(new_ids), 1), 4)
    sample = range(0, len(new_ids), max(1, len(new_ids) // 100))
    out["new_found_by_vector"] = round(
        sum(vec.search(new_vectors[k], 1)[0][0] == new_ids[k] for k in sample) / len(sample), 4
    )
    out["rss_after_queries_mb"] = _rss_mb()
    out["peak_rss_mb"] = _peak_mb()
    kw.close()
    engine.dispose()
    return out


def _run_node(
    url: str, root: Path, model: str, dim: int, use_snapshot: bool, queries: Path
) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)
    cmd = [
        sys.executable,
        __file__,
        "--node",
        "snapshot" if use_snapshot else "rebuild",
        "--database-url",
        url,
    ]
    cmd += ["--root", str(root), "--model", model, "--dim", str(dim), "--queries-file", str(queries)]
    t = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if result.returncode != 0:
        raise SystemExit(f"node process failed:\n{result.stderr}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["process_s"] = round(wall, 2)  # with Python's start and imports
    return figures


def _later(records: list[dict[str, Any]], vectors: np.ndarray, new: int, run: int) -> tuple[list[Any], ...]:
    """`new` papers written after the snapshot: real papers' text under new ids (new ids every run)."""
    rng = np.random.default_rng(run)
    picks = rng.choice(len(records), size=new, replace=False)
    out_records, out_ids = [], []
    for k, j in enumerate(picks):
        clone = dict(records[j])
        clone["id"] = f"{3500 + run}.{k + 1:05d}"
        out_records.append(clone)
        out_ids.append(clone["id"])
    import search_ann

    return out_records, out_ids, search_ann.synthesise(vectors[picks], new, rng)


def run(
    n: int, new: int, queries: int, seed: int, workdir: Path | None, url: str | None, rebuild_node: bool
) -> dict[str, Any]:
    import search  # bench/search.py: the corpus

    ids, vectors, records, qvecs, info = search.corpus(n, queries, seed)
    query_records: list[dict[str, Any]] = info.pop("queries_from")
    model, dim = DEFAULT_MODEL, int(vectors.shape[1])
    with tempfile.TemporaryDirectory(prefix="paperboy-snapshot-") as tmp:
        root = Path(tmp) if workdir is None else workdir
        root.mkdir(parents=True, exist_ok=True)
        marker = root / "build.json"
        key = {"n": n, "queries": queries, "seed": seed, "model": model, "url": url}
        built = json.loads(marker.read_text()) if marker.is_file() else None
        reused = built is not None and built.get("key") == key
        if not reused and workdir is not None and any(p.name != "pg" for p in root.iterdir()):
            raise SystemExit(f"{root} holds something else than this build; give an empty or new --workdir")
        with _database(url, root) as db_url:
            engine = db.make_engine(db_url)
            db.upgrade(engine)
            a_root = root / "a"
            if not reused:
                t = time.perf_counter()
                _load(engine, records, ids, vectors, model)
                load_s = time.perf_counter() - t
                t = time.perf_counter()
                kw_a = indexer.open_keyword_index(a_root / snapshot.KEYWORD_DIR, engine)
                rebuild_kw = time.perf_counter() - t
                t = time.perf_counter()
                vec_a = indexer.open_vector_index(a_root / snapshot.VECTOR_FILE, engine, model, dim)
                rebuild_vec = time.perf_counter() - t
                built = {
                    "key": key,
                    "runs": 0,
                    "figures": {
                        "db_load_s": round(load_s, 1),
                        "rebuild_keyword_s": round(rebuild_kw, 1),
                        "rebuild_vector_s": round(rebuild_vec, 1),
                    },
                }
            else:
                assert built is not None
                kw_a = indexer.open_keyword_index(a_root / snapshot.KEYWORD_DIR, engine)
                vec_a = indexer.open_vector_index(a_root / snapshot.VECTOR_FILE, engine, model, dim)
            run_no = int(built["runs"]) + 1
            built["runs"] = run_no
            marker.write_text(json.dumps(built))

            published = snapshot.publish_snapshot(engine, kw_a, vec_a, now=_now)

            later_records, later_ids, later_vectors = _later(records, vectors, new, run_no)
            t = time.perf_counter()
            _load(engine, later_records, later_ids, later_vectors, model)
            write_new_s = time.perf_counter() - t

            texts = [" ".join(r["title"].split()[:8]) for r in query_records]
            texts += [" ".join(r["title"].split()[:8]) for r in later_records[: max(1, queries // 4)]]
            qfile = root / "queries.json"
            qfile.write_text(
                json.dumps(
                    {
                        "texts": texts,
                        "vectors": qvecs.tolist(),
                        "new_ids": later_ids,
                        "new_vectors": later_vectors.tolist(),
                    }
                )
            )

            b = _run_node(db_url, root / "b", model, dim, True, qfile)
            c = _run_node(db_url, root / "c", model, dim, False, qfile) if rebuild_node else None

            indexer.sync_keyword(engine, kw_a)
            indexer.sync_vector(engine, vec_a, model)
            truth = _answers(kw_a, vec_a, json.loads(qfile.read_text()))
            kw_a.close()
            with engine.connect() as conn:
                from paperboy.store import index_snapshots as snapshot_store

                stored = len(snapshot_store.all_snapshots(conn))
            engine.dispose()
            shutil.rmtree(root / "b", ignore_errors=True)
            shutil.rmtree(root / "c", ignore_errors=True)

    answers_b = b.pop("answers")
    same_kw = _same(answers_b["keyword"], truth["keyword"])
    same_vec = _same(answers_b["vector"], truth["vector"])
    figures: dict[str, Any] = {
        "n": n,
        "new": new,
        "database": "postgresql" if (url or "postgresql").startswith("postgresql") else "sqlite",
        "snapshot_bytes": published.bytes,
        "snapshot_bytes_per_paper": round(published.bytes / n),
        "snapshot_chunks": published.chunks,
        "publish_s": round(published.seconds, 2),
        "snapshots_kept": stored,
        "write_new_s": round(write_new_s, 2),
        "ready_s": b["ready_s"],
        "restore_s": b["restore_s"],
        "download_s": b["download_s"],
        "open_s": b["open_s"],
        "catchup_s": b["catchup_s"],
        "caught_up_keyword": b["caught_up_keyword"],
        "caught_up_vectors": b["caught_up_vectors"],
        "node_process_s": b["process_s"],
        "rss_mb": b["rss_mb"],
        "rss_before_mb": b["rss_before_mb"],
        "rss_after_queries_mb": b["rss_after_queries_mb"],
        "peak_rss_mb": b["peak_rss_mb"],
        "restored": b["restored"],
        "same_keyword_top10": same_kw,
        "same_vector_top10": same_vec,
        "new_in_keyword": b["new_in_keyword"],
        "new_found_by_vector": b["new_found_by_vector"],
        **built["figures"],
        "rebuild_s": round(built["figures"]["rebuild_keyword_s"] + built["figures"]["rebuild_vector_s"], 1),
        "build_reused": reused,
        **info,
    }
    if c is not None:
        answers_c = c.pop("answers")
        figures.update(
            {
                "rebuild_node_ready_s": c["ready_s"],
                "rebuild_node_rss_mb": c["rss_mb"],
                "rebuild_node_peak_rss_mb": c["peak_rss_mb"],
                "rebuild_node_same_keyword_top10": _same(answers_c["keyword"], truth["keyword"]),
                "rebuild_node_same_vector_top10": _same(answers_c["vector"], truth["vector"]),
                "ready_speedup": round(c["ready_s"] / max(b["ready_s"], 1e-9), 1),
            }
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="papers in the snapshot (default 100,000)")
    parser.add_argument("--new", type=int, default=5000, help="papers written after it (default 5,000)")
    parser.add_argument("--queries", type=int, default=100, help="queries compared between nodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="build here (database included) and keep it")
    parser.add_argument("--database-url", help="use this database instead of starting pgserver")
    parser.add_argument(
        "--no-rebuild-node",
        action="store_true",
        help="skip the node that rebuilds from the database (an hour at 1M; the build's figures stand in)",
    )
    # a node process (internal)
    parser.add_argument("--node", choices=["snapshot", "rebuild"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--queries-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.node:
        figures = node(
            args.database_url, args.root, args.model, args.dim, args.node == "snapshot", args.queries_file
        )
        print(json.dumps(figures))
        return 0
    if args.n < 100 or args.new < 1:
        parser.error("--n must be at least 100 and --new at least 1")
    figures = run(
        args.n, args.new, args.queries, args.seed, args.workdir, args.database_url, not args.no_rebuild_node
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
