"""Search index snapshots shared through the database: how a new node starts without rebuilding its indexes.

Each node keeps its own keyword (tantivy) and vector (usearch) index beside it; the database stays the source
of truth. Rebuilding both from the database takes about 25 + 30 minutes at a million papers, so a node that
keeps them current (the worker's index upkeep) publishes a snapshot now and then, and a node with an empty
disk starts from the newest one:

- `publish_snapshot`: a consistent copy of the keyword index folder (its committed segments, meta.json and
  the sidecar holding `synced_seq`, read first, so the marker is never ahead of the files) and of the vector
  index (written by `VectorIndex.save(to=…)` under its lock: the file, and the sidecar with the id map and
  `synced_seq`), plus a manifest, as one tar streamed into `index_snapshot_chunks` in chunks of
  `CHUNK_BYTES`. Each chunk is its own short transaction — one long one would hold PostgreSQL's xmin horizon
  back, and every node's index sync reads only below it (db.dialect.change_horizon) — and the snapshot
  becomes readable in one last transaction that records its size, sha256 and markers and prunes all but the
  newest `keep`. A snapshot whose writer died stays unreadable and is pruned after `ABANDONED_AFTER`.
- `restore_latest`: for each part that is missing, unusable, or (with `force`, or `behind` changes or more)
  behind the newest snapshot, download that snapshot into a temporary folder beside the indexes, verifying
  the chunk count, size and sha256 of the tar and then the indexes themselves (tantivy's per-file CRCs, the
  vector file's CRC against its sidecar), and move it into place. Anything refused leaves the indexes as
  they were and returns False: the node then builds from the database as before. After it, the normal
  `open_keyword_index` / `open_vector_index` (indexer.py) sync from the markers in the restored sidecars.

The tar holds `manifest.json`, `keyword/<file>` and `vectors.hnsw` + `vectors.hnsw.json`; nothing else is
extracted, and names are checked before anything is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Engine

from paperboy.db import transaction
from paperboy.errors import IndexUnusable, PaperboyError
from paperboy.search import keyword as keyword_mod
from paperboy.search.keyword import KeywordIndex
from paperboy.search.vector import VectorIndex
from paperboy.store import index_snapshots as store

log = logging.getLogger("paperboy.search")

Clock = Callable[[], datetime]

FORMAT = "paperboy-index-snapshot"
VERSION = 1
KEYWORD_DIR = "keyword"  # the layout of an index folder (serve.index_dir): keyword/ and vectors.hnsw
VECTOR_FILE = "vectors.hnsw"
MANIFEST = "manifest.json"
# 4 MiB: measured on pgserver here, 1, 4 and 16 MiB chunks write at 60-120 MB/s and read at 80-120 MB/s
# alike; 4 MiB keeps each row and each transaction small.
CHUNK_BYTES = 4 << 20
KEEP = 2  # complete snapshots kept: a node downloading the newest is not cut off by the next publish
ABANDONED_AFTER = timedelta(hours=1)  # an unfinished snapshot this old lost its writer: pruned
BEHIND = 50_000  # changes a present index may lack before a snapshot replaces it (catching up is cheaper)
_COPY_BUFFER = 1 << 20
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


@dataclass(frozen=True)
class Published:
    """What `publish_snapshot` wrote."""

    id: int
    bytes: int
    chunks: int
    sha256: str
    keyword_seq: int | None
    vector_seq: int | None
    seconds: float


@dataclass
class Restored:
    """What `restore` did (`restore_latest` answers only whether anything was restored)."""

    snapshot_id: int | None = None
    parts: tuple[str, ...] = ()  # "keyword", "vector"
    bytes: int = 0
    seconds: float = 0.0
    refused: str | None = None  # why a snapshot was not used
    details: dict[str, Any] = field(default_factory=dict)


# --- publishing ---------------------------------------------------------------------------------------------


def publish_snapshot(
    engine: Engine,
    keyword: KeywordIndex | Path,
    vector: VectorIndex | None,
    *,
    now: Clock,
    keep: int = KEEP,
    chunk_bytes: int = CHUNK_BYTES,
) -> Published:
    """Publish a snapshot of `keyword` (an open index, or the folder of one another process writes) and
    `vector` (None: keyword only) for other nodes to start from; see the module docstring."""
    if keep < 1 or chunk_bytes < 1:
        raise ValueError("keep and chunk_bytes must be positive")
    started = time.perf_counter()
    kw_path = keyword.path if isinstance(keyword, KeywordIndex) else Path(keyword)
    kw_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(kw_path.parent)
    staging = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=kw_path.parent))
    snapshot_id: int | None = None
    try:
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "keyword": _stage_keyword(kw_path, staging / KEYWORD_DIR),
        }
        if vector is not None:
            vector.save(to=staging / VECTOR_FILE)
            side = json.loads((staging / (VECTOR_FILE + ".json")).read_text(encoding="utf-8"))
            manifest["vector"] = {
                "file": VECTOR_FILE,
                "model": vector.model,
                "dim": vector.dim,
                "count": side["count"],
                "synced_seq": side.get("synced_seq"),
                "synced_at": side.get("synced_at"),
            }
        (staging / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        model = vector.model if vector is not None else None
        with transaction(engine) as conn:
            snapshot_id = store.begin(conn, model, manifest, now())
        sink = _ChunkSink(engine, snapshot_id, chunk_bytes)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_COPY_BUFFER) as tar:
            for name in _members(staging, manifest):
                tar.add(staging / name, arcname=name, recursive=False, filter=_plain)
        sink.finish()
        kw_seq = manifest["keyword"]["synced_seq"]
        vec_seq = manifest["vector"]["synced_seq"] if vector is not None else None
        digest = sink.sha256.hexdigest()
        with transaction(engine) as conn:
            done = store.complete(
                conn,
                snapshot_id,
                keyword_seq=kw_seq,
                vector_seq=vec_seq,
                manifest=manifest,
                size=sink.size,
                chunks=sink.n,
                sha256=digest,
                now=now(),
            )
            if not done:
                raise PaperboyError(f"index snapshot {snapshot_id} was pruned while it was written")
            store.prune(conn, keep, now() - ABANDONED_AFTER)
    except BaseException:
        if snapshot_id is not None:
            with contextlib.suppress(Exception), transaction(engine) as conn:
                store.delete(conn, snapshot_id)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    log.info(
        "published index snapshot %d: %d bytes in %d chunks, %.1f s", snapshot_id, sink.size, sink.n, seconds
    )
    return Published(snapshot_id, sink.size, sink.n, digest, kw_seq, vec_seq, seconds)


def _remove_abandoned(folder: Path) -> None:
    """Staging folders a publisher that died left behind (an hour old: not one being written now)."""
    cutoff = time.time() - ABANDONED_AFTER.total_seconds()
    for stale in folder.glob(".snapshot-*"):
        with contextlib.suppress(OSError):
            if stale.is_dir() and stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)


def _members(staging: Path, manifest: dict[str, Any]) -> list[str]:
    names = [MANIFEST]
    names += [f"{KEYWORD_DIR}/{f.name}" for f in sorted((staging / KEYWORD_DIR).iterdir())]
    if "vector" in manifest:
        names += [VECTOR_FILE, VECTOR_FILE + ".json"]
    return names


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Members carry no owner, and are plain readable files."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def _stage_keyword(src: Path, dest: Path) -> dict[str, Any]:
    """A consistent copy of the committed keyword index at `src` into the new folder `dest` (hard links where
    the file system allows: segment files are never changed once written); its manifest entry.

    The sidecar is read first: it is written after each commit, so the `synced_seq` it holds is never ahead of
    the segments meta.json lists afterwards. A writer may commit or merge meanwhile and delete files the copy
    wanted: then meta.json has changed, and the copy is taken again."""
    try:
        sidecar = (src / keyword_mod.SIDECAR).read_bytes()
        marker = json.loads(sidecar)
    except (OSError, ValueError) as exc:
        raise IndexUnusable(f"keyword index at {src} cannot be copied: {exc}") from exc
    for _attempt in range(10):
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        try:
            meta_text = (src / "meta.json").read_text(encoding="utf-8")
            names = keyword_mod.segment_files(src, json.loads(meta_text))
            for name in sorted(names):
                _link_or_copy(src / name, dest / name)
            if (src / "meta.json").read_text(encoding="utf-8") != meta_text:
                continue  # a commit or merge happened meanwhile: the files may be of two states
        except FileNotFoundError:
            continue  # deleted by a merge's clean-up: meta.json has moved on
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexUnusable(f"keyword index at {src} cannot be copied: {exc}") from exc
        (dest / "meta.json").write_text(meta_text, encoding="utf-8")
        (dest / keyword_mod.SIDECAR).write_bytes(sidecar)
        # tantivy deletes only files it lists as its own: list the copied ones so that merges after a
        # restore clean them up
        (dest / ".managed.json").write_text(json.dumps(sorted([*names, "meta.json"])), encoding="utf-8")
        docs = sum(int(s.get("max_doc", 0)) for s in json.loads(meta_text)["segments"])
        return {
            "dir": KEYWORD_DIR,
            "schema_version": marker.get("schema_version"),
            "synced_seq": marker.get("synced_seq"),
            "synced_at": marker.get("synced_at"),
            "files": len(names) + 3,
            "max_docs": docs,
        }
    raise IndexUnusable(f"keyword index at {src} kept changing while it was copied; try again")


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except FileNotFoundError:
        raise
    except OSError:  # another file system, or links not allowed: copy
        shutil.copyfile(src, dest)


class _ChunkSink(io.RawIOBase):
    """A write-only file that stores what is written as numbered chunks of one snapshot, each chunk in its
    own transaction, and hashes it."""

    def __init__(self, engine: Engine, snapshot_id: int, chunk_bytes: int) -> None:
        super().__init__()
        self.engine = engine
        self.snapshot_id = snapshot_id
        self.chunk_bytes = chunk_bytes
        self.buffer = bytearray()
        self.n = 0
        self.size = 0
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.buffer += view
        self.size += len(view)
        self.sha256.update(view)
        while len(self.buffer) >= self.chunk_bytes:
            self._store(bytes(self.buffer[: self.chunk_bytes]))
            del self.buffer[: self.chunk_bytes]
        return len(view)

    def finish(self) -> None:
        if self.buffer:
            self._store(bytes(self.buffer))
            self.buffer.clear()

    def _store(self, data: bytes) -> None:
        with transaction(self.engine) as conn:
            store.add_chunk(conn, self.snapshot_id, self.n, data)
        self.n += 1


# --- restoring ----------------------------------------------------------------------------------------------


def restore_latest(
    engine: Engine,
    root: Path,
    model: str | None,
    *,
    force: bool = False,
    behind: int = BEHIND,
) -> bool:
    """Put the newest snapshot's indexes in `root` (keyword/ and vectors.hnsw) where the local ones are
    missing or unusable — or, with `force`, whenever the snapshot is ahead of them, and otherwise when it is
    `behind` changes or more ahead. The vector index only from a snapshot of `model` (None: keyword only).
    True when something was restored; False when nothing needed it, no snapshot exists, or the snapshot was
    refused (logged): the caller then opens, and rebuilds, as without snapshots."""
    return bool(restore(engine, root, model, force=force, behind=behind).parts)


def restore(
    engine: Engine,
    root: Path,
    model: str | None,
    *,
    force: bool = False,
    behind: int = BEHIND,
) -> Restored:
    """`restore_latest`, answering what it did."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = Restored()
    with _node_lock(root):  # two processes of one node starting together: one restores, the other waits
        for stale in root.glob(".restore-*"):
            shutil.rmtree(stale, ignore_errors=True)
        with engine.connect() as conn:
            snap = store.latest(conn, model) if model is not None else None
            if snap is None:
                snap = store.latest(conn)
            if snap is None:
                return out
            out.snapshot_id = snap.id
            parts = _wanted_parts(conn, root, snap, model, force, behind)
        if not parts:
            return out
        started = time.perf_counter()
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=root))
        try:
            manifest = _download(engine, snap, staging, parts, out)
            _verify(staging, manifest, parts, model)
            _move_into_place(staging, root, parts)
        except IndexUnusable as exc:
            out.refused = str(exc)
            log.warning("index snapshot %d refused (%s): building from the database instead", snap.id, exc)
            return out
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        out.parts = parts
        out.bytes = snap.bytes
        out.seconds = time.perf_counter() - started
        log.info(
            "restored the %s index(es) from snapshot %d (%d bytes, %.1f s); catching up from its markers",
            " and ".join(parts),
            snap.id,
            snap.bytes,
            out.seconds,
        )
        return out


