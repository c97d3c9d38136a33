"""Collections, the operations on SQLite and PostgreSQL: create / rename / delete with unique slugs, adding a
paper twice keeps one, many writers adding at once get distinct places, reorder, notes, caps, the implicit
upvotes list, and demo removal keeping saved papers."""

from __future__ import annotations

import threading
from datetime import timedelta

import members
import pytest
import sqlalchemy as sa
import webhub
from sqlalchemy.engine import Engine
from webhub import NOW, OLD, A, B, C

from paperboy import accounts, jobs
from paperboy.community import collections as ops
from paperboy.community import votes as vote_ops
from paperboy.db import transaction, write
from paperboy.db.schema import collection_items
from paperboy.errors import InvalidInput, NotFound
from paperboy.models import Paper, Record, User
from paperboy.store.papers import upsert_records


def _user(engine: Engine, name: str) -> User:
    with engine.begin() as conn:
        return accounts.create_user(
            conn,
            members.FAST_HASHER,
            username=name,
            email=f"{name}@example.org",
            password=members.PASSWORD,
            now=NOW,
        )


def _order(engine: Engine, collection_id: int) -> list[str]:
    with engine.connect() as conn:
        stmt = (
            sa.select(collection_items.c.arxiv_id)
            .where(collection_items.c.collection_id == collection_id)
            .order_by(collection_items.c.position)
        )
        return list(conn.execute(stmt).scalars())


def test_create_rename_edit_delete_with_slugs_unique_per_member(engine: Engine) -> None:
    webhub.load(engine)
    ada, bob = _user(engine, "ada"), _user(engine, "bob")
    with transaction(engine) as conn:
        first = ops.create_collection(conn, ada, "  Reading   list ", NOW, description="To read.")
        second = ops.create_collection(conn, ada, "Reading list", NOW)
        third = ops.create_collection(conn, ada, "Reading list!", NOW, public=True)
        bobs = ops.create_collection(conn, bob, "Reading list", NOW)
        upvotes = ops.create_collection(conn, ada, "Upvotes", NOW)  # the implicit list's slug is reserved
        odd = ops.create_collection(conn, ada, "Ζήτα ☃", NOW)
    assert (first.slug, second.slug, third.slug, bobs.slug) == (
        "reading-list",
        "reading-list-2",
        "reading-list-3",
        "reading-list",
    )
    assert first.name == "Reading list" and first.description == "To read." and not first.is_public
    assert third.is_public and upvotes.slug == "upvotes-2" and odd.slug == "collection"
    with transaction(engine) as conn:
        renamed = ops.edit_collection(conn, ada, second.id, NOW, name="Attention papers", public=True)
        assert renamed.slug == "attention-papers" and renamed.is_public
        same = ops.edit_collection(conn, ada, first.id, NOW, name="Reading List", description="")
        assert same.slug == "reading-list" and same.name == "Reading List" and same.description is None
        with pytest.raises(NotFound):  # not hers: told apart from nothing
            ops.edit_collection(conn, ada, bobs.id, NOW, name="Mine now")
        with pytest.raises(NotFound):
            ops.delete_collection(conn, ada, bobs.id)
        ops.add_paper(conn, ada, third.id, A, NOW)
        ops.delete_collection(conn, ada, third.id)
        assert [c.slug for c in ops.my_collections(conn, bob)] == ["reading-list"]
        assert {c.slug for c in ops.my_collections(conn, ada)} == {
            "reading-list",
            "attention-papers",
            "upvotes-2",
            "collection",
        }
    with engine.connect() as conn:  # its items went with it
        assert conn.execute(sa.select(sa.func.count()).select_from(collection_items)).scalar_one() == 0


@pytest.mark.parametrize(
    ("name", "description"),
    [("", None), ("   ", None), ("x" * 101, None), ("ok", "y" * 2001), ("bad\x00name", None)],
)
def test_names_and_descriptions_are_checked(
    sqlite_engine: Engine, name: str, description: str | None
) -> None:
    webhub.load(sqlite_engine)
    ada = _user(sqlite_engine, "ada")
    with transaction(sqlite_engine) as conn, pytest.raises(InvalidInput):
        ops.create_collection(conn, ada, name, NOW, description=description)


