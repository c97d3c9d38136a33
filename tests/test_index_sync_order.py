"""Index sync that misses nothing: two writers whose commits land out of the order of their time stamps.

The indexes used to follow `changed_at` / `embedded_at`, stamped by the app before its transaction committed:
a writer stamped early that committed after a later-stamped one had been synced was skipped for ever. They now
follow a change sequence in commit order (db.dialect.next_change_seq).

- SQLite has one writer at a time: the early-stamped writer simply commits second.
- PostgreSQL: the early writer's transaction stays open (uncommitted) while the late one commits and a sync
  runs; the sync must neither show the uncommitted paper nor move past it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
from searchkit import NOW, paper
from sqlalchemy.engine import Engine

from paperboy.db import write
from paperboy.models import Record
from paperboy.search.indexer import sync_keyword, sync_vector
from paperboy.search.keyword import KeywordIndex
from paperboy.search.vector import VectorIndex
from paperboy.store import embeddings as embedding_store
from paperboy.store.papers import upsert_records

EARLY, LATE = NOW, NOW + timedelta(minutes=5)
X = paper("2612.00011", "Early stamped change", "Stamped first, committed last.")
Y = paper("2612.00012", "Late stamped change", "Stamped last, committed first.")
Z = paper("2612.00013", "A third paper", "Written before the others.")


def _ids(index: KeywordIndex) -> set[str]:
    return {arxiv_id for arxiv_id, _ in index.search("stamped third", 10)}


def _write(engine: Engine, p: object, at: object) -> None:
    with engine.connect() as conn, write(conn):
        upsert_records(conn, [Record(p)], at)  # type: ignore[arg-type]


def test_keyword_sync_takes_a_change_that_committed_after_a_later_stamped_one(
    engine: Engine, tmp_path: Path
) -> None:
    index = KeywordIndex.open(tmp_path / "kw")
    _write(engine, Z, EARLY - timedelta(hours=1))
    assert sync_keyword(engine, index) == 1
    if engine.dialect.name == "sqlite":
        _write(engine, Y, LATE)  # committed first, stamped late
        assert sync_keyword(engine, index) == 1
        assert _ids(index) == {Z.arxiv_id, Y.arxiv_id}
        _write(engine, X, EARLY)  # committed last, stamped early
    else:
        early = engine.connect()
        tx = early.begin()
        upsert_records(early, [Record(X)], EARLY)  # written, not committed
        _write(engine, Y, LATE)  # committed while X's transaction is open
        sync_keyword(engine, index)
        assert X.arxiv_id not in _ids(index)  # not committed: not visible, and not passed over either
        tx.commit()
        early.close()
    sync_keyword(engine, index)
    assert _ids(index) == {X.arxiv_id, Y.arxiv_id, Z.arxiv_id}
    # The cursor is saved with the index: reopened, nothing is left and nothing is synced twice.
    index.close()
    again = KeywordIndex.open(tmp_path / "kw")
    assert sync_keyword(engine, again) == 0
    again.close()


def test_vector_sync_takes_a_vector_stored_after_a_later_stamped_one(engine: Engine, tmp_path: Path) -> None:
    for p in (X, Y):
        _write(engine, p, EARLY - timedelta(hours=1))
    index = VectorIndex.create(tmp_path / "vectors.usearch", 8, "m", 100)

    def store(arxiv_id: str, at: object, conn: object = None) -> None:
        vector = np.eye(8, dtype="<f4")[0 if arxiv_id == X.arxiv_id else 1].tobytes()
        rows = [(arxiv_id, vector, "h")]
        if conn is not None:
            embedding_store.save(conn, "m", 8, rows, at)  # type: ignore[arg-type]
            return
        with engine.connect() as c, write(c):
            embedding_store.save(c, "m", 8, rows, at)  # type: ignore[arg-type]

    if engine.dialect.name == "sqlite":
        store(Y.arxiv_id, LATE)
        assert sync_vector(engine, index, "m") == 1
        store(X.arxiv_id, EARLY)
    else:
        early = engine.connect()
        tx = early.begin()
        store(X.arxiv_id, EARLY, early)
        store(Y.arxiv_id, LATE)
        sync_vector(engine, index, "m")
        assert X.arxiv_id not in index
        tx.commit()
        early.close()
    sync_vector(engine, index, "m")
    assert X.arxiv_id in index and Y.arxiv_id in index
    assert sync_vector(engine, index, "m") == 0


def test_a_paper_changed_while_its_vector_was_computed_stays_pending(engine: Engine) -> None:
    """The vector is of the text read, not of the paper as it is when the vector is stored."""
    _write(engine, X, EARLY)
    with engine.connect() as conn:
        (todo,) = embedding_store.pending(conn, "m", 10)
    _write(engine, paper(X.arxiv_id, X.title, "A new abstract.", version=2), EARLY)  # changed meanwhile
    with engine.connect() as conn, write(conn):
        vector = np.ones(8, dtype="<f4").tobytes()
        embedding_store.save(conn, "m", 8, [(X.arxiv_id, vector, "h")], LATE, {X.arxiv_id: todo.paper_seq})
    with engine.connect() as conn:
        assert [t.arxiv_id for t in embedding_store.pending(conn, "m", 10)] == [X.arxiv_id]
