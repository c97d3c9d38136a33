"""bench/for_you.py at CI's size: it runs the real app over the repo's fixture papers and prints its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_for_you_bench_prints_its_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "for_you.py"), "--toy", "--members", "4"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["members"] == 4 and out["papers"] == 60
    for pool in ("default", "all_papers"):
        figures = out[pool]
        assert figures["pool_papers"] == 60
        assert 0 < figures["api_ms"]["p50"] <= figures["api_ms"]["p95"]
        assert 0 < figures["html_ms"]["p50"] <= figures["html_ms"]["p95"]
        assert set(figures["reasons"]) <= {"similar", "author", "topic", "member", "org", "trending"}
        assert sum(figures["reasons"].values()) > 0
