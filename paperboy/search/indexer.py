"""Keeping the search indexes current with the database, which stays the source of truth.

- `sync_keyword`: papers changed since the keyword index's `synced_at` go into it (fast: runs right after
  every ingest, so new papers are findable by keyword at once).
- `embed_pending`: papers without a current vector are embedded in batches, stored in `embeddings` and added
  to the vector index (slow: runs behind ingest, in `paperboy serve`'s indexer thread or `paperboy index
  update`).
- `sync_vector`: vectors stored by another process since the index's `synced_at` are added to it.
- `open_keyword_index` / `open_vector_index`: load the persisted index, or rebuild it from the database when
  it is missing, corrupt or built for another model.
"""

from __future__ import annotations

import logging
import shutil
import weakref
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy.engine import Engine

from paperboy.db import dialect, transaction
from paperboy.errors import IndexUnusable
from paperboy.models import Paper
from paperboy.search.embed import Embedder, document_text, text_hash
from paperboy.search.keyword import KeywordDoc, KeywordIndex
from paperboy.search.vector import VectorIndex
from paperboy.store import deletions
from paperboy.store import embeddings as embedding_store
from paperboy.store import papers as store

log = logging.getLogger("paperboy.search")

Clock = Callable[[], datetime]
Progress = Callable[[int, int | None], None]  # (done so far, total when known)


def keyword_doc(p: Paper) -> KeywordDoc:
    published: date | None = p.published_at.date() if p.published_at else None
    return KeywordDoc(p.arxiv_id, p.title, p.abstract, p.authors, p.categories, published)


# An index saved before change sequences knows only the time of the last change it took (stamped before that
# change's transaction committed): it continues from the last change made this long before that time, so
# any transaction that was still open then is synced too (each paper again at most once; upserts are
# idempotent).
LEGACY_OVERLAP = timedelta(hours=1)


def drop_deleted(engine: Engine, index: KeywordIndex | VectorIndex) -> int:
    """Take deleted papers (store/deletions.py) out of `index`; returns how many it held.

    Deletions are rare, so the whole list is read — only when their count differs from the last time this
    index looked (an index opened afresh looks once). Nothing is written when the index holds none of them."""
    with engine.connect() as conn:
        n = deletions.count_deletions(conn)
        if n == _deletions_seen.get(index):
            return 0
        ids = deletions.deleted_ids(conn)
    if isinstance(index, VectorIndex):
        held = [i for i in ids if i in index]
        if held:
            index.delete(held)
            index.save()
    else:
        held = index.holding(ids)
        if held:
            index.delete(held)
            index.commit()
    _deletions_seen[index] = n
    return len(held)


# index -> the number of deletions it had seen (in memory: a fresh process checks once)
_deletions_seen: weakref.WeakKeyDictionary[KeywordIndex | VectorIndex, int] = weakref.WeakKeyDictionary()


def sync_keyword(
    engine: Engine, index: KeywordIndex, batch: int = 2000, progress: Progress | None = None
) -> int:
    """Put every paper changed after the index's `synced_seq` into it, in commit order; returns how many.

    The cursor is a change sequence given at commit order (db.dialect.next_change_seq), read only below the
    horizon of what is committed for good: a transaction that commits late is synced late, never skipped.
    """
    dropped = drop_deleted(engine, index)
    done = 0
    with engine.connect() as conn:
        cursor = index.synced_seq
        if cursor is None:
            since = index.synced_at
            cursor = store.change_seq_before(conn, since - LEGACY_OVERLAP) if since is not None else 0
        horizon = dialect.change_horizon(conn)
    after = (cursor + 1, "")  # every change after `cursor`
    while True:
        with engine.connect() as conn:
            rows = store.changes_after(conn, after, batch, horizon)
        if not rows:
            break
        index.upsert([keyword_doc(c.paper) for c in rows])
        last = rows[-1]
        after = (last.seq, last.paper.arxiv_id)
        # Other papers of the last page's change may come on the next page: until then, only the changes
        # before it are complete in the index.
        index.synced_seq = last.seq - 1 if len(rows) == batch else last.seq
        index.synced_at = last.changed_at
        index.commit()
        done += len(rows)
        if progress is not None:
            progress(done, None)
    final = after[0] if done else cursor  # the last page was empty: every change up to here is in
    if index.synced_seq != final:
        index.synced_seq = final
        index.commit()
    return done + dropped


