"""bench/follows.py runs at toy size and prints its one JSON line (CI runs the same command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_toy_follows_bench_times_every_read() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/follows.py",
            "--papers",
            "2000",
            "--members",
            "25",
            "--votes",
            "10",
            "--repeat",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    data = json.loads(line)
    assert data["papers"] == 2000 and data["follows"] == 80 and data["page_items"] == 20
    for key in (
        "following_page_ms",
        "following_page_20_ms",
        "papers_via_follows_ms",
        "org_ms",
        "digest_gather_ms",
    ):
        assert data[key] > 0, key
