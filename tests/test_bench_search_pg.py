"""bench/search_pg.py at toy size: search inside PostgreSQL (pgvector HNSW + full text, fused in one SQL
statement) runs beside the single-machine path and prints the figures issue 13 asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXIT_UNAVAILABLE = 4  # bench/search_pg.py: PostgreSQL or pgvector cannot be used here


def test_search_pg_bench_prints_both_paths_side_by_side() -> None:
    pytest.importorskip("usearch")
    pytest.importorskip("pgserver", reason="PostgreSQL unavailable: pgserver is not installed")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "search_pg.py"),
            "--n",
            "500",
            "--queries",
            "10",
            "--ef-search",
            "40,100",
            "--node-queries",
            "5",
            "--relevance-limit-queries",
            "2",
            "--relevance-limit-docs",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode == EXIT_UNAVAILABLE:
        pytest.skip(result.stderr.strip().splitlines()[-1])
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    figures = json.loads(line)
    assert figures["n"] == 500

    pg = figures["pg"]
    assert pg["hnsw"] == {"m": 24, "ef_construction": 128, "ops": "vector_ip_ops"}
    assert set(pg["vector"]) == {"40", "100"}
    assert pg["vector"][str(pg["ef_search"])]["recall_at_10"] >= 0.95
    assert pg["hybrid_ef_search"] >= 100  # pgvector 0.6 returns at most ef_search rows: 100 candidates
    for name in ("hybrid", "hybrid_counted"):
        assert pg[name]["rows_max"] == 20, name  # the page of 20 rows comes with the one statement
        assert 0 < pg[name]["sql"]["p50_ms"] <= pg[name]["e2e"]["p50_ms"]
    for key in ("hnsw_build_s", "gin_build_s", "tsv_column_s", "db_load_s"):
        assert key in pg["build"], key
    assert pg["hnsw_bytes_per_paper"] > 0 and pg["gin_bytes_per_paper"] > 0
    assert pg["node"]["first_rows"] == 20 and pg["node"]["ready_s"] > 0 and pg["node"]["rss_mb"] > 0
    assert pg["server_memory"]["pss_mb"] > 0
    assert pg["freshness"]["updated_found_by_keyword_at_once"] is True

    single = figures["single"]
    assert single["modes"] == ["keyword+vector"] and single["recall_at_10"] >= 0.9
    assert single["node"]["first_rows"] == 20
    assert figures["single_again"]["e2e_p50_ms"] > 0

    relevance = figures["relevance"]
    if "skipped" not in relevance:
        for collection in relevance.values():
            for mode in ("single_hybrid", "pg_hybrid_ts_rank_len", "pg_fts_ts_rank_len", "pg_vector"):
                assert 0.0 <= collection[mode]["ndcg@10"] <= 1.0, mode
