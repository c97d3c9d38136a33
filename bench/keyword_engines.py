"""BM25 engines compared on real abstracts: tantivy (paperboy's KeywordIndex), bm25s and SQLite FTS5.

    python bench/keyword_engines.py                    # the 74,728 abstracts in ../shared/data, 200 queries
    python bench/keyword_engines.py --limit 2000 --queries 20 --engines tantivy,fts5   # a toy run

For each engine, one JSON line: `build_s` (index every paper from scratch), `disk_bytes` (the index on
disk), `p50_ms` / `p99_ms` (top 10) and `p50_ms_k100` (top 100, what hybrid search asks for), one query at
a time on one thread, after a warm-up pass; `update_ms` (replace one paper and make it searchable) and
`incremental` (whether that works without rebuilding the index); `ndcg@10` on each IR collection of
../shared/data/ir_benchmarks (bench/relevance.py's scoring). The queries are OR-queries of the words of
random papers' titles (seeded), such as a person types a topic.

The engines get the same text and an equivalent setup: English stemming, title + abstract + authors.
- tantivy: paperboy.search.keyword.KeywordIndex as it ships (one writer thread).
- bm25s (numpy backend, and numba where it is installed): one field of title + abstract + authors,
  PyStemmer's English stemmer; an in-memory matrix saved with `save`; no update in place (rebuild).
- fts5: SQLite's FTS5, `porter unicode61` tokenizer, external-content table over a papers table (the size
  counted is the FTS index alone), `bm25()` ranking with the title at weight 1, quoted terms joined by OR.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relevance import DEFAULT_DIR as IR_DIR
from relevance import collections, evaluate, load_collection

from paperboy.search.keyword import KeywordDoc, KeywordIndex

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = (
    REPO_ROOT.parent / "shared" / "data" / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
)
_WORD = re.compile(r"\w+")
# Lucene's English stop words, which tantivy's `stopword("english")` filter drops from paperboy's queries:
# every engine's queries drop the same ones.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these"  # noqa: SIM905
    " they this to was will with".split()
)


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    abstract: str
    authors: tuple[str, ...]


def read_docs(path: Path, limit: int | None) -> list[Doc]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    docs: list[Doc] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(docs) >= limit:
                break
            if line.strip():
                r = json.loads(line)
                docs.append(
                    Doc(
                        str(r["id"]),
                        r.get("title") or "",
                        r.get("summary") or "",
                        tuple(r.get("authors") or ()),
                    )
                )
    return docs


def title_queries(docs: list[Doc], n: int, seed: int = 0) -> list[str]:
    """The titles of `n` random papers, as typed: the words, without punctuation."""
    rng = random.Random(seed)
    return [" ".join(_WORD.findall(d.title)) for d in rng.sample(docs, min(n, len(docs)))]


class Engine:
    name = ""
    incremental = False

    def build(self, docs: list[Doc], folder: Path) -> None: ...
    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        raise NotImplementedError

    def update(self, doc: Doc) -> None: ...
    def close(self) -> None: ...


class Tantivy(Engine):
    name = "tantivy"
    incremental = True

    def build(self, docs: list[Doc], folder: Path) -> None:
        self.index = KeywordIndex.open(folder)
        self.index.upsert([KeywordDoc(d.id, d.title, d.abstract, d.authors) for d in docs])
        self.index.commit()

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.index.search(query, k)

    def update(self, doc: Doc) -> None:
        self.index.upsert([KeywordDoc(doc.id, doc.title, doc.abstract, doc.authors)])
        self.index.commit()

    def close(self) -> None:
        self.index.close()


class Bm25s(Engine):
    incremental = False

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"bm25s ({backend})"

    def build(self, docs: list[Doc], folder: Path) -> None:
        import bm25s
        import Stemmer

        self.stemmer = Stemmer.Stemmer("english")
        self.ids = [d.id for d in docs]
        texts = [f"{d.title}\n{d.abstract}\n{', '.join(d.authors)}" for d in docs]
        tokens = bm25s.tokenize(texts, stopwords=None, stemmer=self.stemmer, show_progress=False)
        self.retriever = bm25s.BM25(backend=self.backend)
        self.retriever.index(tokens, show_progress=False)
        self.retriever.save(str(folder))
        self.bm25s = bm25s

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        tokens = self.bm25s.tokenize(
            [query], stopwords=sorted(STOPWORDS), stemmer=self.stemmer, show_progress=False, return_ids=False
        )
        if not tokens or not tokens[0]:
            return []
        k = min(k, len(self.ids))
        docs, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [(self.ids[int(j)], float(s)) for j, s in zip(docs[0], scores[0], strict=True) if s > 0]


class Fts5(Engine):
    name = "sqlite fts5"
    incremental = True

    def build(self, docs: list[Doc], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "fts.sqlite3"
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE papers (rowid INTEGER PRIMARY KEY, arxiv_id TEXT UNIQUE, title TEXT, abstract TEXT,"
            " authors TEXT)"
        )
        self.db.executemany(
            "INSERT INTO papers (arxiv_id, title, abstract, authors) VALUES (?, ?, ?, ?)",
            [(d.id, d.title, d.abstract, ", ".join(d.authors)) for d in docs],
        )
        self.db.commit()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.base_bytes = self.path.stat().st_size
        self.db.execute(
            "CREATE VIRTUAL TABLE fts USING fts5(title, abstract, authors, content='papers',"
            " content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')"
        )
        self.db.execute("INSERT INTO fts (fts) VALUES ('rebuild')")
        self.db.commit()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def disk_bytes(self) -> int:
        return self.path.stat().st_size - self.base_bytes

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        every = list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))
        words = ([w for w in every if w not in STOPWORDS] or every)[:64]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        rows = self.db.execute(
            "SELECT p.arxiv_id, bm25(fts) AS s FROM fts JOIN papers p ON p.rowid = fts.rowid"
            " WHERE fts MATCH ? ORDER BY s LIMIT ?",
            (match, k),
        ).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    def update(self, doc: Doc) -> None:
        old = self.db.execute(
            "SELECT rowid, title, abstract, authors FROM papers WHERE arxiv_id = ?", (doc.id,)
        ).fetchone()
        if old is not None:
            self.db.execute(
                "INSERT INTO fts (fts, rowid, title, abstract, authors) VALUES ('delete', ?, ?, ?, ?)", old
            )
            self.db.execute(
                "UPDATE papers SET title = ?, abstract = ?, authors = ? WHERE rowid = ?",
                (doc.title, doc.abstract, ", ".join(doc.authors), old[0]),
            )
            self.db.execute(
                "INSERT INTO fts (rowid, title, abstract, authors) VALUES (?, ?, ?, ?)",
                (old[0], doc.title, doc.abstract, ", ".join(doc.authors)),
            )
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(engine: Engine, docs: list[Doc], queries: list[str], workdir: Path) -> dict[str, Any]:
    folder = workdir / engine.name.replace(" ", "-").replace("(", "").replace(")", "")
    t = time.perf_counter()
    engine.build(docs, folder)
    build_s = time.perf_counter() - t
    disk = engine.disk_bytes() if isinstance(engine, Fts5) else folder_bytes(folder)
    for q in queries:  # warm-up (and numba's compilation)
        engine.search(q, 10)
    top10 = [timed(functools.partial(engine.search, q, 10)) for q in queries]
    top100 = [timed(functools.partial(engine.search, q, 100)) for q in queries]
    out: dict[str, Any] = {
        "engine": engine.name,
        "n": len(docs),
        "build_s": round(build_s, 1),
        "disk_bytes": disk,
        "p50_ms": round(statistics.median(top10), 3),
        "p99_ms": round(percentile(top10, 0.99), 3),
        "p50_ms_k100": round(statistics.median(top100), 3),
        "incremental": engine.incremental,
    }
    if engine.incremental:
        changed = Doc(docs[0].id, docs[0].title + " revised", docs[0].abstract, docs[0].authors)
        out["update_ms"] = round(
            statistics.median(timed(lambda: engine.update(changed)) for _ in range(5)), 1
        )
    else:
        out["update_ms"] = round(build_s * 1000, 1)  # the only way to change a paper is a rebuild
    engine.close()
    return out


def relevance(make: Callable[[], Engine], workdir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for folder in collections(IR_DIR):
        coll = load_collection(folder)
        engine = make()
        docs = [
            Doc(i, t, x, tuple(a.strip() for a in au.split(" and ") if a.strip()))
            for i, (t, x, au) in coll.docs.items()
        ]
        engine.build(docs, workdir / f"ir-{coll.name}-{engine.name.replace(' ', '-')}")
        run = {q: engine.search(text, 100) for q, text in coll.queries.items()}
        engine.close()
        out[f"ndcg@10 {coll.name}"] = evaluate(run, coll.qrels)["ndcg@10"]
    return out


ENGINES: dict[str, Callable[[], Engine]] = {
    "tantivy": Tantivy,
    "bm25s": lambda: Bm25s("numpy"),
    "bm25s-numba": lambda: Bm25s("numba"),
    "fts5": Fts5,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--limit", type=int, default=None, help="index the first N papers only")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {', '.join(ENGINES)}")
    args = ap.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file} is missing", file=sys.stderr)
        return 2
    docs = read_docs(args.file, args.limit)
    queries = title_queries(docs, args.queries)
    workdir = Path(tempfile.mkdtemp(prefix="paperboy-kw-engines-"))
    try:
        for name in args.engines.split(","):
            figures = measure(ENGINES[name](), docs, queries, workdir)
            figures.update(relevance(ENGINES[name], workdir))
            print(json.dumps(figures), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
