"""Index snapshots shared through the database (paperboy/search/snapshot.py), on SQLite and PostgreSQL.

Node A keeps its indexes current and publishes a snapshot; node B starts with an empty disk, restores the
snapshot and catches up from its markers. B must answer what A answers, find what was written after the
snapshot, refuse a damaged snapshot without leaving half an index, and never miss a paper that was being
written while A published.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from searchkit import NOW, HashEmbedder, paper
from sqlalchemy.engine import Engine

from paperboy.db import schema, transaction, write
from paperboy.models import Paper, Record
from paperboy.search import indexer, snapshot
from paperboy.search.hybrid import Searcher
from paperboy.search.keyword import KeywordIndex
from paperboy.search.query import SearchQuery
from paperboy.search.vector import VectorIndex
from paperboy.store import deletions
from paperboy.store import index_snapshots as snapshot_store
from paperboy.store.papers import upsert_records

WORDS = [
    "attention",
    "cache",
    "decoding",
    "memory",
    "graph",
    "retrieval",
    "language",
    "vision",
    "robot",
    "policy",
    "reward",
    "sparse",
    "dense",
    "kernel",
    "tensor",
    "quantum",
    "protein",
    "molecule",
    "speech",
    "audio",
    "diffusion",
    "token",
    "prompt",
    "agent",
    "planning",
    "search",
    "index",
    "vector",
    "embedding",
    "contrastive",
    "federated",
    "privacy",
    "fairness",
    "causal",
    "bandit",
    "optimizer",
    "gradient",
]
QUERIES = [
    "attention cache",
    "protein molecule diffusion",
    "privacy federated",
    "robot planning reward",
    "zzz",
]


def _papers(start: int, count: int, seed: int = 0) -> list[Paper]:
    rng = random.Random(seed * 100_003 + start)
    out = []
    for i in range(start, start + count):
        title = " ".join(rng.sample(WORDS, 4))
        abstract = " ".join(rng.choices(WORDS, k=25))
        out.append(paper(f"2611.{i:05d}", title.capitalize(), abstract.capitalize() + ".", day=1 + i % 28))
    return out


def _write(engine: Engine, papers: list[Paper]) -> None:
    with engine.connect() as conn, write(conn):
        upsert_records(conn, [Record(p) for p in papers], NOW)


class WordEmbedder(HashEmbedder):
    """HashEmbedder with a random direction per word instead of a hashed axis: no two different texts tie, so
    two HNSW graphs of the same vectors (the publisher's, grown by upserts, and a restored one) rank alike."""

    model = "test-words-64"

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float64)
        for w in re.findall(r"\w+", text.lower()):
            seed = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            v += np.random.default_rng(seed).standard_normal(self.dim)
        n = float(np.linalg.norm(v))
        return (v / n if n else np.eye(self.dim)[0]).astype(np.float32)


class Node:
    """One machine's search indexes in `root` (the layout of serve.index_dir)."""

    def __init__(self, engine: Engine, root: Path, embedder: HashEmbedder) -> None:
        self.engine, self.root, self.embedder = engine, root, embedder

    def open(self, sync: bool = True) -> tuple[KeywordIndex, VectorIndex]:
        kw = indexer.open_keyword_index(self.root / snapshot.KEYWORD_DIR, self.engine, sync=sync)
        vec = indexer.open_vector_index(
            self.root / snapshot.VECTOR_FILE, self.engine, self.embedder.model, self.embedder.dim, sync=sync
        )
        return kw, vec


def _embed(engine: Engine, embedder: HashEmbedder, vec: VectorIndex) -> int:
    return indexer.embed_pending(engine, embedder, vec, lambda: NOW, batch=64)


def _answers(engine: Engine, kw: KeywordIndex, vec: VectorIndex, embedder: HashEmbedder) -> list[object]:
    searcher = Searcher(kw, vec, embedder)  # type: ignore[arg-type]
    out: list[object] = []
    with engine.connect() as conn:
        for q in QUERIES:
            out.append(kw.search(q, 20))
            out.append([i for i, _ in vec.search(embedder.embed_query(q), 10)])
            res = searcher.search(conn, SearchQuery(q, limit=20))
            out.append(
                ([h.item.paper.arxiv_id for h in res.hits], res.total, res.matches, res.related, res.modes)
            )
    return out


