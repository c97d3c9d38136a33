"""bench/search_ann.py runs at toy size and prints its one JSON line (CI runs the same command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "bench" / "search_ann.py"
KEYS = {
    "n",
    "recall_at_10",
    "ann_p50_ms",
    "ann_p99_ms",
    "exact_p50_ms",
    "build_s",
    "index_bytes_per_paper",
    "vectors",
    "synthesised",
}


def test_toy_run_prints_one_json_line() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--n", "3000", "--queries", "20"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    data = json.loads(lines[0])
    assert set(data) >= KEYS
    assert data["n"] == 3000 and data["queries"] == 20
    assert data["recall_at_10"] >= 0.9
    assert 0 < data["ann_p50_ms"] <= data["ann_p99_ms"]
    assert data["exact_p50_ms"] > 0 and data["build_s"] >= 0
    assert 0 < data["index_bytes_per_paper"] < 4096
    assert "precomputed" in data["vectors"] or "synthesised" in data["vectors"]
