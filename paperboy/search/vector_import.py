"""Precomputed vectors into the `embeddings` table (`paperboy index import-vectors`).

A `.npy` matrix (one row per paper, float16/32/64, L2-normalised) and a text file of arXiv ids (line i names
row i) are checked in full before anything is written: shape, dimension against the model's, id count against
the row count, ids well-formed and distinct, every value finite, every row of unit length (within
`NORM_TOLERANCE`). Then, batch by batch, each row whose paper is in the hub is stored as the embedder would
store it: float32, renormalised, with the hash of `document_text(title, abstract)` of the stored paper, so
that `embed_pending` takes it as current and never embeds that paper again (until its text changes). Rows of
papers the hub does not hold are skipped; rows already stored identically (same vector, same text hash, not
older than the paper) are left alone, so a second run writes nothing.

The vectors are taken as those of the papers' current text: import vectors computed from the same text
(`title + ". " + abstract`, whitespace collapsed), as ../shared/data/embeddings' are.

`export_vectors` writes the other side (`paperboy index export-vectors`): OUT.npy (float32, one row per
paper), OUT.txt (the ids) and OUT.json, a manifest naming the model, the dimension and the row count. When
an import finds that manifest beside its .npy it refuses vectors of another model, or a manifest that does
not match the files. The whole import is one transaction: a bad file or a failure part-way stores nothing,
and the vector index file is only updated (from the database) after it commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from paperboy.errors import InvalidInput
from paperboy.models import parse_arxiv_id
from paperboy.search.embed import document_text, text_hash
from paperboy.store import embeddings as embedding_store

NORM_TOLERANCE = (
    0.01  # float16 rows of unit length are within ~1e-3 of 1; anything further was not normalised
)
MANIFEST_FORMAT = "paperboy-vectors"
CHECK_CHUNK = 8192

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class ImportCounts:
    rows: int  # rows in the file
    imported: int  # stored (new, or replacing a different or stale vector)
    current: int  # already stored identically: nothing written
    skipped: int  # no such paper in the hub


def model_name(model: str | None) -> str:
    """The name the embedder stores vectors under (sentence-transformers/all-MiniLM-L6-v2: the default's)."""
    from paperboy.search import onnx_cache
    from paperboy.search.embed import DEFAULT_MODEL

    try:
        return onnx_cache.resolve(model).name
    except Exception:  # EmbeddingUnavailable: a folder that is not there; keep the name as given
        return model or DEFAULT_MODEL


def model_dimension(model: str | None) -> int | None:
    """The output dimension of a sentence-transformers model read from its folder's configuration (without
    loading it), or None when the model's files are not on this machine."""
    from paperboy.search import onnx_cache

    try:
        folder = onnx_cache.resolve(model).path
    except Exception:  # EmbeddingUnavailable: not installed or no such folder
        return None
    if folder is None:
        return None
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        dim = None
        for module in modules:  # the last layer that sets a width wins (Pooling, then an optional Dense)
            conf = folder / module.get("path", "") / "config.json"
            kind = str(module.get("type", ""))
            if kind.endswith("Pooling") and conf.is_file():
                dim = int(json.loads(conf.read_text(encoding="utf-8"))["word_embedding_dimension"])
            elif kind.endswith("Dense") and conf.is_file():
                dim = int(json.loads(conf.read_text(encoding="utf-8"))["out_features"])
        if dim is not None:
            return dim
        return int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_ids(path: Path) -> list[str]:
    """The arXiv ids of `path`, one a line, without versions; InvalidInput names a bad or repeated line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the ids ({exc})") from exc
    while lines and not lines[-1].strip():
        lines.pop()
    ids: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        parsed = parse_arxiv_id(line.strip())
        if parsed is None:
            raise InvalidInput(f"{path}:{n}: {line.strip()!r} is not an arXiv id")
        arxiv_id = parsed[0]
        if arxiv_id in seen:
            raise InvalidInput(f"{path}:{n}: {arxiv_id} is already on line {seen[arxiv_id]}")
        seen[arxiv_id] = n
        ids.append(arxiv_id)
    if not ids:
        raise InvalidInput(f"{path}: no ids")
    return ids


def read_matrix(path: Path, dim: int) -> np.ndarray:
    """The matrix of `path`, checked: 2-D, `dim` columns, floating point, finite, rows of unit length."""
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a readable .npy array ({exc})") from exc
    if matrix.ndim != 2:
        raise InvalidInput(f"{path}: expected a 2-D array (papers × {dim}), got shape {matrix.shape}")
    if not np.issubdtype(matrix.dtype, np.floating):
        raise InvalidInput(f"{path}: expected floating-point vectors, got {matrix.dtype}")
    if matrix.shape[1] != dim:
        raise InvalidInput(
            f"{path}: vectors have {matrix.shape[1]} dimensions, the model's have {dim} "
            "(vectors from another model? pass --model)"
        )
    for start in range(0, matrix.shape[0], CHECK_CHUNK):
        chunk = np.asarray(matrix[start : start + CHECK_CHUNK], dtype=np.float32)
        bad = ~np.isfinite(chunk).all(axis=1)
        if bad.any():
            raise InvalidInput(f"{path}: row {start + int(np.argmax(bad))} holds NaN or infinite values")
        norms = np.linalg.norm(chunk, axis=1)
        off = np.abs(norms - 1.0) > NORM_TOLERANCE
        if off.any():
            row = int(np.argmax(off))
            raise InvalidInput(
                f"{path}: row {start + row} has length {norms[row]:.4f}; vectors must be L2-normalised"
            )
    return matrix


def read_inputs(npy: Path, ids_file: Path, dim: int) -> tuple[np.ndarray, list[str]]:
    """Both files, checked against each other and the model's dimension (InvalidInput otherwise)."""
    ids = read_ids(ids_file)
    matrix = read_matrix(npy, dim)
    if len(ids) != matrix.shape[0]:
        raise InvalidInput(f"{ids_file} has {len(ids)} ids but {npy} has {matrix.shape[0]} rows")
    return matrix, ids


def _unit_f32(rows: np.ndarray) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype="<f4")


