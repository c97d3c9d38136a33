"""bench/digest.py runs at toy size and prints its one JSON line (CI runs the same command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_toy_digest_bench_plans_every_subscriber() -> None:
    result = subprocess.run(
        [sys.executable, "bench/digest.py", "--subscribers", "60", "--papers", "1500", "--topics", "20"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    data = json.loads(line)
    for key in ("subscribers", "plan_s", "render_s", "per_subscriber_ms", "runs", "mails", "papers_from"):
        assert key in data, key
    assert data["subscribers"] == 60 and data["runs"] == 60  # every subscriber was due and planned once
    assert 0 < data["mails"] <= 60
    assert data["plan_s"] > 0 and data["per_subscriber_ms"] > 0
