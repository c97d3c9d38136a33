"""bench/recommend.py: a toy run on a corpus this test writes (as CI runs it), its scoring, and a small real
run on ../shared/data when it is there."""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH = REPO_ROOT / "bench" / "recommend.py"
SHARED = REPO_ROOT.parent / "shared" / "data"
LISTING = SHARED / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
VECTORS = SHARED / "embeddings" / "minilm_arxiv_cs_f16.npy"

TOPICS = {
    "vision": "image segmentation pixels convolution detection boxes camera",
    "language": "tokens translation grammar transformer corpus sentences",
    "robots": "grasping manipulation arm torque planning motion",
}


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recommend_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def write_corpus(folder: Path, papers: int = 120) -> tuple[Path, Path, Path]:
    """A synthetic listing: 9 authors, 3 to a topic, each writing about their topic only; a paper's vector is
    its topic's direction plus noise. Written gzip'd, with float16 vectors and an ids file in shuffled order
    (the bench must follow the ids file, not the listing)."""
    rng = random.Random(7)
    nprng = np.random.default_rng(7)
    dim = 16
    directions = {t: nprng.normal(size=dim) for t in TOPICS}
    authors = {t: [f"{t.title()} Author{i}" for i in range(3)] for t in TOPICS}
    records, vectors = [], {}
    start = date(2025, 3, 18)
    for i in range(papers):
        topic = rng.choice(list(TOPICS))
        words = TOPICS[topic].split()
        arxiv_id = f"2503.{i:05d}"
        records.append(
            {
                "id": arxiv_id,
                "title": " ".join(rng.sample(words, 3)),
                "summary": " ".join(rng.choices(words, k=12)),
                "authors": [rng.choice(authors[topic]), f"Someone {i}"],
                "categories": ["cs.LG"],
                "listing_date": (start + timedelta(days=i // 3)).isoformat(),
            }
        )
        v = directions[topic] + nprng.normal(scale=0.8, size=dim)
        vectors[arxiv_id] = v / np.linalg.norm(v)
    data = folder / "listing.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as f:
        for r in rng.sample(records, len(records)):  # listing order is not date order
            f.write(json.dumps(r) + "\n")
    order = list(vectors)
    rng.shuffle(order)
    ids = folder / "ids.txt"
    ids.write_text("\n".join(order) + "\n", encoding="utf-8")
    vec_path = folder / "vectors.npy"
    np.save(vec_path, np.stack([vectors[i] for i in order]).astype(np.float16))
    return data, vec_path, ids


def run_bench(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON line
    return json.loads(lines[0])


def test_recall_and_ndcg_at_20() -> None:
    bench = load_bench()
    assert bench.recall_ndcg([1, 2, 3], frozenset({1, 2})) == (1.0, 1.0)
    recall, ndcg = bench.recall_ndcg([9, 1], frozenset({1, 2}))
    assert recall == 0.5
    assert ndcg == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    ranked = [*range(100, 120), 1]  # the hit at 21 does not count
    assert bench.recall_ndcg(ranked, frozenset({1})) == (0.0, 0.0)
    mean, (lo, hi) = bench.bootstrap(np.array([0.0, 1.0] * 50), 500, 0)
    assert mean == 0.5 and lo < 0.5 < hi


def test_members_are_authors_with_enough_papers_and_later_ones(tmp_path: Path) -> None:
    bench = load_bench()
    corpus = bench.load_corpus(*write_corpus(tmp_path))
    assert corpus.ids == sorted(corpus.ids)  # ids here grow with the date
    members, _ = bench.eligible_members(corpus, 6)
    assert members
    for m in members:
        assert len(m.seeds) == 5
        seed_day = corpus.days[m.seeds[-1]]
        assert all(corpus.days[r] > seed_day for r in m.relevant)
        assert all(corpus.days[r] > seed_day for r in range(m.start, len(corpus.ids)))
        assert corpus.days[m.start - 1] <= seed_day
        assert all(m.key in corpus.pool.authors[r] for r in [*m.seeds, *m.relevant])
    assert all(m.key.startswith(("vision", "language", "robots")) for m in members)


def test_toy_run_prints_every_method_with_intervals(tmp_path: Path) -> None:
    data, vectors, ids = write_corpus(tmp_path)
    out = run_bench("--toy", "--data", str(data), "--vectors", str(vectors), "--ids", str(ids))
    assert out["papers"] == 120 and out["members"] == out["eligible_members"] > 0
    methods = out["methods"]
    assert set(methods) == {
        "newest",
        "centroid",
        "svm_title_abstract",
        "svm_with_authors",
        "paperboy",
        "paperboy_vectors_only",
    }
    for scores in methods.values():
        for metric in ("recall@20", "ndcg@20"):
            lo, hi = scores[f"{metric}_ci95"]
            assert 0.0 <= lo <= scores[metric] <= hi <= 1.0
    # authors here write about one topic each: meaning alone finds much of it, shared authors more
    assert methods["paperboy_vectors_only"]["recall@20"] > methods["newest"]["recall@20"]
    assert methods["paperboy"]["recall@20"] >= methods["paperboy_vectors_only"]["recall@20"]
    assert methods["paperboy"]["recall@20"] > 0.8
    assert set(out["recall_ratios"]) == {
        "paperboy_vs_svm_title_abstract",
        "paperboy_vs_svm_with_authors",
        "paperboy_vectors_only_vs_svm_title_abstract",
        "paperboy_vectors_only_vs_svm_with_authors",
    }
    assert out["timing"]["paperboy"]["rank_ms_p50"] > 0
    assert out["timing"]["paperboy_all_papers"]["pool"] == 120
    assert set(out["goal"]) == {
        "recall_ratio_vs_svm_title_abstract_at_least_1.2",
        "rank_ms_p50_at_most_50_all_papers",
    }
    assert "paperboy_vectors_only" in out["settings"]["note"]


def test_missing_data_exits_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--data", str(tmp_path / "none.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2 and "missing" in out.stderr


@pytest.mark.shared_data
@pytest.mark.skipif(
    not (LISTING.exists() and VECTORS.exists()), reason="../shared/data (arXiv listing, embeddings) absent"
)
def test_small_real_run() -> None:
    # the two SVMs fit TF-IDF on all 74,728 papers (minutes): the toy run above covers them
    out = run_bench("--members", "20", "--methods", "newest,centroid,paperboy,paperboy_vectors_only")
    assert out["papers"] == 74728 and out["members"] == 20
    assert out["eligible_members"] > 10000
    methods = out["methods"]
    assert (
        methods["paperboy"]["recall@20"] > methods["centroid"]["recall@20"] > methods["newest"]["recall@20"]
    )
    assert out["timing"]["paperboy_all_papers"]["pool"] == 74728