@contextlib.contextmanager
def _node_lock(root: Path) -> Iterator[None]:
    with (root / ".snapshot-restore.lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _wanted_parts(
    conn: Any, root: Path, snap: store.Snapshot, model: str | None, force: bool, behind: int
) -> tuple[str, ...]:
    parts: list[str] = []
    kw = snap.manifest.get("keyword")
    if isinstance(kw, dict) and kw.get("schema_version") == keyword_mod.SCHEMA_VERSION:
        seq = _local_keyword_seq(root / KEYWORD_DIR)
        if _ahead(
            seq, snap.keyword_seq, force, behind, lambda a, b: store.papers_changed_between(conn, a, b)
        ):
            parts.append("keyword")
    vec = snap.manifest.get("vector")
    if model is not None and snap.model == model and isinstance(vec, dict):
        seq = _local_vector_seq(root / VECTOR_FILE, model, vec.get("dim"))
        count = lambda a, b: store.vectors_changed_between(conn, model, a, b)  # noqa: E731
        if _ahead(seq, snap.vector_seq, force, behind, count):
            parts.append("vector")
    return tuple(parts)


_MISSING = object()  # a local part that is absent or unusable


def _ahead(
    local: Any, snap_seq: int | None, force: bool, behind: int, count: Callable[[int, int], int]
) -> bool:
    """Whether the snapshot's part should replace the local one."""
    if local is _MISSING:
        return True
    if local is None or snap_seq is None or snap_seq <= local:
        return False  # an index saved before change sequences, or one as new as the snapshot: keep it
    return force or count(local, snap_seq) >= behind


