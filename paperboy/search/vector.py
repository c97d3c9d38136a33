"""The vector index: HNSW (usearch, float16 storage) over L2-normalised vectors keyed by arXiv id.

Why usearch with f16 vectors: measured on this machine (docs/search.md, "Vector index") it is the one library
of the three that stays under 1 KB per paper at a million papers (hnswlib keeps float32 only: 1.7 KB) while
supporting incremental add, in-place replace and delete (faiss's HNSW can do neither); its recall at f16
matches float32 graphs at the same search depth.

The file at `path` is usearch's own format; beside it `<path>.json` (the sidecar) records the model, the
dimension, the count, the id map (usearch key → arXiv id), `synced_at`, and the index file's size and CRC-32,
so that a missing, truncated, corrupt or foreign file raises `IndexUnusable` instead of answering wrongly
(usearch loads a file with a damaged body without complaint). The database stays the source of truth: the
caller rebuilds from the stored vectors on `IndexUnusable`.

Filtered search (`allowed`): usearch's Python API takes no predicate, so the index over-fetches. It asks for
`max(4k, 64)` neighbours (asking for more raises the search depth `ef` with it), keeps the allowed ones, and
when fewer than `k` pass, estimates the pass rate from what it saw and asks again for `1.5 k / rate` (at
most `max(2048, 16k)`). When even that cannot give `k`, it falls back to exact search over the allowed
vectors. When `allowed` is the `__contains__` of a set (as the searcher passes it) the pass rate is known
before searching: the first fetch is `1.5 k / rate` at once, and a set of `s` ids with `s² ≤ 2 k n` goes
straight to exact search over its own vectors (cheaper than a graph walk that deep); the exact search walks
the set. With any other callable, the exact search calls it on every id in the index. Either way a
selective filter still returns `k` results when `k` allowed papers exist.

Threads: searches run on one thread each and may run concurrently; `upsert`, `delete` take a writer lock
in chunks of `WRITE_CHUNK` vectors, so that searches interleave with a long upsert.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from paperboy.errors import IndexUnusable

FORMAT = 1
CONNECTIVITY = 24  # M: graph degree (2M on the base layer); 24 keeps a paper just under 1 KB at f16
EXPANSION_ADD = 128  # efConstruction
EXPANSION_SEARCH = 64  # ef: recall@10 0.985 at 100k MiniLM vectors, 0.969 at 1M (docs/search.md)
WRITE_CHUNK = 512  # vectors added per writer-lock hold
MIN_FETCH = 64
MAX_FETCH = 2048
_EXACT_BATCH = 8192


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds off new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _load_usearch() -> None:
    """Import usearch, after onnxruntime when that is installed: importing onnxruntime once usearch is loaded
    segfaults the process (usearch 2.x / onnxruntime 1.2x, reproduced here), and the embedder needs it."""
    with suppress(ImportError):
        import onnxruntime  # noqa: F401
    import usearch.index  # noqa: F401


def _new_usearch(dim: int) -> Any:
    _load_usearch()
    from usearch.index import Index

    return Index(
        ndim=dim,
        metric="ip",
        dtype="f16",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )


def _normalised(vectors: np.ndarray, dim: int) -> np.ndarray:
    m = np.asarray(vectors, dtype=np.float32)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2 or m.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {np.shape(vectors)}")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("vectors must be finite and non-zero")
    return np.ascontiguousarray(m / norms)


def _members(allowed: Callable[[str], bool]) -> Collection[Any] | None:
    """The collection behind `allowed` when it is a collection's `__contains__` (a set of allowed ids)."""
    owner = getattr(allowed, "__self__", None)
    if getattr(allowed, "__name__", "") == "__contains__" and isinstance(owner, Collection):
        return owner
    return None