def _publisher(engine: Engine, tmp_path: Path, n: int = 150) -> tuple[Node, KeywordIndex, VectorIndex]:
    _write(engine, _papers(0, n))
    node = Node(engine, tmp_path / "a", WordEmbedder())
    kw, vec = node.open()
    assert _embed(engine, node.embedder, vec) == n
    # as the index worker's next tick does: the vectors it stored move its marker (embedding alone does not)
    indexer.sync_vector(engine, vec, node.embedder.model)
    return node, kw, vec


def test_a_restored_node_answers_the_same_searches_as_the_publisher(engine: Engine, tmp_path: Path) -> None:
    a, kw_a, vec_a = _publisher(engine, tmp_path)
    published = snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW, chunk_bytes=64 << 10)
    assert published.chunks > 1 and published.keyword_seq is not None and published.vector_seq is not None

    b = Node(engine, tmp_path / "b", WordEmbedder())
    assert snapshot.restore_latest(engine, b.root, b.embedder.model) is True
    kw_b, vec_b = b.open(sync=False)
    # the indexes came from the snapshot, not from the database: there is nothing left to catch up on
    assert kw_b.count() == 150 and len(vec_b) == 150
    assert indexer.sync_keyword(engine, kw_b) == 0
    assert indexer.sync_vector(engine, vec_b, b.embedder.model) == 0
    assert _answers(engine, kw_b, vec_b, b.embedder) == _answers(engine, kw_a, vec_a, a.embedder)
    # up to date now: a second call restores nothing
    assert snapshot.restore_latest(engine, b.root, b.embedder.model) is False
    kw_a.close()
    kw_b.close()


def test_a_node_of_another_model_restores_the_keyword_index_only(engine: Engine, tmp_path: Path) -> None:
    _, kw_a, vec_a = _publisher(engine, tmp_path, n=40)
    snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW)
    root = tmp_path / "b"
    done = snapshot.restore(engine, root, "another-model")
    assert done.parts == ("keyword",)
    assert (root / snapshot.KEYWORD_DIR / "meta.json").is_file()
    assert not (root / snapshot.VECTOR_FILE).exists()
    kw_a.close()


def test_papers_written_after_the_snapshot_are_found_after_catch_up(engine: Engine, tmp_path: Path) -> None:
    a, kw_a, vec_a = _publisher(engine, tmp_path, n=120)
    snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW)
    later = _papers(1000, 30, seed=1)
    _write(engine, later)
    assert _embed(engine, a.embedder, vec_a) == 30  # A's embedder stores their vectors in the database
    gone = "2611.00007"
    gone_title = _papers(0, 120)[7].title
    with transaction(engine) as conn:
        assert deletions.delete_papers(conn, [gone], NOW) == [gone]

    b = Node(engine, tmp_path / "b", WordEmbedder())
    assert snapshot.restore_latest(engine, b.root, b.embedder.model)
    kw_b, vec_b = b.open(sync=False)
    assert gone in _found(kw_b, gone_title) and not kw_b.holding([p.arxiv_id for p in later])
    # catch-up takes only what came after the snapshot (30 papers, 1 deletion), not the whole database
    assert indexer.sync_keyword(engine, kw_b) == 31
    assert indexer.sync_vector(engine, vec_b, b.embedder.model) == 31
    for p in later:
        assert p.arxiv_id in {i for i, _ in kw_b.search(p.title, 5)}
        assert vec_b.search(b.embedder.embed_query(f"{p.title}. {p.abstract}"), 1)[0][0] == p.arxiv_id
    assert gone not in _found(kw_b, gone_title) and gone not in vec_b
    indexer.sync_keyword(engine, kw_a)
    indexer.sync_vector(engine, vec_a, a.embedder.model)
    assert _answers(engine, kw_b, vec_b, b.embedder) == _answers(engine, kw_a, vec_a, a.embedder)
    kw_a.close()
    kw_b.close()