def _local_keyword_seq(path: Path) -> Any:
    """The local keyword index's synced_seq (None: saved before change sequences), or _MISSING."""
    try:
        side = json.loads((path / keyword_mod.SIDECAR).read_text(encoding="utf-8"))
        if not (path / "meta.json").is_file() or side.get("schema_version") != keyword_mod.SCHEMA_VERSION:
            return _MISSING
        seq = side.get("synced_seq")
        return seq if isinstance(seq, int) or seq is None else _MISSING
    except (OSError, ValueError, AttributeError):
        return _MISSING


def _local_vector_seq(path: Path, model: str, dim: Any) -> Any:
    """The local vector index's synced_seq (None: saved before change sequences), or _MISSING: absent, of
    another model or dimension, or a file of the wrong size (its CRC is checked when it is opened)."""
    try:
        side = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
        if side.get("model") != model or side.get("dim") != dim or path.stat().st_size != side.get("bytes"):
            return _MISSING
        seq = side.get("synced_seq")
        return seq if isinstance(seq, int) or seq is None else _MISSING
    except (OSError, ValueError, AttributeError):
        return _MISSING


class _ChunkSource(io.RawIOBase):
    """A read-only file over one snapshot's chunks, fetched one at a time, hashed as they are read."""

    def __init__(self, engine: Engine, snap: store.Snapshot) -> None:
        super().__init__()
        self.engine = engine
        self.snap = snap
        self.n = 0
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.buffer = b""
        self.offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        if self.offset >= len(self.buffer) and not self._next():
            return 0
        take = min(len(view), len(self.buffer) - self.offset)
        view[:take] = self.buffer[self.offset : self.offset + take]
        self.offset += take
        return take

    def _next(self) -> bool:
        if self.n >= self.snap.chunks:
            return False
        with self.engine.connect() as conn:
            data = store.chunk(conn, self.snap.id, self.n)
        if data is None:
            raise IndexUnusable(f"snapshot {self.snap.id}: chunk {self.n} of {self.snap.chunks} is missing")
        self.n += 1
        self.size += len(data)
        if self.size > self.snap.bytes:
            raise IndexUnusable(f"snapshot {self.snap.id}: more bytes than the {self.snap.bytes} recorded")
        self.sha256.update(data)
        self.buffer, self.offset = data, 0
        return True

    def drain(self) -> None:
        """Read what the tar reader left (its end-of-archive padding), so the whole is hashed."""
        self.offset = len(self.buffer)
        while self._next():
            self.offset = len(self.buffer)


