"""Writes that cannot race: every write that used to check and then insert, run from 20 threads at the same
moment (each its own connection, all released by one barrier), on SQLite and on PostgreSQL. Nothing raises
anything but the domain error a second identical request deserves, and the final state is that of one run.

On SQLite the write lock serialises these (db.write begins IMMEDIATE); on PostgreSQL they truly overlap, and
the constraint (`insert … on conflict`) decides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from searchkit import paper
from sqlalchemy.engine import Connection, Engine

from paperboy import accounts
from paperboy.community import claims, votes
from paperboy.db import make_engine, write
from paperboy.db.schema import (
    claims as claims_table,
)
from paperboy.db.schema import (
    embeddings,
    featurings,
    ingest_cursors,
    papers,
    subscriptions,
    topics,
    users,
)
from paperboy.db.schema import (
    votes as votes_table,
)
from paperboy.digest import subscriptions as digest_subscriptions
from paperboy.errors import Conflict, FieldInvalid, InvalidInput, PaperboyError
from paperboy.models import Featuring, Record, User
from paperboy.store import embeddings as embedding_store
from paperboy.store import ingest_state
from paperboy.store import subscriptions as subscription_store
from paperboy.store.papers import upsert_records

N = 20
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PAPER = paper(
    "2612.00001", "Attention sinks", "Why the first token soaks up attention.", authors=("Ada One",)
)


@pytest.fixture
def wide(engine: Engine) -> Iterator[Engine]:
    """The test database through an engine whose pool holds every thread's connection at once."""
    url = engine.url.render_as_string(hide_password=False)
    many = make_engine(url, pool_size=N + 4)
    yield many
    many.dispose()


def race(engine: Engine, op: Callable[[Connection, int], Any]) -> tuple[list[Any], list[PaperboyError]]:
    """Run op(conn, i) in N threads released together, each in its own write transaction. Returns what the
    successful ones returned and the domain errors; any other exception fails the test."""
    barrier = threading.Barrier(N)
    done: list[Any] = []
    refused: list[PaperboyError] = []
    crashed: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        with engine.connect() as conn:
            barrier.wait(timeout=30)
            try:
                with write(conn):
                    out = op(conn, i)
                with lock:
                    done.append(out)
            except PaperboyError as exc:
                with lock:
                    refused.append(exc)
            except BaseException as exc:
                with lock:
                    crashed.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not crashed, f"{len(crashed)} writers crashed, first: {crashed[0]!r}"
    assert len(done) + len(refused) == N
    return done, refused


