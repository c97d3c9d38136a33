"""bench/collections.py runs at toy size and prints its one JSON line (CI runs the same command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_toy_collections_bench_keeps_places_distinct_under_concurrent_writers() -> None:
    result = subprocess.run(
        [sys.executable, "bench/collections.py", "--papers", "150", "--writers", "4", "--shared", "10"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    data = json.loads(line)
    assert data["papers"] == 150 and data["concurrent_adds"] == 40
    assert data["concurrent_errors"] == 0 and data["places_distinct"] is True
    for key in ("add_ms_p50", "reorder_all_s", "concurrent_s", "page_s_p50", "json_s_p50", "feed_s_p50"):
        assert data[key] > 0, key
    assert data["page_bytes"] > 0 and data["feed_bytes"] > 0