def _files(root: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(root): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != ".snapshot-restore.lock"
    }


def _found(kw: KeywordIndex, title: str) -> set[str]:
    return {i for i, _ in kw.search(title, 1000)}


def _damage(engine: Engine, how: str) -> None:
    chunks = schema.index_snapshot_chunks
    with engine.begin() as conn:
        sid, n = conn.execute(sa.select(sa.func.max(chunks.c.snapshot_id), sa.func.max(chunks.c.n))).one()
        middle = n // 2
        where = (chunks.c.snapshot_id == sid) & (chunks.c.n == middle)
        if how == "missing":
            conn.execute(sa.delete(chunks).where(where))
            return
        data = bytearray(conn.execute(sa.select(chunks.c.data).where(where)).scalar_one())
        if how == "flipped":
            data[len(data) // 2] ^= 0x01
        else:  # truncated
            del data[len(data) // 3 :]
        conn.execute(sa.update(chunks).where(where).values(data=bytes(data)))


@pytest.mark.parametrize("how", ["flipped", "truncated", "missing"])
def test_a_damaged_snapshot_is_refused_and_nothing_half_written_is_left(
    engine: Engine, tmp_path: Path, how: str
) -> None:
    a, kw_a, vec_a = _publisher(engine, tmp_path, n=80)
    snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW, chunk_bytes=32 << 10)
    _damage(engine, how)

    b = Node(engine, tmp_path / "b", WordEmbedder())
    done = snapshot.restore(engine, b.root, b.embedder.model)
    assert done.parts == () and done.refused
    assert sorted(p.name for p in b.root.iterdir()) == [".snapshot-restore.lock"]  # nothing else written

    # A node whose indexes exist keeps them as they were when a forced restore is refused.
    c = Node(engine, tmp_path / "c", WordEmbedder())
    kw_c, _ = c.open()
    kw_c.close()
    before = _files(c.root)
    _write(engine, _papers(500, 5, seed=2))
    indexer.sync_keyword(engine, kw_a)
    _embed(engine, a.embedder, vec_a)
    indexer.sync_vector(engine, vec_a, a.embedder.model)
    snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW, chunk_bytes=32 << 10)  # ahead of C
    _damage(engine, how)
    assert snapshot.restore(engine, c.root, c.embedder.model, force=True).refused
    assert _files(c.root) == before

    # and B, refused, builds from the database as before: the same answers
    kw_b, vec_b = b.open()
    indexer.sync_keyword(engine, kw_a)
    indexer.sync_vector(engine, vec_a, a.embedder.model)
    assert _answers(engine, kw_b, vec_b, b.embedder) == _answers(engine, kw_a, vec_a, a.embedder)
    kw_a.close()
    kw_b.close()


