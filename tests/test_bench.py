"""bench/ingest.py runs at toy size and prints its one JSON line (CI runs the same command)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "bench" / "ingest.py"
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "arxiv_metadata" / "arxiv_daily_cs_sample_1000.jsonl"
# 60 synthetic records in the daily-listing format, for machines without ../shared/data
OWN_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "arxiv_listing_small.jsonl"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )


def figures(result: subprocess.CompletedProcess[str]) -> dict[str, float]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    data = json.loads(lines[0])
    assert set(data) == {"papers", "seconds", "papers_per_s"}
    assert data["seconds"] > 0 and data["papers_per_s"] > 0
    # both are rounded (seconds to 0.1 ms): allow for it on tiny runs
    assert data["papers_per_s"] == pytest.approx(data["papers"] / data["seconds"], rel=0.2)
    return data  # type: ignore[no-any-return]


def test_toy_run_on_the_shared_sample_or_our_own() -> None:
    source = SAMPLE if SAMPLE.is_file() else OWN_SAMPLE
    expected = 300 if source == SAMPLE else 50
    data = figures(bench("--file", str(source), "--limit", str(expected)))
    assert data["papers"] == expected


def test_limit_reads_gzip_and_stops_at_the_end_of_the_file(tmp_path: Path) -> None:
    gz = tmp_path / "small.jsonl.gz"
    gz.write_bytes(gzip.compress(OWN_SAMPLE.read_bytes()))
    assert figures(bench("--file", str(gz), "--limit", "1000"))["papers"] == 60
    assert figures(bench("--file", str(gz)))["papers"] == 60


def test_database_url_is_used(tmp_path: Path) -> None:
    db = tmp_path / "given.sqlite3"
    figures(bench("--file", str(OWN_SAMPLE), "--limit", "10", "--database-url", f"sqlite:///{db}"))
    assert db.is_file()


def test_missing_file_is_a_clear_failure(tmp_path: Path) -> None:
    result = bench("--file", str(tmp_path / "absent.jsonl.gz"))
    assert result.returncode == 2
    assert "absent.jsonl.gz: no such file" in result.stderr
    assert result.stdout == ""
