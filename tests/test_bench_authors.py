"""bench/authors.py runs at toy size (the repo's fixture papers) and prints its JSON, as CI runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "bench" / "authors.py"


def test_toy_run_finds_every_author(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--toy", "--sample", "0", "--workdir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    if result.returncode == 3:
        pytest.skip(f"the embedding model cannot be loaded: {result.stderr.strip()[-300:]}")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["real"] is False and data["authors_checked"] >= 5
    assert data["pass_name"] == 1.0 and data["pass_name_topic"] == 1.0
    assert data["failures"] == []