def test_publishing_while_papers_are_written_never_skips_a_paper(engine: Engine, tmp_path: Path) -> None:
    """A writes papers and vectors and syncs its indexes in other threads while it publishes: every change up
    to a snapshot's markers is in its files, so a node restored from any of them misses nothing."""
    a, kw_a, vec_a = _publisher(engine, tmp_path, n=50)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            start = 2000
            while not stop.is_set():
                _write(engine, _papers(start, 3, seed=3))
                start += 3
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    def syncer() -> None:
        try:
            while not stop.is_set():
                indexer.sync_keyword(engine, kw_a, batch=7)  # small pages: many commits, merges, deletions
                _embed(engine, a.embedder, vec_a)
                indexer.sync_vector(engine, vec_a, a.embedder.model, batch=7)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=syncer)]
    for t in threads:
        t.start()
    published = []
    try:
        for _ in range(4):
            published.append(snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW, keep=10))
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors

    with engine.connect() as conn:
        snaps = snapshot_store.all_snapshots(conn)
    assert [s.id for s in snaps] == [p.id for p in reversed(published)]
    papers_t, emb_t = schema.papers, schema.embeddings
    for s in snaps:  # every snapshot, not only the newest: each must hold what its markers promise
        node = Node(engine, tmp_path / f"b{s.id}", WordEmbedder())
        with engine.begin() as conn:  # make snapshot s the newest: the one restore takes
            conn.execute(
                sa.update(schema.index_snapshots)
                .where(schema.index_snapshots.c.id > s.id)
                .values(completed_at=None)
            )
        assert snapshot.restore_latest(engine, node.root, node.embedder.model)
        kw_b, vec_b = node.open(sync=False)
        assert kw_b.synced_seq == s.keyword_seq and vec_b.synced_seq == s.vector_seq
        with engine.connect() as conn:
            promised = list(
                conn.execute(
                    sa.select(papers_t.c.arxiv_id).where(papers_t.c.change_seq <= s.keyword_seq)
                ).scalars()
            )
            vectors = list(
                conn.execute(
                    sa.select(emb_t.c.arxiv_id).where(
                        emb_t.c.model == node.embedder.model, emb_t.c.change_seq <= s.vector_seq
                    )
                ).scalars()
            )
        assert promised and sorted(kw_b.holding(promised)) == sorted(promised)
        assert vectors and all(i in vec_b for i in vectors)
        # catch-up brings it to the whole database
        indexer.sync_keyword(engine, kw_b)
        indexer.sync_vector(engine, vec_b, node.embedder.model)
        with engine.connect() as conn:
            every = list(conn.execute(sa.select(papers_t.c.arxiv_id)).scalars())
            stored = list(
                conn.execute(
                    sa.select(emb_t.c.arxiv_id).where(emb_t.c.model == node.embedder.model)
                ).scalars()
            )
        assert kw_b.count() == len(every) and sorted(kw_b.holding(every)) == sorted(every)
        assert all(i in vec_b for i in stored)
        kw_b.close()
        with engine.begin() as conn:
            conn.execute(sa.update(schema.index_snapshots).values(completed_at=NOW))
    kw_a.close()


def test_only_the_newest_snapshots_are_kept_and_an_unfinished_one_is_never_read(
    engine: Engine, tmp_path: Path
) -> None:
    _, kw_a, vec_a = _publisher(engine, tmp_path, n=20)
    ids = [snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW, keep=2).id for _ in range(3)]
    with engine.connect() as conn:
        assert [s.id for s in snapshot_store.all_snapshots(conn)] == ids[:0:-1]
        n_chunks = conn.execute(sa.select(sa.func.count()).select_from(schema.index_snapshot_chunks)).scalar()
    assert n_chunks == sum(s.chunks for s in _all(engine))  # the pruned snapshot's chunks went with it

    # A writer that died mid-way leaves an unfinished snapshot: never read, pruned once abandoned.
    with transaction(engine) as conn:
        dead = snapshot_store.begin(conn, WordEmbedder.model, {"format": "x"}, NOW - timedelta(hours=2))
        snapshot_store.add_chunk(conn, dead, 0, b"half")
    with engine.connect() as conn:
        assert snapshot_store.latest(conn, WordEmbedder.model).id == ids[-1]  # type: ignore[union-attr]
    later = NOW + timedelta(minutes=1)
    snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: later, keep=2)
    assert dead not in [s.id for s in _all(engine)]
    kw_a.close()


def _all(engine: Engine) -> list[snapshot_store.Snapshot]:
    with engine.connect() as conn:
        return snapshot_store.all_snapshots(conn)


def test_a_present_index_is_replaced_only_when_far_behind(engine: Engine, tmp_path: Path) -> None:
    _, kw_a, vec_a = _publisher(engine, tmp_path, n=30)
    b = Node(engine, tmp_path / "b", WordEmbedder())
    kw_b, vec_b = b.open()  # B built its indexes from the database, then stopped
    kw_b.close()
    vec_b.save()
    _write(engine, _papers(3000, 12, seed=4))
    indexer.sync_keyword(engine, kw_a)
    snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW)
    assert snapshot.restore(engine, b.root, b.embedder.model).parts == ()  # 12 changes behind: catch up
    assert snapshot.restore(engine, b.root, b.embedder.model, behind=10).parts == ("keyword",)
    kw_b = KeywordIndex.open(b.root / snapshot.KEYWORD_DIR)
    assert kw_b.count() == 42 and indexer.sync_keyword(engine, kw_b) == 0
    kw_b.close()
    kw_a.close()