def test_adding_twice_keeps_one_and_notes_reorder_and_removal(engine: Engine) -> None:
    webhub.load(engine)
    ada = _user(engine, "ada")
    with transaction(engine) as conn:
        c = ops.create_collection(conn, ada, "Papers", NOW)
        assert ops.add_paper(conn, ada, c.id, A, NOW) is True
        assert ops.add_paper(conn, ada, c.id, A, NOW + timedelta(seconds=1)) is False
        ops.add_paper(conn, ada, c.id, B, NOW)
        ops.add_paper(conn, ada, c.id, C, NOW, note="Read §3 first.")
        ops.add_paper(conn, ada, c.id, OLD, NOW)
        with pytest.raises(NotFound):
            ops.add_paper(conn, ada, c.id, "2501.99999", NOW)
    assert _order(engine, c.id) == [A, B, C, OLD]
    with transaction(engine) as conn:
        ops.set_note(conn, ada, c.id, A, "  Key result:\r\nTheorem 2.  ", NOW)
        ops.set_note(conn, ada, c.id, C, "", NOW)  # empty: no note
        with pytest.raises(InvalidInput):
            ops.set_note(conn, ada, c.id, B, "n" * 2001, NOW)
        with pytest.raises(NotFound):
            ops.set_note(conn, ada, c.id, "2501.99999", "x", NOW)
        assert ops.move_paper(conn, ada, c.id, OLD, "up", NOW) == 2
        assert ops.move_paper(conn, ada, c.id, A, "up", NOW) == 0  # already first
        assert ops.move_paper(conn, ada, c.id, A, "down", NOW) == 1
    assert _order(engine, c.id) == [B, A, OLD, C]
    with transaction(engine) as conn:
        assert ops.move_paper(conn, ada, c.id, C, 0, NOW) == 0
        assert ops.move_paper(conn, ada, c.id, B, 99, NOW) == 3
    assert _order(engine, c.id) == [C, A, OLD, B]
    with transaction(engine) as conn:
        ops.reorder(conn, ada, c.id, [OLD, B], NOW)  # those listed first; the rest after, in their order
    assert _order(engine, c.id) == [OLD, B, C, A]
    with transaction(engine) as conn:
        for bad in ([A, A], [A, "2501.99999"]):
            with pytest.raises(InvalidInput):
                ops.reorder(conn, ada, c.id, bad, NOW)
        assert ops.remove_paper(conn, ada, c.id, B, NOW) is True
        assert ops.remove_paper(conn, ada, c.id, B, NOW) is False
        shown = ops.view(conn, "ada", "papers", ada)
    assert [e.entry.arxiv_id for e in shown.entries] == [OLD, C, A]
    assert [e.entry.note for e in shown.entries] == [None, None, "Key result:\nTheorem 2."]
    with transaction(engine) as conn:  # a paper added after a removal goes last
        ops.add_paper(conn, ada, c.id, B, NOW)
    assert _order(engine, c.id) == [OLD, C, A, B]


def test_someone_elses_collection_is_not_theirs_to_change(engine: Engine) -> None:
    webhub.load(engine)
    ada, bob = _user(engine, "ada"), _user(engine, "bob")
    with transaction(engine) as conn:
        c = ops.create_collection(conn, ada, "Private", NOW)
        ops.add_paper(conn, ada, c.id, A, NOW)
        for attempt in (
            lambda: ops.add_paper(conn, bob, c.id, B, NOW),
            lambda: ops.remove_paper(conn, bob, c.id, A, NOW),
            lambda: ops.set_note(conn, bob, c.id, A, "mine", NOW),
            lambda: ops.move_paper(conn, bob, c.id, A, 0, NOW),
            lambda: ops.reorder(conn, bob, c.id, [A], NOW),
        ):
            with pytest.raises(NotFound):
                attempt()
        with pytest.raises(NotFound):  # private: bob cannot see it, nor can a visitor
            ops.view(conn, "ada", "private", bob)
        with pytest.raises(NotFound):
            ops.view(conn, "ada", "private", None)
        assert [e.entry.arxiv_id for e in ops.view(conn, "ADA", "private", ada).entries] == [A]
        ops.edit_collection(conn, ada, c.id, NOW, public=True)
        assert ops.view(conn, "ada", "private", None).collection.is_public
    assert _order(engine, c.id) == [A]


