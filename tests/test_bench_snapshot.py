"""bench/snapshot.py at toy size: a node restored from a snapshot is ready, answers as the publisher does,
and the figures the issue asks for are printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.postgres
def test_snapshot_bench_prints_one_json_line(postgres_engine: Engine) -> None:
    pytest.importorskip("usearch")
    url = postgres_engine.url.render_as_string(hide_password=False)
    bench = [sys.executable, str(ROOT / "bench" / "snapshot.py")]
    result = subprocess.run(
        [*bench, "--n", "400", "--new", "40", "--queries", "8", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    figures = json.loads(line)
    for key in (
        "snapshot_bytes",
        "publish_s",
        "ready_s",
        "restore_s",
        "catchup_s",
        "rss_mb",
        "rebuild_s",
        "rebuild_node_ready_s",
    ):
        assert key in figures, key
    assert figures["n"] == 400 and figures["database"] == "postgresql"
    assert figures["restored"] == ["keyword", "vector"]
    # the new node caught up on exactly the papers written after the snapshot, and answers as the publisher
    assert figures["caught_up_keyword"] == 40 and figures["caught_up_vectors"] == 40
    assert figures["same_keyword_top10"] == 1.0 and figures["same_vector_top10"] == 1.0
    assert figures["new_in_keyword"] == 1.0 and figures["new_found_by_vector"] == 1.0
    assert figures["rebuild_node_same_keyword_top10"] == 1.0