def count(engine: Engine, table: sa.Table, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()


def member(engine: Engine, name: str = "ada") -> User:
    with engine.connect() as conn, write(conn):
        return accounts.create_user(
            conn,
            HASHER,
            username=name,
            email=f"{name}@example.org",
            password="violet kettle drums",
            now=NOW,
            admin=False,
        )


def with_paper(engine: Engine) -> None:
    with engine.connect() as conn, write(conn):
        upsert_records(conn, [Record(PAPER)], NOW)


def test_the_same_upvote_twenty_times_at_once_is_one_vote(wide: Engine) -> None:
    with_paper(wide)
    ada = member(wide)
    done, refused = race(wide, lambda c, i: votes.set_vote(c, ada, PAPER.arxiv_id, True, NOW))
    assert not refused
    assert all(state.voted for state in done)
    assert count(wide, votes_table) == 1


def test_twenty_sign_ups_with_one_name_make_one_account_and_name_the_field(wide: Engine) -> None:
    forms = [
        accounts.new_account(HASHER, username="ada", email=f"a{i}@x.org", password="violet kettle drums")
        for i in range(N)
    ]
    done, refused = race(wide, lambda c, i: accounts.add_account(c, forms[i], NOW))
    assert len(done) == 1 and len(refused) == N - 1
    assert all(isinstance(e, FieldInvalid) and e.field == "username" for e in refused)
    assert count(wide, users) == 1


def test_twenty_sign_ups_with_one_address_make_one_account_and_name_the_field(wide: Engine) -> None:
    forms = [
        accounts.new_account(HASHER, username=f"user{i}", email="ada@x.org", password="violet kettle drums")
        for i in range(N)
    ]
    done, refused = race(wide, lambda c, i: accounts.add_account(c, forms[i], NOW))
    assert len(done) == 1
    assert all(isinstance(e, FieldInvalid) and e.field == "email" for e in refused)
    assert count(wide, users) == 1


def test_an_ingest_cursor_written_at_once_is_one_row(wide: Engine) -> None:
    _, refused = race(wide, lambda c, i: ingest_state.set_cursor(c, "arxiv:cs.CL", {"day": str(i)}, NOW))
    assert not refused and count(wide, ingest_cursors) == 1
    with wide.connect() as conn:
        assert ingest_state.get_cursor(conn, "arxiv:cs.CL") in [{"day": str(i)} for i in range(N)]


def test_the_same_paper_and_featuring_ingested_at_once_are_stored_once(wide: Engine) -> None:
    featuring = Featuring(arxiv_id=PAPER.arxiv_id, day=date(2026, 12, 1), source="huggingface", upvotes=3)
    done, refused = race(wide, lambda c, i: upsert_records(c, [Record(PAPER, featuring)], NOW))
    assert not refused
    assert sum(counts.inserted for counts in done) == 1  # one writer inserted it, the others found it
    assert count(wide, papers) == 1 and count(wide, featurings) == 1


def test_one_vector_stored_at_once_by_twenty_embedders_is_one_row(wide: Engine) -> None:
    with_paper(wide)
    vector = np.ones(8, dtype="<f4").tobytes()
    _, refused = race(
        wide, lambda c, i: embedding_store.save(c, "m", 8, [(PAPER.arxiv_id, vector, f"h{i}")], NOW)
    )
    assert not refused and count(wide, embeddings) == 1
    with wide.connect() as conn:
        assert embedding_store.count_pending(conn, "m") == 0  # current: made from the paper as stored


def test_the_same_claim_twenty_times_at_once_is_one_claim_and_conflicts(wide: Engine) -> None:
    with_paper(wide)
    ada = member(wide)
    done, refused = race(wide, lambda c, i: claims.claim_authorship(c, ada, PAPER.arxiv_id, "Ada One", NOW))
    assert len(done) == 1 and all(isinstance(e, Conflict) for e in refused)
    assert count(wide, claims_table) == 1


def test_one_address_subscribing_and_one_topic_added_at_once_are_one_row_each(wide: Engine) -> None:
    race(wide, lambda c, i: subscription_store.insert_subscription(c, email="ada@x.org", now=NOW))
    assert count(wide, subscriptions) == 1
    with wide.connect() as conn:
        found = subscription_store.get_by_email(conn, "ada@x.org")
    assert found is not None
    done, _ = race(
        wide, lambda c, i: subscription_store.add_topic(c, found.id, "kv cache", source="topic", now=NOW)
    )
    assert sorted(done) == [False] * (N - 1) + [True]
    assert count(wide, topics) == 1


def test_a_confirmation_link_clicked_twenty_times_at_once_confirms_once(wide: Engine) -> None:
    with wide.connect() as conn, write(conn):
        made = subscription_store.insert_subscription(conn, email="ada@x.org", now=NOW)
        subscription_store.insert_confirmation(
            conn,
            subscription_id=made.id,
            token_hash=accounts.digest("the-token"),
            now=NOW,
            expires_at=datetime(2026, 12, 8, tzinfo=UTC),
            payload={"topic": "kv cache", "categories": []},
        )
    done, refused = race(wide, lambda c, i: digest_subscriptions.confirm(c, "the-token", NOW))
    assert len(done) == 1 and all(isinstance(e, InvalidInput) for e in refused)
    assert count(wide, topics) == 1
    assert count(wide, subscriptions, subscriptions.c.status == "active") == 1
