"""bench/backup.py at toy size: the repo's 60-paper fixture, one round of each method against a writer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "arxiv_listing_small.jsonl"


def test_toy_run_compares_both_methods_and_every_copy_holds_what_was_committed(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "backup.py"),
            "--file",
            str(FIXTURE),
            "--rounds",
            "1",
            "--workdir",
            str(tmp_path / "db"),
            "--write-rate",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line.get("method") for line in lines[:2]] == ["backup-api", "vacuum-into"]
    for line in lines[:2]:
        assert line["integrity"] == "ok" and line["missing_rows"] == 0, line
        assert line["bytes"] > 0 and line["copy_s"] > 0 and line["writes_during"] >= 0
    assert lines[2]["papers"] == 60 and lines[2]["vacuum_over_backup_api_bytes"] > 0