def test_caps_bound_the_work(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    webhub.load(sqlite_engine)
    ada = _user(sqlite_engine, "ada")
    monkeypatch.setattr(ops, "MAX_COLLECTIONS", 3)
    monkeypatch.setattr(ops, "MAX_ITEMS", 2)
    with transaction(sqlite_engine) as conn:
        c = ops.create_collection(conn, ada, "One", NOW)
        ops.create_collection(conn, ada, "Two", NOW)
        ops.create_collection(conn, ada, "Three", NOW)
        with pytest.raises(InvalidInput, match="3 collections"):
            ops.create_collection(conn, ada, "Four", NOW)
        with pytest.raises(InvalidInput, match="3 collections"):
            ops.save(conn, ada, A, NOW)  # no Reading list yet, and no room for one
        ops.add_paper(conn, ada, c.id, A, NOW)
        ops.add_paper(conn, ada, c.id, B, NOW)
        assert ops.add_paper(conn, ada, c.id, B, NOW) is False  # there already: not "full"
        with pytest.raises(InvalidInput, match="2 papers"):
            ops.add_paper(conn, ada, c.id, C, NOW)
        with pytest.raises(InvalidInput):
            ops.reorder(conn, ada, c.id, [A, B, C], NOW)
    assert _order(sqlite_engine, c.id) == [A, B]


def test_save_makes_the_reading_list_once_and_the_menu_sets_memberships(engine: Engine) -> None:
    webhub.load(engine)
    ada = _user(engine, "ada")
    with transaction(engine) as conn:
        first = ops.save(conn, ada, A, NOW)
        again = ops.save(conn, ada, A, NOW)
        ops.save(conn, ada, B, NOW)
        assert first.id == again.id and first.name == "Reading list" and first.slug == "reading-list"
        other = ops.create_collection(conn, ada, "Other", NOW)
        held = ops.set_memberships(conn, ada, A, {other.id}, {first.id, other.id}, NOW, new_name="Fresh")
        fresh = next(c for c in ops.my_collections(conn, ada) if c.slug == "fresh")
        assert held == {other.id, fresh.id}
        assert ops.saved_ids(conn, ada, [A, B, C]) == {A, B}
        with pytest.raises(InvalidInput):  # a collection not shown cannot be chosen
            ops.set_memberships(conn, ada, A, {999}, {first.id}, NOW)
    assert _order(engine, first.id) == [B]


def test_the_upvotes_list_is_public_and_in_vote_order(engine: Engine) -> None:
    webhub.load(engine)
    ada = _user(engine, "ada")
    with transaction(engine) as conn:
        vote_ops.set_vote(conn, ada, B, True, NOW)
        vote_ops.set_vote(conn, ada, A, True, NOW + timedelta(minutes=1))
        shown = ops.view(conn, "ada", "upvotes", None)
    assert shown.implicit and shown.collection.is_public and shown.collection.name == "Upvotes"
    assert [e.entry.arxiv_id for e in shown.entries] == [A, B]


def test_many_writers_adding_to_one_collection_at_once_get_distinct_places(engine: Engine) -> None:
    """Twelve threads, each with its own connection, add the same 12 papers in different orders to one
    collection at once: every paper is in it once, the places are 0..11 with no two alike, nobody fails."""
    webhub.load(engine)
    ids = [f"2504.{n:05d}" for n in range(12)]
    with transaction(engine) as conn:
        upsert_records(conn, [Record(Paper(arxiv_id=i, title=i, abstract="A.")) for i in ids], NOW)
    ada = _user(engine, "ada")
    with transaction(engine) as conn:
        c = ops.create_collection(conn, ada, "Busy", NOW)
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def work(n: int) -> None:
        try:
            start.wait()
            for arxiv_id in ids[n:] + ids[:n]:
                with engine.connect() as conn, write(conn):
                    ops.add_paper(conn, ada, c.id, arxiv_id, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(collection_items.c.arxiv_id, collection_items.c.position).where(
                collection_items.c.collection_id == c.id
            )
        ).all()
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert sorted(r[1] for r in rows) == list(range(12))


def test_demo_removal_keeps_papers_saved_in_a_collection(engine: Engine) -> None:
    jobs.load_demo(engine, lambda: NOW)
    saved = "2404.03176"  # a demo paper
    ada = _user(engine, "ada")
    with transaction(engine) as conn:
        ops.save(conn, ada, saved, NOW)
    with transaction(engine) as conn:
        upsert_records(conn, [Record(Paper(arxiv_id="2608.99999", title="New", abstract="A."))], NOW)
    from paperboy.store import demo

    with transaction(engine) as conn:
        removed = demo.remove_demo(conn, NOW + timedelta(minutes=5))
    assert saved in removed.kept and saved not in removed.papers
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(collection_items.c.arxiv_id)).scalars())
    assert left == {saved}


def test_deleting_an_account_deletes_its_collections_and_notes(engine: Engine) -> None:
    webhub.load(engine)
    ada, bob = _user(engine, "ada"), _user(engine, "bob")
    with transaction(engine) as conn:
        ops.save(conn, ada, A, NOW)
        kept = ops.save(conn, bob, A, NOW)
        accounts.delete_account(conn, members.FAST_HASHER, ada, members.PASSWORD, NOW)
    with engine.connect() as conn:
        left = conn.execute(sa.select(collection_items.c.collection_id)).scalars().all()
    assert left == [kept.id]
