"""bench/relevance.py runs at toy size and prints its JSON (as CI runs it), and scores correctly."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "bench" / "relevance.py"
IR_DIR = REPO_ROOT.parent / "shared" / "data" / "ir_benchmarks"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relevance_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def write_collection(folder: Path) -> None:
    """Four documents, two judged queries, in the BEIR layout."""
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "1", "title": "Supersonic flow over wings", "text": "Shock waves form over swept wings."},
        {"_id": "2", "title": "Boundary layers", "text": "Laminar boundary layer transition on flat plates."},
        {"_id": "3", "title": "Library catalogues", "text": "Indexing periodicals for retrieval."},
        {"_id": "4", "title": "Heat transfer", "text": "Heat transfer in hypersonic boundary layers."},
    ]
    queries = [
        {"_id": "1", "text": "shock waves on swept wings"},
        {"_id": "2", "text": "boundary layer transition"},
        {"_id": "3", "text": "an unjudged query"},
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n", encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\t1\t2\n2\t2\t1\n2\t4\t1\n", encoding="utf-8"
    )


def test_loading_keeps_judged_queries_and_cuts_the_corpus(tmp_path: Path) -> None:
    bench = load_bench()
    write_collection(tmp_path / "toy")
    coll = bench.load_collection(tmp_path / "toy")
    assert list(coll.queries) == ["1", "2"]  # the unjudged query is left out
    assert len(coll.docs) == 4
    small = bench.load_collection(tmp_path / "toy", limit_queries=1, limit_docs=0)
    assert list(small.queries) == ["1"] and set(small.docs) == {"1"}  # its judged documents stay


def test_scoring_with_ir_measures(tmp_path: Path) -> None:
    bench = load_bench()
    qrels = {"1": {"a": 2}, "2": {"b": 1, "c": 1}}
    perfect = {"1": [("a", 9.0)], "2": [("b", 9.0), ("c", 8.0)]}
    assert bench.evaluate(perfect, qrels) == {"ndcg@10": 1.0, "recall@100": 1.0}
    # a query without results counts 0; order is ours even when scores tie
    half = {"2": [("b", 1.0), ("x", 1.0), ("c", 1.0)]}
    scored = bench.evaluate(half, qrels)
    assert scored["recall@100"] == 0.5
    assert scored["ndcg@10"] == pytest.approx((1 + 1 / 2) / (1 + 1 / 1.5849625) / 2, abs=1e-4)


def test_keyword_mode_and_fusion_on_a_toy_collection(tmp_path: Path) -> None:
    bench = load_bench()
    write_collection(tmp_path / "toy")
    coll = bench.load_collection(tmp_path / "toy")
    kw = bench.keyword_run(coll, tmp_path)
    assert kw["1"][0][0] == "1" and kw["2"][0][0] == "2"
    assert bench.evaluate(kw, coll.qrels)["recall@100"] == 1.0
    fused = bench.fuse_runs(kw, {"1": [("3", 0.5), ("1", 0.4)], "2": []}, bench.HYBRID)
    assert fused["1"][0][0] == "1" and fused["2"][0][0] == "2"


@pytest.mark.shared_data
def test_toy_run_prints_the_three_modes_for_every_collection() -> None:
    if not (IR_DIR / "cranfield" / "corpus.jsonl").is_file():
        pytest.skip(f"{IR_DIR} is absent")
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--limit-queries",
            "2",
            "--limit-docs",
            "20",
            "--threads",
            "1",
            "--missing",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    if result.returncode == 3:
        pytest.skip(f"the embedding model cannot be loaded: {result.stderr.strip()[-300:]}")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"cranfield", "cisi"}
    for figures in data.values():
        modes = {"keyword", "vector", "hybrid", "vector_missing", "hybrid_missing", "hybrid_missing_before"}
        assert set(figures) == modes | {"missing"}
        assert figures["missing"]["share"] == 0.5 and figures["missing"]["documents"] > 0
        for name, mode in figures.items():
            if name == "missing":
                continue
            assert set(mode) == {"ndcg@10", "recall@100"}
            assert all(0.0 <= v <= 1.0 for v in mode.values())