def embed_pending(
    engine: Engine,
    embedder: Embedder,
    index: VectorIndex,
    now: Clock,
    batch: int = 64,
    limit: int | None = None,
    save_every: int = 50,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Embed papers whose vector is missing or stale, store the vectors, add them to the index.

    Newest first (`embeddings.pending`): the newest daily list, then by arXiv date, so today's papers are
    the first to be found by meaning and to get "Similar papers". A paper whose text did not change (only
    its upvotes or stars did) keeps its vector. Returns how many papers were embedded. The index is saved
    every `save_every` batches and at the end.
    """
    with engine.connect() as conn:
        total = embedding_store.count_pending(conn, embedder.model)
    if limit is not None:
        total = min(total, limit)
    done = 0
    batches = 0
    while done < total and not should_stop():
        with engine.connect() as conn:  # each batch leaves the pending list: the next query continues
            todo = embedding_store.pending(conn, embedder.model, min(batch, total - done))
        if not todo:
            break
        fresh, vectors = store_vectors(engine, embedder, todo, now)
        if fresh:
            index.upsert(fresh, vectors)
        done += len(todo)
        batches += 1
        if batches % save_every == 0:
            index.save()
        if progress is not None:
            progress(done, total)
    if batches:
        index.save()
    return done


def store_vectors(
    engine: Engine, embedder: Embedder, todo: list[embedding_store.PendingText], now: Clock
) -> tuple[list[str], np.ndarray]:
    """Embed the papers of `todo` whose text changed since their stored vector, and store the vectors (one
    upsert: a second process storing the same paper at once is harmless); papers whose text did not change
    are only marked current. Returns the ids embedded and their vectors (rows in that order)."""
    texts = {t.arxiv_id: document_text(t.title, t.abstract) for t in todo}
    hashes = {i: text_hash(t) for i, t in texts.items()}
    same = {t.arxiv_id: t.paper_seq for t in todo if t.stored_hash == hashes[t.arxiv_id]}
    fresh = [t.arxiv_id for t in todo if t.stored_hash != hashes[t.arxiv_id]]
    seqs = {t.arxiv_id: t.paper_seq for t in todo}
    vectors = embedder.embed_documents([texts[i] for i in fresh]) if fresh else np.zeros((0, embedder.dim))
    vectors = np.asarray(vectors, dtype=np.float32)
    with transaction(engine) as conn:
        at = now()
        embedding_store.touch(conn, embedder.model, same, at)
        rows = [(i, vectors[n].astype("<f4").tobytes(), hashes[i]) for n, i in enumerate(fresh)]
        embedding_store.save(conn, embedder.model, embedder.dim, rows, at, seqs)
    return fresh, vectors


def embed_ids(engine: Engine, embedder: Embedder, ids: list[str], now: Clock) -> int:
    """Embed and store the vectors of those of `ids` still waiting for one (a batch job of the embedding
    backfill: any worker may take it, and taking it twice only re-checks); returns how many were pending.
    No index is touched: every node adds the stored vectors to its own (`sync_vector`)."""
    with engine.connect() as conn:
        todo = embedding_store.pending_among(conn, embedder.model, ids)
    if todo:
        store_vectors(engine, embedder, todo, now)
    return len(todo)


def sync_vector(engine: Engine, index: VectorIndex, model: str, batch: int = 5000) -> int:
    """Add to the index the vectors stored after its `synced_seq` (by this process's embedder or another
    process), in commit order; returns how many. Same cursor rules as `sync_keyword`."""
    dropped = drop_deleted(engine, index)
    added = 0
    with engine.connect() as conn:
        cursor = index.synced_seq
        if cursor is None:
            since = index.synced_at
            cursor = (
                embedding_store.change_seq_before(conn, model, since - LEGACY_OVERLAP)
                if since is not None
                else 0
            )
        horizon = dialect.change_horizon(conn)
    after = (cursor + 1, "")  # every vector written after `cursor`
    while True:
        with engine.connect() as conn:
            rows = embedding_store.vectors_after(conn, model, after, batch, horizon)
        if not rows:
            break
        matrix = np.vstack([np.frombuffer(r.vector, dtype="<f4") for r in rows])
        index.upsert([r.arxiv_id for r in rows], matrix)
        added += len(rows)
        after = (rows[-1].seq, rows[-1].arxiv_id)
        if len(rows) < batch:
            break
    if added or index.synced_seq != cursor:
        index.synced_seq = after[0] if added else cursor
        with engine.connect() as conn:
            index.synced_at = embedding_store.latest(conn, model)
        index.save()
    return added + dropped


def open_keyword_index(
    path: Path, engine: Engine, progress: Progress | None = None, sync: bool = True
) -> KeywordIndex:
    """The keyword index at `path` (emptied to be rebuilt from the database when unusable), synced unless
    `sync` is False (the server's index worker syncs it in the background instead)."""
    try:
        index = KeywordIndex.open(path)
    except IndexUnusable as exc:
        log.warning("keyword index unusable (%s): rebuilding from the database", exc)
        shutil.rmtree(path, ignore_errors=True)
        index = KeywordIndex.open(path)
    if sync:
        sync_keyword(engine, index, progress=progress)
    return index


def open_vector_index(path: Path, engine: Engine, model: str, dim: int, sync: bool = True) -> VectorIndex:
    """The vector index at `path`, rebuilt from the stored vectors when missing, unusable or stale (the
    rebuild happens in `sync_vector`, now or — with `sync` False — in the server's index worker)."""
    try:
        index = VectorIndex.load(path, dim, model)
    except IndexUnusable as exc:
        first_time = not any(path.parent.glob(path.name + "*"))
        log.log(
            logging.INFO if first_time else logging.WARNING,
            "vector index: %s; building it from the database",
            exc,
        )
        with engine.connect() as conn:
            capacity = max(10_000, embedding_store.count(conn, model))
        index = VectorIndex.create(path, dim, model, capacity)
    if sync:
        sync_vector(engine, index, model)
    return index


def rebuild_keyword(path: Path, engine: Engine, progress: Progress | None = None) -> KeywordIndex:
    shutil.rmtree(path, ignore_errors=True)
    return open_keyword_index(path, engine, progress)


def forget_vectors(engine: Engine, model: str) -> None:
    """Drop the stored vectors of `model` so that every paper is embedded again (`paperboy index rebuild`)."""
    with transaction(engine) as conn:
        embedding_store.delete_model(conn, model)