def test_open_search_starts_from_the_snapshot_when_asked(engine: Engine, tmp_path: Path) -> None:
    """What `paperboy web` calls at start-up: open_search(..., snapshot=True) restores, then syncs."""
    from paperboy.config import Settings
    from paperboy.serve import index_dir, open_search

    _, kw_a, vec_a = _publisher(engine, tmp_path, n=60)
    snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW)
    _write(engine, _papers(4000, 7, seed=5))
    settings = Settings(data_dir=tmp_path / "b")
    parts = open_search(settings, engine, embedder=WordEmbedder(), sync=False, snapshot=True)
    assert parts.vector is not None
    assert parts.keyword.count() == 60 and len(parts.vector) == 60  # restored, not rebuilt
    assert indexer.sync_keyword(engine, parts.keyword) == 7
    assert (index_dir(settings) / snapshot.KEYWORD_DIR / "meta.json").is_file()
    parts.keyword.close()
    kw_a.close()


def test_a_snapshot_of_another_keyword_schema_is_not_downloaded(engine: Engine, tmp_path: Path) -> None:
    """After an upgrade that changes the keyword index's schema, an older snapshot's keyword index is of no
    use: the node builds it from the database (the vector index still comes from the snapshot)."""
    _, kw_a, vec_a = _publisher(engine, tmp_path, n=20)
    published = snapshot.publish_snapshot(engine, kw_a, vec_a, now=lambda: NOW)
    with engine.begin() as conn:
        row = schema.index_snapshots.c
        manifest = conn.execute(sa.select(row.manifest).where(row.id == published.id)).scalar_one()
        manifest["keyword"]["schema_version"] = -1
        conn.execute(
            sa.update(schema.index_snapshots).where(row.id == published.id).values(manifest=manifest)
        )
    done = snapshot.restore(engine, tmp_path / "b", WordEmbedder.model)
    assert done.parts == ("vector",)
    assert not (tmp_path / "b" / snapshot.KEYWORD_DIR).exists()
    kw_a.close()


def test_a_restored_keyword_index_deletes_its_merged_away_files(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """tantivy deletes only the files it lists as its own (.managed.json): a restored index lists the files it
    came with, so once merges replace them they go, instead of filling the disk."""
    _write(sqlite_engine, _papers(0, 300))
    kw_a = KeywordIndex.open(tmp_path / "a" / "keyword")
    indexer.sync_keyword(sqlite_engine, kw_a, batch=20)  # many small segments
    snapshot.publish_snapshot(sqlite_engine, kw_a, None, now=lambda: NOW)
    assert snapshot.restore_latest(sqlite_engine, tmp_path / "b", None)
    folder = tmp_path / "b" / snapshot.KEYWORD_DIR
    restored = {p.name for p in folder.iterdir() if len(p.stem) == 32}  # segment files: <uuid>.<ext>
    kw_b = KeywordIndex.open(folder)
    docs = [indexer.keyword_doc(p) for p in _papers(0, 300)]
    for r in range(20):  # replace every paper, committing often: merges replace the restored segments
        kw_b.upsert(docs[r * 15 : (r + 1) * 15])
        kw_b.commit()
    for _ in range(50):
        kw_b.upsert(docs[:1])
        kw_b.commit()  # each commit deletes what finished merges left unused
        if not restored & {p.name for p in folder.iterdir()}:
            break
        time.sleep(0.1)
    assert len(restored) > 10 and not restored & {p.name for p in folder.iterdir()}
    assert kw_b.count() == 300
    kw_a.close()
    kw_b.close()
