"""bench/search.py at toy size: it runs, and prints the figures the issue asks for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_search_bench_prints_one_json_line() -> None:
    pytest.importorskip("usearch")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "search.py"), "--n", "500", "--queries", "10"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    figures = json.loads(line)
    for key in (
        "n",
        "recall_at_10",
        "ann_p50_ms",
        "ann_p99_ms",
        "e2e_p50_ms",
        "e2e_p99_ms",
        "exact_p50_ms",
        "build_s",
        "index_bytes_per_paper",
    ):
        assert key in figures, key
    assert figures["n"] == 500
    assert figures["recall_at_10"] >= 0.9
    assert figures["modes"] == ["keyword+vector"]
    assert figures["e2e_p50_ms"] > 0