def import_vectors(
    engine: Engine,
    model: str,
    matrix: np.ndarray,
    ids: list[str],
    now: Callable[[], datetime],
    batch: int = 2000,
    progress: Progress | None = None,
) -> ImportCounts:
    """Store the rows of `matrix` (checked by `read_inputs`) whose papers are in the hub, in one transaction
    (`batch` rows per statement): an import that fails part-way stores nothing."""
    dim = int(matrix.shape[1])
    imported = current = skipped = 0
    stamp = now()
    with engine.begin() as conn:
        for start in range(0, len(ids), batch):
            chunk_ids = ids[start : start + batch]
            vectors = _unit_f32(matrix[start : start + batch])
            targets = embedding_store.import_targets(conn, model, chunk_ids)
            rows = []
            for n, arxiv_id in enumerate(chunk_ids):
                target = targets.get(arxiv_id)
                if target is None:
                    skipped += 1
                    continue
                blob = vectors[n].tobytes()
                digest = text_hash(document_text(target.title, target.abstract))
                if not target.stale and target.text_hash == digest and target.vector == blob:
                    current += 1
                    continue
                rows.append((arxiv_id, blob, digest))
            if rows:
                embedding_store.save(conn, model, dim, rows, stamp)
                imported += len(rows)
            if progress is not None:
                progress(min(start + batch, len(ids)), len(ids))
    return ImportCounts(rows=len(ids), imported=imported, current=current, skipped=skipped)


def manifest_path(npy: Path) -> Path:
    return npy.with_suffix(".json")


def check_manifest(npy: Path, model: str, matrix: np.ndarray, ids: list[str]) -> dict[str, Any] | None:
    """The manifest beside `npy` (None if there is none), checked against the model and both files."""
    path = manifest_path(npy)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{path}: not a readable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise InvalidInput(f"{path}: not a {MANIFEST_FORMAT} manifest")
    if manifest.get("model") != model:
        raise InvalidInput(
            f"{path}: the vectors are of model {manifest.get('model')!r}, not {model!r} "
            "(pass --model to import them under their model's name)"
        )
    if manifest.get("dim") != int(matrix.shape[1]) or manifest.get("count") != len(ids):
        raise InvalidInput(
            f"{path}: says {manifest.get('count')} vectors of {manifest.get('dim')} dimensions, "
            f"the files hold {len(ids)} of {matrix.shape[1]}"
        )
    return manifest


def export_vectors(engine: Engine, model: str, npy: Path) -> dict[str, Any]:
    """Write every stored vector of `model`: `npy` (float32 rows), `npy`.txt (ids, line i naming row i) and
    `npy`.json (the manifest), each under a temporary name, then renamed. Returns the manifest."""
    chunks: list[np.ndarray] = []
    ids: list[str] = []
    with engine.connect() as conn:
        dim = embedding_store.stored_dim(conn, model)
        if dim is None:
            raise InvalidInput(f"no vectors of model {model!r} are stored")
        for batch in embedding_store.iter_vectors(conn, model):
            ids.extend(arxiv_id for arxiv_id, _ in batch)
            chunks.append(np.frombuffer(b"".join(blob for _, blob in batch), dtype="<f4").reshape(-1, dim))
    matrix = np.concatenate(chunks) if chunks else np.zeros((0, dim), dtype="<f4")
    manifest = {"format": MANIFEST_FORMAT, "version": 1, "model": model, "dim": dim, "count": len(ids)}
    manifest["ids"] = npy.with_suffix(".txt").name
    tmp = npy.with_name(f".{npy.name}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, matrix)
    tmp.replace(npy)
    tmp_ids = npy.with_name(f".{npy.stem}.txt.tmp")
    tmp_ids.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    tmp_ids.replace(npy.with_suffix(".txt"))
    manifest_path(npy).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest
