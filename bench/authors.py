"""Do names find people? The author check of docs/search.md on the real arXiv snapshot.

    python bench/authors.py --workdir /tmp/pb-authors        # build once (about 3 minutes here), keep it
    python bench/authors.py --workdir /tmp/pb-authors --sample 0   # every author with >= 5 papers
    python bench/authors.py --toy                            # CI's size: the repo's fixture papers

Builds (or reuses, in `--workdir`) a SQLite hub of the 74,728 papers of
../shared/data/arxiv_metadata/arxiv_daily_cs_*.jsonl.gz with their precomputed all-MiniLM-L6-v2 vectors
(../shared/data/embeddings/), the tantivy keyword index and the usearch vector index, as `paperboy serve`
keeps them. Then, through paperboy's real `Searcher` (the query embedded by the real model), for authors with
at least `--min-papers` papers (a seeded sample of `--sample` of them, plus the people the issue named):

- `name`: the query is the author's name as papers write it; it passes when at least 9 of the top 10 are
  theirs, or all of their papers when they have fewer than 10;
- `name_topic`: the name followed by two words of one of their titles ("Yann LeCun self-supervised"); the same
  rule, and their paper with those words must be among the top 10.

"Theirs": a paper with an author entry equal to the name after NFC, case folding and accent folding. Prints
one JSON object: the fractions passing, the failures (up to 20), and the search latency (p50, p99). Exits 3
when the embedding model cannot be loaded.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from paperboy import db  # noqa: E402
from paperboy.models import Record  # noqa: E402
from paperboy.search import indexer  # noqa: E402
from paperboy.search.hybrid import Searcher  # noqa: E402
from paperboy.search.query import SearchQuery  # noqa: E402
from paperboy.sources.snapshot import parse_line  # noqa: E402
from paperboy.store.papers import upsert_records  # noqa: E402

SHARED = REPO_ROOT.parent / "shared" / "data"
LISTING = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
VECTORS = SHARED / "embeddings" / "minilm_arxiv_cs_f16.npy"
IDS = SHARED / "embeddings" / "minilm_arxiv_cs_ids.txt"
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "arxiv_listing_small.jsonl"
NOW = datetime(2026, 7, 2, tzinfo=UTC)
NAMED = ("Yann LeCun", "Percy Liang", "Kaiming He", "Song Han")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "for",
        "from",
        "in",
        "of",
        "on",
        "the",
        "to",
        "via",
        "with",
        "using",
        "towards",
        "toward",
        "is",
        "are",
        "by",
        "at",
    ]
)


def name_key(name: str) -> str:
    """The bench's own idea of "the same name": NFC, accents dropped, case folded, words only."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFC", name))
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return " ".join(re.findall(r"\w+", folded))


