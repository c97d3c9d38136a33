"""The follows store (issue 14, part 3) on SQLite and PostgreSQL: one row per (member, kind, target) however
often or however concurrently it is written, the cap counted in the same statement, and what followed
members and organizations bring (`papers_via_follows`, which the "For you" feed reads)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import webhub
from sqlalchemy.engine import Engine
from webhub import NOW, A, B

from paperboy.models import Featuring, Paper, Record, Submitter
from paperboy.store import follows as store
from paperboy.store import users as user_store
from paperboy.store import votes as vote_store
from paperboy.store.papers import upsert_records


def _user(engine: Engine, name: str) -> int:
    with engine.begin() as conn:
        user = user_store.insert_user(
            conn, username=name, email=f"{name}@example.org", password_hash="x", is_admin=False, now=NOW
        )
        assert user is not None
        return user.id


def test_follow_is_one_row_capped_and_undone(engine: Engine) -> None:
    ada = _user(engine, "ada")
    with engine.begin() as conn:
        assert store.add(conn, ada, "author", "solo author", "Solo Author", NOW, cap=3)
        assert not store.add(conn, ada, "author", "solo author", "Solo  Author", NOW, cap=3)  # already
        assert store.add(conn, ada, "org", "google", "Google", NOW, cap=3)
        assert store.add(conn, ada, "author", "b", "B", NOW, cap=3)
        assert not store.add(conn, ada, "author", "c", "C", NOW, cap=3)  # the cap
        assert store.count(conn, ada) == 3
        assert [(f.kind, f.target_name) for f in store.followed(conn, ada)] == [
            ("author", "B"),
            ("author", "Solo Author"),
            ("org", "Google"),
        ]
        assert store.set_in_digest(conn, ada, "org", "google", False)
        assert not store.set_in_digest(conn, ada, "org", "nobody", False)
        got = store.get(conn, ada, "org", "google")
        assert got is not None and got.in_digest is False and got.created_at == NOW
        assert [f.target_key for f in store.digest_follows(conn, [ada])[ada]] == ["solo author", "b"]
        assert store.following_keys(conn, ada, "author", ["b", "c", "solo author"]) == {"b", "solo author"}
        assert store.remove(conn, ada, "author", "b")
        assert not store.remove(conn, ada, "author", "b")
        assert store.count(conn, ada) == 2


def test_papers_via_follows_names_the_member_or_organization(engine: Engine) -> None:
    webhub.load(engine)
    ada, bob, eve = _user(engine, "ada"), _user(engine, "bob"), _user(engine, "eve")
    org_paper = Paper(arxiv_id="2503.05555", title="From a Lab", abstract="x", authors=("L. Ab",))
    submitted = Paper(arxiv_id="2503.06666", title="Submitted by Bob", abstract="x", authors=("S. Ub",))
    day = date(2025, 3, 5)
    with engine.begin() as conn:
        upsert_records(
            conn,
            [
                Record(
                    org_paper,
                    Featuring(
                        org_paper.arxiv_id,
                        day,
                        "huggingface",
                        organization="Deep Lab",
                        organization_name="DeepLab",
                    ),
                ),
                Record(
                    submitted,
                    Featuring(
                        submitted.arxiv_id,
                        day,
                        "member",
                        datetime(2025, 3, 5, 10, tzinfo=UTC),
                        Submitter("bob", "bob", None, bob),
                    ),
                ),
            ],
            NOW,
        )
        vote_store.add_vote(conn, bob, A, NOW - timedelta(hours=1))
        vote_store.add_vote(conn, bob, B, NOW - timedelta(days=30))  # too old
        vote_store.add_vote(conn, eve, B, NOW)  # eve is not followed
        store.add(conn, ada, "member", str(bob), "bob", NOW, cap=500, target_user_id=bob)
        store.add(conn, ada, "org", "deeplab", "Deep Lab", NOW, cap=500)
        store.add(conn, ada, "author", "solo author", "Solo Author", NOW, cap=500)
        got = store.papers_via_follows(conn, ada, NOW - timedelta(days=7), 10)
        assert got == {
            A: "member:bob",
            submitted.arxiv_id: "submitted:bob",
            org_paper.arxiv_id: "org:Deep Lab",
        }
        assert list(got) == [A, submitted.arxiv_id, org_paper.arxiv_id]  # newest first
        assert len(store.papers_via_follows(conn, ada, NOW - timedelta(days=7), 1)) == 1
        assert store.org_name(conn, "deeplab") == ("DeepLab", "Deep Lab")
        assert store.org_paper_ids(conn, "DEEPLAB", 0, 10) == (1, [org_paper.arxiv_id])
        assert store.papers_via_follows(conn, eve, NOW - timedelta(days=7), 10) == {}
        user_store.set_disabled(conn, bob, True)  # a disabled member's doings no longer surface
        assert store.papers_via_follows(conn, ada, NOW - timedelta(days=7), 10) == {
            org_paper.arxiv_id: "org:Deep Lab"
        }
    # the followed member's account goes: so does the follow
    with engine.begin() as conn:
        user_store.delete_user(conn, bob, NOW)
        assert [f.kind for f in store.followed(conn, ada)] == ["author", "org"]