class VectorIndex:
    """HNSW over L2-normalised float32 vectors keyed by arXiv id (str); cosine similarity."""

    synced_at: datetime | None
    synced_seq: int | None  # embeddings.change_seq up to which the index holds every stored vector

    def __init__(self, path: Path, dim: int, model: str, index: Any, ids: list[str | None], capacity: int):
        self.path = Path(path)
        self.dim = dim
        self.model = model
        self.capacity = capacity  # a hint: usearch doubles its storage by itself as vectors arrive
        self.synced_at = None
        self.synced_seq = 0
        self._index = index
        self._ids = ids  # usearch key -> arXiv id; None where a deleted paper's key is free for reuse
        self._keys = {i: k for k, i in enumerate(ids) if i is not None}
        self._free = [k for k, i in enumerate(ids) if i is None]
        self._lock = _ReadWriteLock()
        self._save_lock = threading.Lock()
        self._ef = EXPANSION_SEARCH
        self._index.expansion_search = EXPANSION_SEARCH

    # construction ---------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, dim: int, model: str, capacity: int = 10_000) -> VectorIndex:
        """A new, empty index that `save` will write to `path` (nothing is written before that)."""
        if dim <= 0:
            raise ValueError("dim must be positive")
        return cls(path, dim, model, _new_usearch(dim), [], max(capacity, 1))

    @classmethod
    def load(cls, path: Path, dim: int, model: str) -> VectorIndex:
        """The index saved at `path`; IndexUnusable when missing, damaged, or built for another model/dim."""
        path = Path(path)
        meta = cls.verify(path, dim, model)
        _load_usearch()
        from usearch.index import Index, MetricKind, ScalarKind

        try:
            index: Any = Index.restore(str(path))
        except Exception as exc:  # usearch raises ValueError / RuntimeError on a bad file
            raise IndexUnusable(f"vector index {path}: {exc}") from exc
        if index is None:
            raise IndexUnusable(f"vector index {path}: not a usearch index")
        ids: list[str | None] = meta["ids"]
        present = np.array([k for k, i in enumerate(ids) if i is not None], dtype=np.uint64)
        if (
            index.ndim != dim
            or index.metric_kind != MetricKind.IP
            or index.dtype != ScalarKind.F16
            or len(index) != meta["count"]
            or len(present) != meta["count"]
            or len({i for i in ids if i is not None}) != meta["count"]
            or (len(present) and not bool(np.all(index.contains(present))))
        ):
            raise IndexUnusable(f"vector index {path}: the file disagrees with its sidecar")
        index.expansion_add = EXPANSION_ADD
        out = cls(path, dim, model, index, ids, max(len(ids), 1))
        if meta.get("synced_at"):
            try:
                out.synced_at = datetime.fromisoformat(meta["synced_at"])
            except (TypeError, ValueError) as exc:
                raise IndexUnusable(f"vector index {path}: bad synced_at in the sidecar") from exc
        seq = meta.get("synced_seq")
        if seq is not None and not isinstance(seq, int):
            raise IndexUnusable(f"vector index {path}: bad synced_seq in the sidecar")
        # None: saved before change sequences; the index worker continues from synced_at with an overlap
        out.synced_seq = seq
        return out

    @classmethod
    def verify(cls, path: Path, dim: int, model: str) -> dict[str, Any]:
        """Check the file at `path` against its sidecar (model, dimension, size, CRC-32) without loading it;
        the sidecar's contents. IndexUnusable when missing, damaged, or built for another model/dim."""
        meta = cls._read_sidecar(path, dim, model)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise IndexUnusable(f"vector index {path}: {exc.strerror or exc}") from exc
        if size != meta["bytes"]:
            raise IndexUnusable(f"vector index {path}: {size} bytes, expected {meta['bytes']} (truncated?)")
        if _crc32(path) != meta["crc32"]:
            raise IndexUnusable(f"vector index {path}: checksum mismatch (corrupt or half-written)")
        return meta

    @staticmethod
    def _read_sidecar(path: Path, dim: int, model: str) -> dict[str, Any]:
        side = _sidecar(path)
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexUnusable(f"vector index {path}: missing ({side.name} not found)") from exc
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise IndexUnusable(f"vector index {path}: unreadable sidecar ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexUnusable(f"vector index {path}: unknown sidecar format")
        if meta.get("model") != model or meta.get("dim") != dim:
            raise IndexUnusable(
                f"vector index {path}: built for {meta.get('model')!r} (dim {meta.get('dim')}), "
                f"not {model!r} (dim {dim})"
            )
        ids = meta.get("ids")
        ok = (
            isinstance(ids, list)
            and all(i is None or isinstance(i, str) for i in ids)
            and all(isinstance(meta.get(f), int) for f in ("count", "bytes", "crc32"))
        )
        if not ok:
            raise IndexUnusable(f"vector index {path}: malformed sidecar")
        return meta

    # reading --------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, arxiv_id: object) -> bool:
        return arxiv_id in self._keys

    @property
    def expansion_search(self) -> int:
        """The HNSW search depth `ef` of an unfiltered query (a query for more than ef neighbours searches
        that deep). Raise it past a million papers to keep recall@10 above 0.95."""
        return self._ef

    @expansion_search.setter
    def expansion_search(self, ef: int) -> None:
        if ef < 1:
            raise ValueError("ef must be positive")
        self._ef = ef
        self._index.expansion_search = ef

    def get(self, arxiv_id: str) -> np.ndarray | None:
        """The stored vector of `arxiv_id` (as float32, rounded through float16), or None."""
        with self._lock.read():
            key = self._keys.get(arxiv_id)
            if key is None:
                return None
            return np.asarray(self._index.get(np.uint64(key), dtype=np.float32), dtype=np.float32)

    def search(
        self, query: np.ndarray, k: int, allowed: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """The `k` nearest ids to `query`, best first, as (arXiv id, cosine similarity); only ids for which
        `allowed` is true when it is given (see the module docstring for how a selective filter is served)."""
        if k <= 0:
            return []
        q = _normalised(query, self.dim)[0]
        with self._lock.read():
            n = len(self._keys)
            if n == 0:
                return []
            if allowed is None:
                return self._ann(q, min(k, n))
            count = max(4 * k, MIN_FETCH)
            cap = max(MAX_FETCH, 16 * k)
            members = _members(allowed)
            if members is not None:  # the pass rate is known: start at the right depth, or go exact
                size = len(members)
                if size <= k or size * size <= 2 * k * n:
                    return self._exact(q, k, allowed)
                count = max(count, int(1.5 * k * n / size))
            count = min(n, cap, count)
            while True:
                hits = self._ann(q, count)
                passed = [h for h in hits if allowed(h[0])]
                if len(passed) >= k or len(hits) >= n:
                    return passed[:k]
                if count >= min(cap, n):
                    break
                rate = len(passed) / max(len(hits), 1)
                need = 4 * count if rate == 0 else int(1.5 * k / rate) + 1
                if need > cap and rate < 0.5 * k / cap:
                    break  # too selective for the graph: go exact now rather than after more rounds
                count = min(n, cap, max(2 * count, need))
            return self._exact(q, k, allowed)

    def _ann(self, q: np.ndarray, count: int) -> list[tuple[str, float]]:
        m = self._index.search(q, count, threads=1)
        return [(self._id(key), 1.0 - float(d)) for key, d in zip(m.keys, m.distances, strict=True)]

    def _id(self, key: Any) -> str:
        arxiv_id = self._ids[int(key)]
        if arxiv_id is None:
            raise IndexUnusable("vector index: usearch returned a deleted key (rebuild the index)")
        return arxiv_id

    def _exact(self, q: np.ndarray, k: int, allowed: Callable[[str], bool]) -> list[tuple[str, float]]:
        """Brute force over the allowed vectors, in batches."""
        members = _members(allowed)
        if members is not None:
            keys = [self._keys[i] for i in members if isinstance(i, str) and i in self._keys]
        else:
            keys = [key for i, key in self._keys.items() if allowed(i)]
        best: list[tuple[float, int]] = []
        for s in range(0, len(keys), _EXACT_BATCH):
            chunk = np.array(keys[s : s + _EXACT_BATCH], dtype=np.uint64)
            vecs = np.asarray(self._index.get(chunk, dtype=np.float32), dtype=np.float32)
            sims = vecs @ q
            top = np.argsort(-sims)[:k] if len(sims) > k else np.arange(len(sims))
            best.extend((float(sims[j]), int(chunk[j])) for j in top)
            best = sorted(best, reverse=True)[:k]
        return [(self._id(key), sim) for sim, key in best]

    # writing --------------------------------------------------------------------------------------------

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, *, threads: int = 1) -> None:
        """Add the vectors, replacing those of ids already present (a later duplicate in `ids` wins).
        `threads` > 1 speeds up a bulk rebuild; searches always use one thread."""
        ids = list(ids)
        m = _normalised(vectors, self.dim) if len(ids) else np.zeros((0, self.dim), np.float32)
        if len(ids) != len(m):
            raise ValueError(f"{len(ids)} ids for {len(m)} vectors")
        last = {i: n for n, i in enumerate(ids)}
        if len(last) != len(ids):
            rows = sorted(last.values())
            ids, m = [ids[r] for r in rows], m[rows]
        for s in range(0, len(ids), WRITE_CHUNK):
            chunk_ids, chunk = ids[s : s + WRITE_CHUNK], m[s : s + WRITE_CHUNK]
            with self._lock.write():
                replaced = [self._keys[i] for i in chunk_ids if i in self._keys]
                if replaced:
                    self._index.remove(np.array(replaced, dtype=np.uint64))
                keys = np.empty(len(chunk_ids), dtype=np.uint64)
                for n, i in enumerate(chunk_ids):
                    key = self._keys.get(i)
                    if key is None:
                        key = self._free.pop() if self._free else len(self._ids)
                        if key == len(self._ids):
                            self._ids.append(i)
                        else:
                            self._ids[key] = i
                        self._keys[i] = key
                    keys[n] = key
                self._index.add(keys, chunk, threads=max(1, threads))
                self.capacity = max(self.capacity, len(self._keys))

    def delete(self, ids: Sequence[str]) -> None:
        """Remove these ids (ids not in the index are ignored)."""
        with self._lock.write():
            keys = [self._keys.pop(i) for i in set(ids) if i in self._keys]
            if keys:
                self._index.remove(np.array(keys, dtype=np.uint64))
                for key in keys:
                    self._ids[key] = None
                self._free.extend(keys)

    def save(self, to: Path | None = None) -> None:
        """Write the index and its sidecar atomically (temporary files, then os.replace); searches go on
        meanwhile, writers wait. A crash between the two renames leaves a pair whose checksum disagrees:
        `load` says IndexUnusable and the caller rebuilds. `to`: write a copy there instead (a snapshot:
        what the index holds and the `synced_seq` it holds it to, taken together)."""
        target = self.path if to is None else Path(to)
        with self._save_lock, self._lock.read():
            target.parent.mkdir(parents=True, exist_ok=True)
            tag = f".tmp-{os.getpid()}-{threading.get_ident()}"
            tmp_index = target.with_name(target.name + tag)
            side = _sidecar(target)
            tmp_side = side.with_name(side.name + tag)
            try:
                self._index.save(str(tmp_index))
                with tmp_index.open("rb+") as f:
                    os.fsync(f.fileno())
                meta = {
                    "format": FORMAT,
                    "library": "usearch",
                    "dtype": "f16",
                    "metric": "ip",
                    "model": self.model,
                    "dim": self.dim,
                    "count": len(self._keys),
                    "bytes": tmp_index.stat().st_size,
                    "crc32": _crc32(tmp_index),
                    "synced_at": self.synced_at.isoformat() if self.synced_at is not None else None,
                    "synced_seq": self.synced_seq,
                    "ids": self._ids,
                }
                with tmp_side.open("w", encoding="utf-8") as f:
                    json.dump(meta, f, separators=(",", ":"))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp_index, target)
                os.replace(tmp_side, side)
            finally:
                for t in (tmp_index, tmp_side):
                    t.unlink(missing_ok=True)