def _records(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def build(root: Path, records: list[dict[str, Any]], vectors: np.ndarray | None, ids: list[str]) -> None:
    """A SQLite hub of `records` with both indexes in `root` (vectors: rows for `ids`, or embedded here)."""
    engine = db.make_engine(f"sqlite:///{root / 'hub.sqlite3'}")
    db.upgrade(engine)
    for s in range(0, len(records), 5000):
        batch = [Record(parse_line(r, "bench")) for r in records[s : s + 5000]]
        with engine.begin() as conn:
            upsert_records(conn, batch, NOW)
    indexer.open_keyword_index(root / "keyword", engine).close()
    if vectors is not None:
        from paperboy.search.vector_import import import_vectors

        import_vectors(engine, "all-MiniLM-L6-v2", vectors, ids, lambda: NOW)
    engine.dispose()


def open_searcher(root: Path, embedder: Any) -> tuple[Any, Searcher]:
    engine = db.make_engine(f"sqlite:///{root / 'hub.sqlite3'}")
    db.upgrade(engine)
    keyword = indexer.open_keyword_index(root / "keyword", engine)  # rebuilt here after a schema change
    keyword.close()
    vector = indexer.open_vector_index(root / "vectors.hnsw", engine, embedder.model, embedder.dim)
    if len(vector) == 0:  # the toy hub: embed its papers now
        indexer.embed_pending(engine, embedder, vector, lambda: NOW)
    return engine, Searcher(keyword, vector, embedder)


def _passes(top: list[str], theirs: set[str]) -> bool:
    need = min(len(theirs), 9) if len(theirs) >= 10 else len(theirs)
    return sum(1 for i in top if i in theirs) >= need


def check(
    engine: Any, searcher: Searcher, records: list[dict[str, Any]], min_papers: int, sample: int, seed: int
) -> dict[str, Any]:
    papers: dict[str, set[str]] = defaultdict(set)
    spelled: dict[str, str] = {}
    titles = {r["id"]: r["title"] for r in records}
    for r in records:
        for a in r.get("authors") or []:
            key = name_key(a)
            if len(key.split()) >= 2:
                papers[key].add(r["id"])
                spelled.setdefault(key, a)
    eligible = sorted(k for k, v in papers.items() if len(v) >= min_papers)
    rng = random.Random(seed)
    chosen = eligible if sample <= 0 or sample >= len(eligible) else rng.sample(eligible, sample)
    chosen = sorted({*chosen, *(name_key(n) for n in NAMED if name_key(n) in papers)})
    results: dict[str, list[bool]] = {"name": [], "name_topic": []}
    failures: list[dict[str, Any]] = []
    times: list[float] = []
    with engine.connect() as conn:
        for key in chosen:
            theirs = papers[key]
            name = spelled[key]
            one = sorted(theirs)[rng.randrange(len(theirs))]
            words = [w for w in re.findall(r"[A-Za-z][\w-]+", titles[one]) if w.lower() not in _STOP][:2]
            for kind, query in (("name", name), ("name_topic", " ".join([name, *words]))):
                t = time.perf_counter()
                res = searcher.search(conn, SearchQuery(query, limit=10))
                times.append(time.perf_counter() - t)
                top = [h.item.paper.arxiv_id for h in res.hits]
                ok = _passes(top, theirs) and (kind == "name" or one in top or not words)
                results[kind].append(ok)
                if not ok and len(failures) < 20:
                    failures.append(
                        {
                            "query": query,
                            "papers": len(theirs),
                            "theirs_in_top10": sum(1 for i in top if i in theirs),
                            "first_of_theirs_at": next(
                                (n for n, i in enumerate(top, 1) if i in theirs), None
                            ),
                        }
                    )
    ms = sorted(t * 1000 for t in times)
    return {
        "authors_eligible": len(eligible),
        "authors_checked": len(chosen),
        "min_papers": min_papers,
        "pass_name": round(sum(results["name"]) / max(len(chosen), 1), 4),
        "pass_name_topic": round(sum(results["name_topic"]) / max(len(chosen), 1), 4),
        "named": {n: results["name"][chosen.index(name_key(n))] for n in NAMED if name_key(n) in chosen},
        "search_p50_ms": round(statistics.median(ms), 2) if ms else None,
        "search_p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2) if ms else None,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, help="build here and keep it; a later run reuses it")
    ap.add_argument("--toy", action="store_true", help="the repo's fixture papers, embedded here (CI)")
    ap.add_argument("--min-papers", type=int, default=5)
    ap.add_argument("--sample", type=int, default=300, help="authors checked (0: every eligible one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from paperboy.search.embed import load_embedder

    try:
        embedder = load_embedder(None, threads=1)
    except Exception as exc:  # the model is an optional install
        print(f"the embedding model cannot be loaded: {exc}", file=sys.stderr)
        return 3
    real = not args.toy and LISTING.is_file() and VECTORS.is_file() and IDS.is_file()
    records = _records(LISTING if real else FIXTURE)
    with tempfile.TemporaryDirectory(prefix="paperboy-authors-") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        marker = root / "build.json"
        key = {"real": real, "papers": len(records), "model": embedder.model}
        if not marker.is_file() or json.loads(marker.read_text()) != key:
            for p in root.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            started = time.perf_counter()
            vectors = np.load(VECTORS) if real else None
            build(root, records, vectors, IDS.read_text().split() if real else [])
            print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            marker.write_text(json.dumps(key))
        engine, searcher = open_searcher(root, embedder)
        min_papers = args.min_papers if real else min(args.min_papers, 2)
        out = check(engine, searcher, records, min_papers, args.sample, args.seed)
        engine.dispose()
    print(json.dumps({"papers": len(records), "real": real, **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
