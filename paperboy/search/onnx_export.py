"""Exporting and quantizing an embedding model, in a child process: `python -m paperboy.search.onnx_export`.

`onnx_cache` runs this module as a child of the server (or CLI) so that what an export needs — the weights
as numpy arrays, the ONNX protobuf, the quantizer's copies: a few hundred MB for a few seconds — is never
held by a serving process, and torch is never imported there.

    python -m paperboy.search.onnx_export build MODEL_FOLDER OUT_FOLDER
    python -m paperboy.search.onnx_export quantize MODEL.onnx MODEL-int8.onnx

`build` writes model.onnx, tokenizer.json and meta.json into OUT_FOLDER: a BERT sentence-transformers model
(the default, all-MiniLM-L6-v2, among them) by `bert_onnx` from its safetensors weights, without torch,
checked against a numpy forward pass; any other model by torch's exporter and ONNX Runtime's fusions, checked
against sentence-transformers, when torch is installed (`pip install 'paperboy[torch]'`). Exit status 0:
written; 3: this model cannot be exported here (the reason on stderr's last line); 1: an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CANNOT_EXPORT = 3
# texts the export is checked on: short, long (truncated), odd characters
CHECK_TEXTS = [
    "attention",
    "KV cache eviction for private inference",
    "Layer-wise quantization of large language models. " * 40,
    "Über die Quantenmechanik — 量子力学 and graph neural networks (GNNs) for molecules!",
]
FUSED_AGREEMENT = 0.9999  # cosine the fused graph must keep to its reference on CHECK_TEXTS
AGREEMENT = 0.999  # below this an export is refused


class CannotExport(Exception):
    """This model cannot be exported here; the message says why."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def agreement(folder: Path, onnx_path: Path, reference: np.ndarray) -> float:
    """The smallest cosine between `onnx_path`'s vectors of CHECK_TEXTS and `reference` (unit rows)."""
    from paperboy.search.embed import OnnxEncoder
    from paperboy.search.onnx_cache import OnnxCache

    cache = OnnxCache(folder)
    tok = cache.tokenizer(int(cache.meta["max_seq_length"]))
    got = OnnxEncoder(onnx_path, tok, cache.meta, 1).encode(CHECK_TEXTS, 8)
    return float((got * reference).sum(axis=1).min())


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    from paperboy.search.onnx_cache import CACHE_VERSION

    (folder / "meta.json").write_text(json.dumps({"version": CACHE_VERSION, **meta}, indent=1))


def build_numpy(model: Path, out: Path) -> dict[str, Any]:
    """The BERT graph from the safetensors weights (no torch), checked against a numpy forward pass."""
    from tokenizers import Tokenizer

    from paperboy.search import bert_onnx

    fields = bert_onnx.build_folder(model, out)
    meta = {"exported_from": str(model), "exporter": "numpy", **fields}
    _write_meta(out, meta)
    s = bert_onnx.spec(model)
    weights = bert_onnx.bert_weights(s)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.enable_truncation(max_length=s.max_seq_length)
    tok.no_padding()
    rows = []
    for enc in tok.encode_batch(CHECK_TEXTS):  # one at a time: no padding in the reference
        ids = np.asarray([enc.ids], dtype=np.int64)
        hidden = bert_onnx.reference(s, weights, ids, np.ones_like(ids), np.asarray([enc.type_ids]))[0]
        pooled = hidden[0] if s.pooling == "cls" else hidden.max(0) if s.pooling == "max" else hidden.mean(0)
        rows.append(pooled / np.linalg.norm(pooled))
    cosine = agreement(out, out / "model.onnx", np.stack(rows))
    if cosine < FUSED_AGREEMENT:
        raise CannotExport(
            f"the graph built from {model} disagrees with its numpy forward pass ({cosine:.5f})"
        )
    meta.update(fused=True, check_cosine=round(cosine, 6))
    _write_meta(out, meta)
    return meta


def _structure(st: Any) -> dict[str, Any] | None:
    """Pooling and normalisation when the model is transformer → pooling (→ normalize); None otherwise."""
    kinds = [type(m).__name__ for m in st]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    mode = str(getattr(st[1], "pooling_mode", None) or st[1].get_pooling_mode_str())
    if mode not in ("mean", "cls", "max"):
        return None
    tok = st.tokenizer
    if getattr(tok, "backend_tokenizer", None) is None:
        return None
    return {"pooling": mode, "normalize": kinds[-1] == "Normalize"}


