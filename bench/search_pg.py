"""Search inside PostgreSQL (issue 13, design (a)) against the single-machine path, side by side.

    python bench/search_pg.py --n 100000                 # 200 queries; both paths built in a temp folder
    python bench/search_pg.py --n 1000000 --keep /tmp/pbpg1m   # keep both builds; run again to time only
    python bench/search_pg.py --n 500 --queries 10 --relevance-limit-queries 2 --relevance-limit-docs 20  # CI

Design (a): every web node holds only the embedding model and asks PostgreSQL, which holds both indexes:
- meaning: pgvector's HNSW index (`vector_ip_ops`, inner product over the unit vectors, i.e. cosine) on a
  table `paper_vectors (arxiv_id, embedding vector(384))`, built with the usearch index's parameters
  (paperboy/search/vector.py: M = 24, efConstruction = 128) unless told otherwise;
- keywords: a stored generated column `papers.search_tsv` = setweight(to_tsvector('english', title), 'A') ||
  setweight(to_tsvector('english', abstract), 'B'), with a GIN index; a query is its `plainto_tsquery`
  lexemes OR-ed (BM25 in tantivy is an OR query too); ranked (`--rank`, KEYWORD below) by default by
  BM25's idf of each query word times ts_rank, from a document-frequency table made with ts_stat;
- one SQL statement per search: FTS top 100 + HNSW top 100 + weighted RRF (k = 20, keyword 0.7, vector 1; a
  keyword hit without a vector scored at both weights; a meaning-only hit kept at cosine >= 0.4 or when it
  holds a query word, as paperboy.search.fusion.fuse_search) + the page of 20 rows joined from `papers`;
  `hybrid_counted` also counts every paper matching a query word, as the searcher's "N papers match".

PostgreSQL 16 and pgvector 0.6.2 come from the `pgserver` wheel (as root the server runs as the `pgserver`
user). Papers are loaded through paperboy's own schema and store (`db.upgrade`, `upsert_records`), so the
table is the one a deployment has; the search column, table and indexes are the bench's own.

Papers, vectors and queries are bench/search.py's `corpus()`: the 74,728 real arXiv cs papers of
../shared/data with their precomputed all-MiniLM-L6-v2 vectors, synthesised papers and vectors past that;
`--queries` real papers held out (their vectors for recall@10 against numpy exact search and the vector
query's latency, the first eight words of their titles for end-to-end searches embedded by the real model).
The single-machine path is bench/search.py's `run` at the same N, seed and queries, in the same run: built
and timed first, and timed again after PostgreSQL's queries (`single_again`), close in time to them.

Also measured: index build times and sizes, PostgreSQL's CPU per search (its backend process), its memory
(shared_buffers; PSS summed over its processes), a web node's memory and time to be ready (a new process:
imports, model, connect or open the index files, first search), the cost of a new vector and of a changed
abstract (how soon a paper is findable), and nDCG@10 / recall@100 on the IR collections of
../shared/data/ir_benchmarks (bench/relevance.py's single-machine modes and PostgreSQL's FTS and hybrid).
Prints one JSON object. Exits 4 when PostgreSQL or pgvector is unavailable (the reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import search  # noqa: E402
import search_ann  # noqa: E402

DEPTH = 100  # candidates per list, as paperboy.search.hybrid
PAGE = 20
EXIT_UNAVAILABLE = 4


SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE paper_vectors (arxiv_id varchar(64) PRIMARY KEY, embedding vector({dim}) NOT NULL)",
]
TSV_COLUMN = (
    "ALTER TABLE papers ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', title), 'A') || "
    "setweight(to_tsvector('english', abstract), 'B')) STORED"
)
GIN_INDEX = "CREATE INDEX ix_papers_search_tsv ON papers USING gin (search_tsv)"
HNSW_INDEX = (
    "CREATE INDEX ix_paper_vectors_hnsw ON paper_vectors USING hnsw (embedding vector_ip_ops) "
    "WITH (m = {m}, ef_construction = {ef_construction})"
)
# A small table of its own for an IR collection, the columns the page statement reads.
RELEVANCE_SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE papers (arxiv_id varchar(64) PRIMARY KEY, title text NOT NULL, abstract text NOT NULL, "
    "authors jsonb, categories jsonb, published_at timestamptz)",
    "CREATE TABLE paper_vectors (arxiv_id varchar(64) PRIMARY KEY, embedding vector({dim}) NOT NULL)",
]

VECTOR_TOP = "SELECT arxiv_id FROM paper_vectors ORDER BY embedding <#> %(v)s::vector LIMIT %(k)s"

# Document frequencies for the "idf" and "bm25" rankings: PostgreSQL keeps none, so a table made from
# ts_stat (in a deployment, a periodic job would refresh it; a word it lacks counts as the rarest).
IDF_TABLES = [
    "DROP TABLE IF EXISTS lexeme_df, lexeme_stats",
    "CREATE TABLE lexeme_df AS SELECT word, ndoc FROM ts_stat('SELECT search_tsv FROM papers')",
    "ALTER TABLE lexeme_df ADD PRIMARY KEY (word)",
    "CREATE TABLE lexeme_stats AS "
    "SELECT count(*)::float8 AS papers, avg(length(search_tsv))::float8 AS avg_len FROM papers",
]

# The keyword list (`--rank`), the top DEPTH papers holding a query word. PostgreSQL has no BM25:
# - ts_rank*, ts_rank_cd*: its own ranking functions over the OR-ed query (the `_len` ones divide by
#   1 + log(document length)); no inverse document frequency, so common words weigh as much as rare ones;
# - idf: the sum over the query's words of idf(word) x (its count in the query) x ts_rank(document, word,
#   1), idf from `lexeme_df` as BM25's;
# - bm25: BM25 (k1 1.2, b 0.75) with the word's count read from the tsvector (unnest), the document's length
#   as its number of distinct words.
# Fixed texts of this module, never user input ({depth} is DEPTH).
_OR_RANKED = """,
kw AS (
  SELECT arxiv_id, row_number() OVER (ORDER BY score DESC, arxiv_id) AS r FROM (
    SELECT p.arxiv_id, {expr} AS score FROM papers p, q WHERE p.search_tsv @@ q.tsq
    ORDER BY score DESC, p.arxiv_id LIMIT {{depth}}) t
)"""
_TERMS = """,
terms AS MATERIALIZED (
  SELECT t.lexeme, format('%%L', t.lexeme)::tsquery AS tq, array_length(t.positions, 1) AS qtf,
    ln(1 + (s.papers - coalesce(d.ndoc, 0) + 0.5) / (coalesce(d.ndoc, 0) + 0.5)) AS idf
  FROM unnest(to_tsvector('english', %(q)s)) t LEFT JOIN lexeme_df d ON d.word = t.lexeme, lexeme_stats s
)"""
_BY_TERM = """,
kw AS (
  SELECT arxiv_id, row_number() OVER (ORDER BY score DESC, arxiv_id) AS r FROM (
    SELECT p.arxiv_id, sum({expr}) AS score FROM papers p JOIN terms t ON p.search_tsv @@ t.tq{join}
    GROUP BY p.arxiv_id ORDER BY score DESC, p.arxiv_id LIMIT {{depth}}) s
)"""
_TF = (
    ", LATERAL (SELECT coalesce(max(array_length(u.positions, 1)), 0) AS tf "
    "FROM unnest(p.search_tsv) u WHERE u.lexeme = t.lexeme) f, lexeme_stats ls"
)
KEYWORD = {
    "ts_rank": _OR_RANKED.format(expr="ts_rank(p.search_tsv, q.tsq)"),
    "ts_rank_len": _OR_RANKED.format(expr="ts_rank(p.search_tsv, q.tsq, 1)"),
    "ts_rank_cd": _OR_RANKED.format(expr="ts_rank_cd(p.search_tsv, q.tsq)"),
    "ts_rank_cd_len": _OR_RANKED.format(expr="ts_rank_cd(p.search_tsv, q.tsq, 1)"),
    "idf": _TERMS + _BY_TERM.format(expr="t.idf * t.qtf * ts_rank(p.search_tsv, t.tq, 1)", join=""),
    "bm25": _TERMS
    + _BY_TERM.format(
        expr="t.idf * t.qtf * f.tf * 2.2 / (f.tf + 1.2 * (0.25 + 0.75 * length(p.search_tsv) / ls.avg_len))",
        join=_TF,
    ),
}
DEFAULT_RANK = "idf"
NEEDS_IDF = {"idf", "bm25"}

_QUERY = """
WITH q AS MATERIALIZED (
  SELECT replace(plainto_tsquery('english', %(q)s)::text, ' & ', ' | ')::tsquery AS tsq
){keyword}"""
# The statements are fixed texts of this module (the rankings of KEYWORD, DEPTH): never user input.
FTS_TOP = _QUERY + " SELECT arxiv_id FROM kw ORDER BY r"  # noqa: S608
HYBRID = (
    _QUERY  # noqa: S608
    + """,