def _download(
    engine: Engine, snap: store.Snapshot, staging: Path, parts: tuple[str, ...], out: Restored
) -> dict[str, Any]:
    """Extract the members of `parts` (and the manifest) into `staging`, then check the whole tar's size and
    sha256 against the row's; the manifest."""
    source = _ChunkSource(engine, snap)
    manifest: dict[str, Any] | None = None
    t = time.perf_counter()
    try:
        reader = io.BufferedReader(source, buffer_size=_COPY_BUFFER)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                target = _target(member, staging)
                if not member.isfile():
                    raise IndexUnusable(f"snapshot {snap.id}: {member.name!r} is not a plain file")
                if manifest is None and member.name != MANIFEST:
                    raise IndexUnusable(f"snapshot {snap.id}: no manifest first")
                wanted = member.name == MANIFEST or (
                    ("keyword" if member.name.startswith(KEYWORD_DIR + "/") else "vector") in parts
                )
                f = tar.extractfile(member)
                if f is None:
                    raise IndexUnusable(f"snapshot {snap.id}: {member.name!r} cannot be read")
                if not wanted:
                    continue  # the stream reader skips its bytes (still hashed)
                _write_file(f, target)
                if member.name == MANIFEST:
                    manifest = _read_manifest(target, snap.id)
        source.drain()
    except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
        raise IndexUnusable(f"snapshot {snap.id} is damaged: {exc}") from exc
    out.details["download_s"] = round(time.perf_counter() - t, 3)
    if source.n != snap.chunks or source.size != snap.bytes:
        raise IndexUnusable(
            f"snapshot {snap.id}: {source.n} chunks and {source.size} bytes,"
            f" expected {snap.chunks} and {snap.bytes}"
        )
    if snap.sha256 is None or source.sha256.hexdigest() != snap.sha256:
        raise IndexUnusable(f"snapshot {snap.id}: sha256 mismatch (corrupt or altered chunks)")
    if manifest is None:
        raise IndexUnusable(f"snapshot {snap.id}: no manifest")
    return manifest