def build_torch(model: Path, out: Path) -> dict[str, Any]:
    """Any transformer → pooling model through torch's exporter, then ONNX Runtime's fusions when they keep
    the vectors, checked against sentence-transformers."""
    try:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise CannotExport(
            f"exporting it needs torch: pip install 'paperboy[torch]' ({_first_line(exc)})"
        ) from exc
    from paperboy.search.onnx_cache import dimension

    transformers.utils.logging.disable_progress_bar()
    st: Any = SentenceTransformer(str(model), device="cpu", local_files_only=True)
    structure = _structure(st)
    if structure is None:
        raise CannotExport("its modules are not transformer → pooling (mean, cls or max) (→ normalize)")
    hf = st[0].auto_model
    tok = st.tokenizer
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tok.model_input_names]
    max_positions = int(getattr(hf.config, "max_position_embeddings", 512) or 512)
    max_seq_length = int(st.max_seq_length or min(tok.model_max_length, max_positions))

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.hf(**dict(zip(names, args, strict=True))).last_hidden_state

    dummy = tok(["a short text", "a somewhat longer text to export with"], padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    raw = out / "raw.onnx"
    with contextlib.suppress(Exception):  # ONNX Runtime's fusions recognise the eager attention graph only
        hf.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden().eval(),
                tuple(dummy[n] for n in names),
                str(raw),
                dynamo=False,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
            )
    except Exception as exc:
        raise CannotExport(f"torch's ONNX export failed: {_first_line(exc)}") from exc
    (out / "tokenizer.json").write_text(tok.backend_tokenizer.to_str())
    meta: dict[str, Any] = {
        "exported_from": str(model),
        "exporter": "torch",
        "dim": dimension(st),
        **structure,
        "max_seq_length": max_seq_length,
        "max_positions": max_positions,
        "pad_id": int(tok.pad_token_id or 0),
    }
    _write_meta(out, meta)
    reference = np.asarray(
        st.encode(CHECK_TEXTS, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32
    )
    fused = out / "fused.onnx"
    is_fused = _fuse(raw, fused, hf.config) and agreement(out, fused, reference) >= FUSED_AGREEMENT
    if is_fused:
        os.replace(fused, out / "model.onnx")
        raw.unlink()
    else:
        fused.unlink(missing_ok=True)
        os.replace(raw, out / "model.onnx")
    cosine = agreement(out, out / "model.onnx", reference)
    if cosine < AGREEMENT:
        raise CannotExport(f"the ONNX export disagrees with sentence-transformers (cosine {cosine:.4f})")
    meta.update(fused=is_fused, check_cosine=round(cosine, 6))
    _write_meta(out, meta)
    return meta


def _fuse(src: Path, dst: Path, config: Any) -> bool:
    """ONNX Runtime's transformer fusions (attention, layer norm, GELU); False when they do not apply."""
    try:
        from onnxruntime.transformers import optimizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = optimizer.optimize_model(
                str(src),
                model_type="bert",
                num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
                hidden_size=int(getattr(config, "hidden_size", 0) or 0),
                opt_level=0,
            )
            model.save_model_to_file(str(dst))
        return True
    except Exception:
        return False


def build(model: Path, out: Path) -> dict[str, Any]:
    """The numpy builder when it takes the model, else torch's exporter."""
    from paperboy.search import bert_onnx

    reason = bert_onnx.supported(model)
    if reason is None:
        return build_numpy(model, out)
    try:
        return build_torch(model, out)
    except CannotExport as exc:
        raise CannotExport(f"{reason}; {exc}") from exc


def quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the MatMul (and Attention) weights, one scale per output channel."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=dst.parent)
    os.close(fd)
    logging.getLogger().setLevel(
        logging.ERROR
    )  # quantize_dynamic advises pre-processing through the root logger
    try:
        quantize_dynamic(
            src,
            tmp,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # the fused operators hide some tensor types from shape inference
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str]) -> int:
    usage = "usage: python -m paperboy.search.onnx_export build MODEL_FOLDER OUT | quantize SRC DST"
    if len(argv) != 3 or argv[0] not in ("build", "quantize"):
        print(usage, file=sys.stderr)
        return 2
    try:
        if argv[0] == "build":
            build(Path(argv[1]), Path(argv[2]))
        else:
            quantize(Path(argv[1]), Path(argv[2]))
    except CannotExport as exc:
        print(exc, file=sys.stderr)
        return CANNOT_EXPORT
    except Exception as exc:
        print(_first_line(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