vec AS (
  SELECT arxiv_id, sim, row_number() OVER (ORDER BY sim DESC, arxiv_id) AS r FROM (
    SELECT arxiv_id, -(embedding <#> %(v)s::vector) AS sim FROM paper_vectors
    ORDER BY embedding <#> %(v)s::vector LIMIT {{depth}}) t
),
fused AS (
  SELECT coalesce(kw.arxiv_id, vec.arxiv_id) AS arxiv_id, least(kw.r, vec.r) AS best,
    coalesce(0.7 / (20 + kw.r), 0) + coalesce(1.0 / (20 + vec.r), 0)
    + CASE WHEN vec.r IS NULL
        AND NOT EXISTS (SELECT 1 FROM paper_vectors pv WHERE pv.arxiv_id = kw.arxiv_id)
      THEN 1.0 / (20 + kw.r) ELSE 0 END AS score
  FROM kw FULL JOIN vec ON kw.arxiv_id = vec.arxiv_id
  WHERE kw.r IS NOT NULL OR vec.sim >= 0.4
    OR EXISTS (SELECT 1 FROM papers w, q WHERE w.arxiv_id = vec.arxiv_id AND w.search_tsv @@ q.tsq)
)
SELECT p.arxiv_id, p.title, p.abstract, p.authors, p.categories, p.published_at, f.score{count}
FROM fused f JOIN papers p ON p.arxiv_id = f.arxiv_id
ORDER BY f.score DESC, f.best, f.arxiv_id LIMIT %(limit)s"""
)
COUNT = ", (SELECT count(*) FROM papers c, q WHERE c.search_tsv @@ q.tsq) AS matches"


def statement(template: str, rank: str, counted: bool = False) -> str:
    """The SQL text of `template` (FTS_TOP or HYBRID) with the keyword ranking `rank`."""
    return template.format(keyword=KEYWORD[rank], count=COUNT if counted else "").format(depth=DEPTH)


class Unavailable(Exception):
    """PostgreSQL or pgvector cannot be used here (the reason)."""


def vector_literal(v: np.ndarray) -> str:
    return "[" + ",".join(map("{:.7g}".format, np.asarray(v, dtype=np.float32).tolist())) + "]"


def _ms(samples: Sequence[float]) -> dict[str, float]:
    return {"p50_ms": search_ann._pct(list(samples), 50), "p99_ms": search_ann._pct(list(samples), 99)}


# -- the server --------------------------------------------------------------------------------------------


@contextmanager
def postgres(pgdata: Path, settings: dict[str, str], keep: bool) -> Iterator[Any]:
    """A pgserver PostgreSQL in `pgdata` (reused when it holds one), restarted once so that `settings`
    (shared_buffers among them) hold; stopped afterwards, and deleted unless `keep`."""
    try:
        import pgserver
        import psycopg
        from psycopg import sql
    except ImportError as exc:
        raise Unavailable(f"pgserver or psycopg is not installed ({exc})") from exc
    try:
        first = pgserver.get_server(pgdata, cleanup_mode="stop")
        with psycopg.connect(first.get_uri(), autocommit=True) as c:
            for name, value in settings.items():
                c.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
            try:
                c.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:
                raise Unavailable(f"pgvector is not installed in this PostgreSQL ({exc})") from exc
        first.cleanup()  # stops it: shared_buffers takes a restart
        server = pgserver.get_server(pgdata, cleanup_mode="stop" if keep else "delete")
    except Unavailable:
        raise
    except Exception as exc:
        raise Unavailable(f"pgserver could not start a server in {pgdata} ({exc})") from exc
    try:
        yield server
    finally:
        server.cleanup()


def database_uri(server: Any, name: str) -> str:
    """The psycopg URI of database `name`, created when missing."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.get_uri(), autocommit=True) as c:
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return str(server.get_uri(name))


def _pss_mb(pid: int) -> float:
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    except OSError:
        return 0.0
    return total / 1024


def server_memory(server: Any) -> dict[str, Any]:
    """PostgreSQL's resident memory: PSS summed over the postmaster and its children (shared memory counted
    once), and the largest single RSS."""
    import psutil

    root = psutil.Process(server.get_pid())
    procs = [root, *root.children(recursive=True)]
    return {
        "pss_mb": round(sum(_pss_mb(p.pid) for p in procs)),
        "processes": len(procs),
        "largest_rss_mb": round(max(p.memory_info().rss for p in procs) / 2**20),
    }


def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


# -- building ----------------------------------------------------------------------------------------------


def copy_vectors(conn: Any, ids: Sequence[str], vectors: np.ndarray) -> None:
    with conn.cursor() as cur, cur.copy("COPY paper_vectors (arxiv_id, embedding) FROM STDIN") as copy:
        for i, v in zip(ids, vectors, strict=True):
            copy.write_row((i, vector_literal(v)))


def _timed(conn: Any, stmt: str) -> float:
    t = time.perf_counter()
    conn.execute(stmt)
    return round(time.perf_counter() - t, 1)


def build(
    uri: str,
    ids: list[str],
    vectors: np.ndarray,
    records: list[dict[str, Any]],
    m: int,
    ef_construction: int,
    maintenance_work_mem: str,
    workers: int,
) -> dict[str, Any]:
    """Load the papers through paperboy's store, then the vectors, the search column and both indexes."""
    import psycopg

    from paperboy import db
    from paperboy.models import Record
    from paperboy.sources.snapshot import parse_line
    from paperboy.store.papers import upsert_records

    engine = db.make_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    db.upgrade(engine)
    t = time.perf_counter()
    for s in range(0, len(records), 5000):
        batch = [Record(parse_line(r, "bench")) for r in records[s : s + 5000]]
        with engine.begin() as conn:
            upsert_records(conn, batch, search.NOW)
    engine.dispose()
    out: dict[str, Any] = {"db_load_s": round(time.perf_counter() - t, 1)}
    notices: list[str] = []
    with psycopg.connect(uri, autocommit=True) as c:

        def notice(d: Any) -> None:  # pgvector says when the graph outgrows maintenance_work_mem
            if "skipping" not in str(d.message_primary):
                notices.append(str(d.message_primary))

        c.add_notice_handler(notice)
        for stmt in SCHEMA:
            c.execute(stmt.format(dim=vectors.shape[1]))
        t = time.perf_counter()
        copy_vectors(c, ids, vectors)
        out["vector_load_s"] = round(time.perf_counter() - t, 1)
        out["tsv_column_s"] = _timed(c, TSV_COLUMN)
        set_config(c, "maintenance_work_mem", maintenance_work_mem)
        set_config(c, "max_parallel_maintenance_workers", workers)
        out["gin_build_s"] = _timed(c, GIN_INDEX)
        t = time.perf_counter()
        for stmt in IDF_TABLES:
            c.execute(stmt)
        out["idf_tables_s"] = round(time.perf_counter() - t, 1)
        out["hnsw_build_s"] = _timed(c, HNSW_INDEX.format(m=m, ef_construction=ef_construction))
        out["vacuum_analyze_s"] = _timed(c, "VACUUM ANALYZE papers, paper_vectors")
    out["notices"] = notices
    return out


def set_config(conn: Any, name: str, value: object) -> None:
    """SET name = value for the session, the value as a parameter."""
    conn.execute("SELECT set_config(%s, %s, false)", (name, str(value)))


def sizes(uri: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(uri) as c:
        row = c.execute(
            "SELECT pg_relation_size('ix_paper_vectors_hnsw'), pg_total_relation_size('paper_vectors'), "
            "pg_relation_size('ix_papers_search_tsv'), pg_total_relation_size('papers'), "
            "(SELECT sum(pg_column_size(search_tsv)) FROM papers), "
            "(SELECT count(*) FROM paper_vectors), pg_database_size(current_database())"
        ).fetchone()
    assert row is not None
    hnsw, vec_table, gin, papers, tsv, n, database = (int(x or 0) for x in row)
    return {
        "hnsw_bytes_per_paper": round(hnsw / n),
        "vector_table_bytes_per_paper": round((vec_table - hnsw) / n),
        "gin_bytes_per_paper": round(gin / n),
        "tsv_column_bytes_per_paper": round(tsv / n),
        "papers_table_bytes_per_paper": round((papers - gin) / n),
        "database_bytes": database,
    }


# -- timing ------------------------------------------------------------------------------------------------


def vector_part(
    uri: str, ids: list[str], vectors: np.ndarray, qvecs: np.ndarray, ef_values: Sequence[int]
) -> dict[str, Any]:
    """recall@10 against numpy exact search and latency of the HNSW top-10 query, for each hnsw.ef_search."""
    import psycopg

    with search_ann._one_blas_thread():
        truth = [{ids[j] for j in search_ann.exact_top(vectors, q)} for q in qvecs]
    literals = [vector_literal(q) for q in qvecs]
    out: dict[str, Any] = {}
    with psycopg.connect(uri, autocommit=True) as c:
        set_config(c, "hnsw.ef_search", max(ef_values))
        for lit in literals:  # one pass first: the graph's pages into shared_buffers
            c.execute(VECTOR_TOP, {"v": lit, "k": search_ann.K}, prepare=True).fetchall()
        for ef in ef_values:
            set_config(c, "hnsw.ef_search", ef)
            for lit in literals[:5]:  # warm the plan and the pages
                c.execute(VECTOR_TOP, {"v": lit, "k": search_ann.K}, prepare=True).fetchall()
            times: list[float] = []
            found = 0
            for lit, want in zip(literals, truth, strict=True):
                t = time.perf_counter()
                got = c.execute(VECTOR_TOP, {"v": lit, "k": search_ann.K}, prepare=True).fetchall()
                times.append(time.perf_counter() - t)
                found += len(want & {r[0] for r in got})
            out[str(ef)] = {"recall_at_10": round(found / (search_ann.K * len(qvecs)), 4), **_ms(times)}
    return out


def hybrid_part(
    uri: str, texts: list[str], embedder: Any, ef: int, rank: str, also: Sequence[str], server: Any
) -> dict[str, Any]:
    """End to end: the query's embedding by the real model + one SQL statement returning the page of 20
    (`hybrid`; `hybrid_counted` also counts the matches; `keyword_only` is the FTS top 100 alone; `hybrid_X`
    with the keyword ranking X of `also`). Then `server_memory`, while the searching backend is still up
    (its share of the shared buffers it touched leaves with it)."""
    import psycopg

    runs = [
        ("hybrid", statement(HYBRID, rank)),
        ("hybrid_counted", statement(HYBRID, rank, counted=True)),
        ("keyword_only", statement(FTS_TOP, rank)),
        *((f"hybrid_{other}", statement(HYBRID, other)) for other in also if other != rank),
    ]
    out: dict[str, Any] = {}
    with psycopg.connect(uri, autocommit=True) as c:
        set_config(c, "hnsw.ef_search", max(ef, DEPTH))  # pgvector 0.6 returns at most ef_search rows
        backend = c.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        for name, stmt in runs:
            for text in texts[:5]:
                qv = vector_literal(embedder.embed_query(text + " warmup"))
                c.execute(stmt, {"q": text, "v": qv, "limit": PAGE}, prepare=True).fetchall()
            times: list[float] = []
            sql_times: list[float] = []
            rows: list[int] = []
            cpu0, client0 = _cpu_s(backend[0]), time.process_time()
            for text in texts:
                t = time.perf_counter()
                qv = vector_literal(embedder.embed_query(text))
                s = time.perf_counter()
                got = c.execute(stmt, {"q": text, "v": qv, "limit": PAGE}, prepare=True).fetchall()
                end = time.perf_counter()
                times.append(end - t)
                sql_times.append(end - s)
                rows.append(len(got))
            out[name] = {
                "e2e": _ms(times),
                "sql": _ms(sql_times),
                "server_cpu_ms_per_search": round((_cpu_s(backend[0]) - cpu0) * 1000 / len(texts), 2),
                "client_cpu_ms_per_search": round((time.process_time() - client0) * 1000 / len(texts), 2),
                "rows_min": min(rows),  # fewer than 20: the meaning-only hits below cosine 0.4 were dropped
                "rows_max": max(rows),
            }
        out["server_memory"] = server_memory(server)
    return out


def freshness(uri: str, vectors: np.ndarray, count: int = 50) -> dict[str, Any]:
    """What one new vector (an HNSW insert) and one changed abstract (the generated tsvector and GIN) cost,
    each its own transaction: a paper is findable by keyword / by meaning when it commits."""
    import psycopg

    rng = np.random.default_rng(1)
    fresh = search_ann.synthesise(vectors[: min(len(vectors), 10_000)], count, rng)
    with psycopg.connect(uri, autocommit=True) as c:
        inserts: list[float] = []
        for k, v in enumerate(fresh):
            t = time.perf_counter()
            c.execute(
                "INSERT INTO paper_vectors (arxiv_id, embedding) VALUES (%s, %s::vector)",
                (f"bench-new-{k}", vector_literal(v)),
            )
            inserts.append(time.perf_counter() - t)
        c.execute("DELETE FROM paper_vectors WHERE arxiv_id LIKE 'bench-new-%'")
        picked = [r[0] for r in c.execute("SELECT arxiv_id FROM papers ORDER BY arxiv_id LIMIT %s", (count,))]
        updates: list[float] = []
        for arxiv_id in picked:
            t = time.perf_counter()
            c.execute(
                "UPDATE papers SET abstract = abstract || ' freshnessword' WHERE arxiv_id = %s", (arxiv_id,)
            )
            updates.append(time.perf_counter() - t)
        found = c.execute(
            "SELECT count(*) FROM papers WHERE search_tsv @@ to_tsquery('english', 'freshnessword')"
        ).fetchone()
        c.execute(
            "UPDATE papers SET abstract = left(abstract, length(abstract) - 14) "
            "WHERE abstract LIKE '%freshnessword'"
        )
    return {
        "insert_vector": _ms(inserts),
        "update_abstract": _ms(updates),
        "updated_found_by_keyword_at_once": found is not None and found[0] == len(picked),
    }


# -- a web node, in a process of its own -------------------------------------------------------------------


def _rss() -> dict[str, float]:
    out: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return {"rss_mb": out.get("VmRSS", 0.0), "peak_rss_mb": out.get("VmHWM", 0.0)}


def node(kind: str, where: str, texts: list[str], ef: int, rank: str) -> dict[str, Any]:
    """A new web node: from here (imports done by the caller's clock) to its first search, then `texts`."""
    phases: dict[str, float] = {}
    t = time.perf_counter()
    from paperboy.search.embed import load_embedder

    embedder = load_embedder(None, threads=1)
    phases["model_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    if kind == "pg":
        import psycopg

        conn = psycopg.connect(where, autocommit=True)
        set_config(conn, "hnsw.ef_search", max(ef, DEPTH))
        stmt = statement(HYBRID, rank)
        phases["connect_s"] = round(time.perf_counter() - t, 3)

        def one(text: str) -> int:
            qv = vector_literal(embedder.embed_query(text))
            return len(conn.execute(stmt, {"q": text, "v": qv, "limit": PAGE}, prepare=True).fetchall())

    else:
        from paperboy import db
        from paperboy.search import indexer
        from paperboy.search.hybrid import Searcher
        from paperboy.search.query import SearchQuery
        from paperboy.search.vector import VectorIndex

        root = Path(where)
        engine = db.make_engine(f"sqlite:///{root / 'bench.sqlite3'}")
        keyword = indexer.open_keyword_index(root / "keyword", engine, sync=False)
        vector = VectorIndex.load(root / "vectors.hnsw", embedder.dim, embedder.model)
        searcher = Searcher(keyword, vector, embedder)
        sconn = engine.connect()
        phases["open_indexes_s"] = round(time.perf_counter() - t, 3)

        def one(text: str) -> int:
            return len(searcher.search(sconn, SearchQuery(text, limit=PAGE)).hits)

    t = time.perf_counter()
    first_rows = one(texts[0])
    phases["first_search_s"] = round(time.perf_counter() - t, 3)
    ready_at = time.time()
    times = []
    for text in texts[1:]:
        s = time.perf_counter()
        one(text)
        times.append(time.perf_counter() - s)
    return {"ready_at": ready_at, **phases, "first_rows": first_rows, **_ms(times), **_rss()}


def start_node(kind: str, where: str, texts: list[str], ef: int, rank: str, tmp: Path) -> dict[str, Any]:
    """Start a node process, time it from the fork to its first answer, and read what it measured."""
    texts_file = tmp / f"node-{kind}-texts.json"
    texts_file.write_text(json.dumps(texts))
    argv = [sys.executable, __file__, "--node", kind, "--where", where, "--texts", str(texts_file)]
    argv += ["--ef-search", str(ef), "--rank", rank]
    t0 = time.time()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"node {kind} failed: {done.stderr[-2000:]}")
    got: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    got["ready_s"] = round(got.pop("ready_at") - t0, 2)
    return got


# -- relevance ---------------------------------------------------------------------------------------------


def relevance_part(
    server: Any,
    folder: Path,
    limit_queries: int | None,
    limit_docs: int | None,
    cache: Path | None,
    m: int,
    ef_construction: int,
) -> dict[str, Any]:
    """nDCG@10 / recall@100 on each IR collection: the single-machine modes of bench/relevance.py and
    PostgreSQL's FTS (each ranking) and hybrid (each ranking), every judged query against the whole corpus."""
    import psycopg
    import relevance

    from paperboy.search import embed

    collections = relevance.collections(folder)
    if not collections:
        return {"skipped": f"no collection under {folder}"}
    embedder = embed.load_embedder(None, threads=2, query_cache_size=0)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="paperboy-pgrel-") as tmp:
        cache = cache or Path(tmp) / "vectors"  # embedded once, for both paths
        for path in collections:
            coll = relevance.load_collection(path, limit_queries, limit_docs)
            index = relevance.keyword_index(coll, Path(tmp))
            kw = {q: index.search(text, DEPTH) for q, text in coll.queries.items()}
            vec = relevance.vector_run(coll, embedder, embed.document_text, cache=cache)
            words = relevance.worded(index, coll, kw, vec)
            result: dict[str, Any] = {
                "single_keyword": relevance.evaluate(kw, coll.qrels),
                "single_vector": relevance.evaluate(vec, coll.qrels),
                "single_hybrid": relevance.evaluate(relevance.searcher_runs(kw, vec, words), coll.qrels),
            }
            ids, matrix = relevance.document_vectors(coll, embedder, embed.document_text, cache)
            uri = database_uri(server, f"relevance_{coll.name}")
            with psycopg.connect(uri, autocommit=True) as c:
                c.execute("DROP TABLE IF EXISTS papers, paper_vectors")
                for stmt in RELEVANCE_SCHEMA:
                    c.execute(stmt.format(dim=matrix.shape[1]))
                with c.cursor() as cur, cur.copy("COPY papers (arxiv_id, title, abstract) FROM STDIN") as cp:
                    for i in ids:
                        cp.write_row((i, coll.docs[i][0], coll.docs[i][1]))
                copy_vectors(c, ids, matrix)
                c.execute(TSV_COLUMN)
                c.execute(GIN_INDEX)
                for stmt in IDF_TABLES:
                    c.execute(stmt)
                c.execute(HNSW_INDEX.format(m=m, ef_construction=ef_construction))
                c.execute("ANALYZE papers, paper_vectors")
                set_config(c, "hnsw.ef_search", DEPTH)
                qv = {q: vector_literal(embedder.embed_query(text)) for q, text in coll.queries.items()}
                for rank in KEYWORD:
                    fts = {
                        q: [(r[0], 0.0) for r in c.execute(statement(FTS_TOP, rank), {"q": text})]
                        for q, text in coll.queries.items()
                    }
                    hyb = {
                        q: [
                            (r[0], 0.0)
                            for r in c.execute(
                                statement(HYBRID, rank), {"q": text, "v": qv[q], "limit": DEPTH}
                            )
                        ]
                        for q, text in coll.queries.items()
                    }
                    result[f"pg_fts_{rank}"] = relevance.evaluate(fts, coll.qrels)
                    result[f"pg_hybrid_{rank}"] = relevance.evaluate(hyb, coll.qrels)
                pg_vec = {
                    q: [(r[0], 0.0) for r in c.execute(VECTOR_TOP, {"v": qv[q], "k": DEPTH})]
                    for q in coll.queries
                }
                result["pg_vector"] = relevance.evaluate(pg_vec, coll.qrels)
            out[coll.name] = result
    return out


# -- the whole run -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from paperboy.search.embed import load_embedder

    ids, vectors, records, qvecs, info = search.corpus(args.n, args.queries, args.seed)
    query_records: list[dict[str, Any]] = info.pop("queries_from")
    texts = [" ".join(r["title"].split()[:8]) for r in query_records]
    ef_values = sorted({int(x) for x in args.ef_search.split(",")})
    out: dict[str, Any] = {"n": args.n, "queries": len(texts), **info}
    with tempfile.TemporaryDirectory(prefix="paperboy-searchpg-") as tmpname:
        tmp = Path(tmpname)
        keep = args.keep
        root = keep if keep is not None else tmp
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)  # noqa: S103 (as root, the pgserver user must reach its data folder in it)
        started = time.perf_counter()
        single = None
        if not args.no_single:
            single = search.run(args.n, args.queries, args.seed, root / "single")
            out["single"] = single
        out["single_s"] = round(time.perf_counter() - started, 1)

        settings = {
            "shared_buffers": args.shared_buffers,
            "maintenance_work_mem": args.maintenance_work_mem,
            "max_parallel_maintenance_workers": str(args.build_workers),
            "work_mem": "16MB",
        }
        with postgres(root / "pg", settings, keep is not None) as server:
            uri = database_uri(server, "bench")
            key = {
                "n": args.n,
                "queries": args.queries,
                "seed": args.seed,
                "m": args.m,
                "ef_construction": args.ef_construction,
            }
            marker = root / "pg-build.json"
            built = json.loads(marker.read_text()) if marker.is_file() else None
            reused = built is not None and built.get("key") == key
            if not reused:
                figures = build(
                    uri,
                    ids,
                    vectors,
                    records,
                    args.m,
                    args.ef_construction,
                    args.maintenance_work_mem,
                    args.build_workers,
                )
                built = {"key": key, "figures": figures}
                marker.write_text(json.dumps(built))
            assert built is not None
            pg: dict[str, Any] = {
                "hnsw": {"m": args.m, "ef_construction": args.ef_construction, "ops": "vector_ip_ops"},
                "settings": settings,
                "build": built["figures"],
                "build_reused": reused,
                **sizes(uri),
            }
            pg["vector"] = vector_part(uri, ids, vectors, qvecs, ef_values)
            ok = [ef for ef in ef_values if pg["vector"][str(ef)]["recall_at_10"] >= 0.95]
            chosen = ok[0] if ok else ef_values[-1]
            pg["ef_search"] = chosen
            pg["hybrid_ef_search"] = max(chosen, DEPTH)
            embedder = load_embedder(None, threads=1, query_cache_size=0)
            also = [r for r in args.also_ranks.split(",") if r]
            timed = texts[: args.e2e_queries] if args.e2e_queries else texts
            pg["e2e_queries"] = len(timed)
            pg.update(hybrid_part(uri, timed, embedder, chosen, args.rank, also, server))
            pg["rank"] = args.rank
            pg["node"] = start_node("pg", uri, texts[: args.node_queries], chosen, args.rank, tmp)
            pg["freshness"] = freshness(uri, vectors)
            out["pg"] = pg
            if not args.no_relevance:
                out["relevance"] = relevance_part(
                    server,
                    args.relevance_dir,
                    args.relevance_limit_queries,
                    args.relevance_limit_docs,
                    args.relevance_cache,
                    args.m,
                    args.ef_construction,
                )
        if single is not None:
            again = search.run(args.n, args.queries, args.seed, root / "single")
            out["single_again"] = {
                k: again[k] for k in ("ann_p50_ms", "ann_p99_ms", "e2e_p50_ms", "e2e_p99_ms", "recall_at_10")
            }
            out["single"]["node"] = start_node(
                "single", str(root / "single"), texts[: args.node_queries], chosen, args.rank, tmp
            )
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    out["cores"] = os.cpu_count()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="papers (default 100,000)")
    parser.add_argument("--queries", type=int, default=200, help="held-out query papers (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--m", type=int, default=24, help="HNSW M (default 24, as the usearch index)")
    parser.add_argument("--ef-construction", type=int, default=128, help="HNSW ef_construction (128)")
    parser.add_argument(
        "--ef-search", default="40,64,100,200", help="hnsw.ef_search values to measure (comma-separated)"
    )
    parser.add_argument("--rank", choices=sorted(KEYWORD), default=DEFAULT_RANK, help="the keyword ranking")
    parser.add_argument(
        "--also-ranks",
        default="ts_rank_len",
        help="other keyword rankings to time end to end (comma-separated; empty for none)",
    )
    parser.add_argument("--shared-buffers", default="2GB", help="PostgreSQL shared_buffers (2GB)")
    parser.add_argument("--maintenance-work-mem", default="2GB", help="for the index builds (2GB)")
    parser.add_argument(
        "--build-workers", type=int, default=1, help="max_parallel_maintenance_workers (1: leader + 1 worker)"
    )
    parser.add_argument(
        "--e2e-queries",
        type=int,
        default=None,
        help="time PostgreSQL's end-to-end searches on the first N query titles only (default: all)",
    )
    parser.add_argument("--node-queries", type=int, default=50, help="searches a new web node runs")
    parser.add_argument(
        "--keep",
        type=Path,
        help="build here and keep both builds (default: a temporary folder); a later run with the same "
        "--n, --queries, --seed, --m and --ef-construction only times",
    )
    parser.add_argument("--no-single", action="store_true", help="skip the single-machine path")
    parser.add_argument("--no-relevance", action="store_true", help="skip the IR collections")
    parser.add_argument("--relevance-dir", type=Path, default=search.SHARED / "ir_benchmarks")
    parser.add_argument("--relevance-limit-queries", type=int, default=None)
    parser.add_argument("--relevance-limit-docs", type=int, default=None)
    parser.add_argument("--relevance-cache", type=Path, default=None, help="keep document vectors here")
    parser.add_argument("--node", choices=["pg", "single"], help=argparse.SUPPRESS)
    parser.add_argument("--where", help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.node:
        texts = json.loads(args.texts.read_text())
        print(json.dumps(node(args.node, args.where, texts, int(args.ef_search), args.rank)))
        return 0
    if args.n < 100 or args.queries < 1:
        parser.error("--n must be at least 100 and --queries at least 1")
    try:
        print(json.dumps(run(args)))
    except Unavailable as exc:
        print(f"PostgreSQL unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return 0


if __name__ == "__main__":
    sys.exit(main())