def _target(member: tarfile.TarInfo, staging: Path) -> Path:
    """Where a member goes: only the names a snapshot holds, checked before anything is written."""
    name = member.name
    if name in (MANIFEST, VECTOR_FILE, VECTOR_FILE + ".json"):
        return staging / name
    head, _, tail = name.partition("/")
    if head == KEYWORD_DIR and _FILE_NAME.fullmatch(tail) and tail not in (".", ".."):
        return staging / KEYWORD_DIR / tail
    raise IndexUnusable(f"unexpected member {name!r} in an index snapshot")


def _write_file(src: IO[bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as f:
        shutil.copyfileobj(src, f, _COPY_BUFFER)
        f.flush()
        os.fsync(f.fileno())


def _read_manifest(path: Path, snapshot_id: int) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexUnusable(f"snapshot {snapshot_id}: unreadable manifest ({exc})") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or manifest.get("version") != VERSION
    ):
        raise IndexUnusable(f"snapshot {snapshot_id}: not a snapshot this paperboy reads")
    return manifest


def _verify(staging: Path, manifest: dict[str, Any], parts: tuple[str, ...], model: str | None) -> None:
    """The restored indexes open: tantivy's files pass their checksums, the vector file its sidecar's."""
    if "keyword" in parts:
        index = KeywordIndex.open(staging / KEYWORD_DIR)  # IndexUnusable when damaged or of another schema
        del index
    if "vector" in parts:
        vec = manifest.get("vector") or {}
        if model is None or vec.get("model") != model or not isinstance(vec.get("dim"), int):
            raise IndexUnusable("the snapshot's vector index is of another model")
        VectorIndex.verify(staging / VECTOR_FILE, vec["dim"], model)


def _move_into_place(staging: Path, root: Path, parts: tuple[str, ...]) -> None:
    """Renames within one file system. A crash between two of them leaves a part missing or a vector file
    whose sidecar disagrees: both are found at the next start (restored again, or rebuilt)."""
    if "keyword" in parts:
        live = root / KEYWORD_DIR
        old = root / f".old-keyword-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        if live.exists():
            live.rename(old)
        (staging / KEYWORD_DIR).rename(live)
        shutil.rmtree(old, ignore_errors=True)
    if "vector" in parts:
        os.replace(staging / VECTOR_FILE, root / VECTOR_FILE)
        os.replace(staging / (VECTOR_FILE + ".json"), root / (VECTOR_FILE + ".json"))
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
