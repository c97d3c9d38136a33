"""The papers store on SQLite and PostgreSQL: migrations, upserts and their merge rules, reads, cursors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from paperboy.db import MIGRATIONS_DIR, upgrade
from paperboy.db.schema import metadata
from paperboy.errors import InvalidInput
from paperboy.models import Featuring, Paper, Record, Submitter, UpsertCounts
from paperboy.store import ingest_state
from paperboy.store import papers as store

NOW = datetime(2026, 8, 12, 12, 0, tzinfo=UTC)


def paper(arxiv_id: str = "2608.00001", **kw: object) -> Paper:
    base: dict[str, object] = {
        "title": f"Title of {arxiv_id}",
        "abstract": f"Abstract of {arxiv_id}.",
        "authors": ("Ada Lovelace", "Alan Turing"),
        "categories": ("cs.CL", "cs.LG"),
        "primary_category": "cs.CL",
        "published_at": datetime(2026, 8, 10, 17, 0, tzinfo=UTC),
    }
    base.update(kw)
    return Paper(arxiv_id=arxiv_id, **base)  # type: ignore[arg-type]


def feat(arxiv_id: str = "2608.00001", day: date = date(2026, 8, 12), **kw: object) -> Featuring:
    base: dict[str, object] = {"source": "huggingface", "upvotes": 3, "num_comments": 1}
    base.update(kw)
    return Featuring(arxiv_id=arxiv_id, day=day, **base)  # type: ignore[arg-type]


def upsert(engine: Engine, *records: Record | Paper, now: datetime = NOW) -> UpsertCounts:
    batch = [r if isinstance(r, Record) else Record(r) for r in records]
    with engine.begin() as conn:
        return store.upsert_records(conn, batch, now)


def get(engine: Engine, arxiv_id: str = "2608.00001") -> store.StoredPaper:
    with engine.connect() as conn:
        found = store.get_paper(conn, arxiv_id)
    assert found is not None, arxiv_id
    return found


# --- migrations ----------------


def test_migrations_reach_head_and_match_the_schema(engine: Engine) -> None:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == head
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables
    for name, table in metadata.tables.items():
        columns = {c["name"] for c in sa.inspect(engine).get_columns(name)}
        assert columns == set(table.columns.keys()), name
    upgrade(engine)  # a second upgrade is a no-op
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


# --- upserts ----------------


def test_insert_update_unchanged_counts(engine: Engine) -> None:
    first = upsert(engine, paper("2608.00001"), paper("2608.00002"))
    assert first == UpsertCounts(inserted=2)
    second = upsert(
        engine, paper("2608.00001", title="A better title"), paper("2608.00002"), paper("2608.00003")
    )
    assert second == UpsertCounts(inserted=1, updated=1, unchanged=1)
    assert get(engine).paper.title == "A better title"
    with engine.connect() as conn:
        assert store.count_papers(conn) == 3


def test_same_batch_twice_changes_nothing(engine: Engine) -> None:
    batch = [
        Record(
            paper("2608.00001", version=2), feat("2608.00001", submitter=Submitter("ada", "Ada", "/a.png"))
        ),
        Record(paper("2608.00002", ai_keywords=("x", "y")), feat("2608.00002", day=date(2026, 8, 11))),
        Record(paper("2608.00003", withdrawn=True, version=3)),
    ]
    first = upsert(engine, *batch)
    assert first == UpsertCounts(inserted=3, featured=2)
    with engine.connect() as conn:
        changed_at = conn.execute(sa.select(sa.func.max(store.papers.c.changed_at))).scalar_one()
    again = upsert(engine, *batch, now=NOW + timedelta(hours=1))
    assert again == UpsertCounts(unchanged=3)
    assert again.changed == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(store.papers.c.changed_at))).scalar_one() == changed_at
        assert store.count_featured(conn) == 2


def test_duplicates_within_one_batch_are_merged(engine: Engine) -> None:
    counts = upsert(
        engine,
        Record(paper(version=1, title="v1"), feat(upvotes=5)),
        Record(paper(version=2, title="v2"), feat(upvotes=2, num_comments=4)),
    )
    assert counts == UpsertCounts(inserted=1, featured=1)
    got = get(engine)
    assert (got.paper.title, got.paper.version) == ("v2", 2)
    assert got.featuring is not None
    assert (got.featuring.upvotes, got.featuring.num_comments) == (5, 4)


def test_newer_version_replaces_older_never(engine: Engine) -> None:
    upsert(engine, paper(version=1, title="First try", categories=("cs.CL",), comments="8 pages"))
    counts = upsert(
        engine, paper(version=2, title="Second try", categories=("cs.LG", "cs.CL"), comments=None)
    )
    assert counts.updated == 1
    got = get(engine).paper
    assert (got.version, got.title, got.categories, got.primary_category) == (
        2,
        "Second try",
        ("cs.LG", "cs.CL"),
        "cs.CL",
    )
    assert got.comments == "8 pages"  # v2 said nothing about comments: kept
    assert upsert(engine, paper(version=1, title="First try")) == UpsertCounts(unchanged=1)
    assert get(engine).paper.title == "Second try"


def test_unversioned_record_only_fills_gaps(engine: Engine) -> None:
    upsert(engine, paper(version=3, title="arXiv title", abstract="arXiv abstract", doi=None))
    hf = paper(
        title="HF title",
        abstract="HF abstract",
        authors=("Someone Else",),
        doi="10.1000/xyz",
        github_repo="https://github.com/a/b",
        ai_summary="In short.",
    )
    assert upsert(engine, hf).updated == 1
    got = get(engine).paper
    assert (got.title, got.abstract, got.authors) == (
        "arXiv title",
        "arXiv abstract",
        ("Ada Lovelace", "Alan Turing"),
    )
    assert (got.version, got.doi, got.github_repo, got.ai_summary) == (
        3,
        "10.1000/xyz",
        "https://github.com/a/b",
        "In short.",
    )


def test_unversioned_first_then_versioned_replaces(engine: Engine) -> None:
    upsert(engine, paper(title="HF title", github_stars=10))
    upsert(engine, paper(version=1, title="arXiv title"))
    got = get(engine).paper
    assert (got.version, got.title, got.github_stars) == (1, "arXiv title", 10)


def test_enrichments_update_from_any_source(engine: Engine) -> None:
    upsert(engine, paper(version=2, github_repo="https://github.com/a/b", github_stars=10))
    assert upsert(engine, paper(github_stars=250, ai_keywords=("agents",))).updated == 1
    got = get(engine).paper
    assert (got.github_repo, got.github_stars, got.ai_keywords, got.version) == (
        "https://github.com/a/b",
        250,
        ("agents",),
        2,
    )
    # a source that knows nothing of the enrichments does not erase them
    assert upsert(engine, paper(version=2)) == UpsertCounts(unchanged=1)


def test_withdrawn_papers_are_kept_until_a_newer_version(engine: Engine) -> None:
    upsert(engine, paper(version=2, withdrawn=True, abstract="This paper has been withdrawn."))
    assert upsert(engine, paper(version=1)) == UpsertCounts(unchanged=1)
    upsert(engine, paper(title="HF still lists it"))
    got = get(engine).paper
    assert got.withdrawn and got.version == 2
    upsert(engine, paper(version=3, abstract="Back, improved."))
    got = get(engine).paper
    assert not got.withdrawn and got.abstract == "Back, improved."
    with engine.connect() as conn:
        assert store.count_papers(conn) == 1


def test_featuring_counts_only_grow_and_fields_fill(engine: Engine) -> None:
    upsert(engine, Record(paper(), feat(upvotes=10, num_comments=3)))
    assert upsert(engine, Record(paper(), feat(upvotes=4, num_comments=1))).featured == 0
    f = get(engine).featuring
    assert f is not None and (f.upvotes, f.num_comments) == (10, 3)
    counts = upsert(
        engine,
        Record(paper(), feat(upvotes=12, thumbnail="https://t/1.png", organization="Org", source="member")),
    )
    assert counts.featured == 1
    f = get(engine).featuring
    assert f is not None
    assert (f.upvotes, f.num_comments, f.thumbnail, f.organization, f.source) == (
        12,
        3,
        "https://t/1.png",
        "Org",
        "huggingface",
    )


def test_datetimes_round_trip_timezone_aware(engine: Engine) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    published = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=ist)
    submitted = datetime(2026, 1, 3, 23, 30, tzinfo=timezone(timedelta(hours=-8)))
    upsert(engine, Record(paper(published_at=published), feat(day=date(2026, 1, 4), submitted_at=submitted)))
    got = get(engine)
    assert got.paper.published_at == published
    assert got.paper.published_at is not None and got.paper.published_at.utcoffset() == timedelta(0)
    assert got.featuring is not None and got.featuring.submitted_at == submitted
    assert got.featuring.submitted_at is not None and got.featuring.submitted_at.tzinfo is not None
    assert got.featuring.day == date(2026, 1, 4)
    with pytest.raises(sa.exc.StatementError):
        upsert(engine, paper("2608.00009", published_at=datetime(2026, 1, 1)))  # naive: refused


def test_non_ascii_text_round_trips_and_is_searchable(engine: Engine) -> None:
    authors = ("Zoë Müller", "李雷", "Łukasz Kaiser", "José Ñúñez")
    upsert(
        engine,
        paper(authors=authors, title="Über-efficient transformers — “quoted”", abstract="Ωmega ∑ test"),
    )
    got = get(engine).paper
    assert got.authors == authors
    assert got.title == "Über-efficient transformers — “quoted”"
    with engine.connect() as conn:
        assert [p.paper.arxiv_id for p in store.keyword_search(conn, "李雷", 10)] == ["2608.00001"]
        assert [p.paper.arxiv_id for p in store.keyword_search(conn, "Łukasz", 10)] == ["2608.00001"]
        assert [p.paper.arxiv_id for p in store.keyword_search(conn, "zoë", 10)] == ["2608.00001"]


def test_batches_larger_than_one_in_list(engine: Engine) -> None:
    n = 1234
    batch = [Record(paper(f"2608.{i:05d}"), feat(f"2608.{i:05d}", upvotes=i % 7)) for i in range(n)]
    assert upsert(engine, *batch) == UpsertCounts(inserted=n, featured=n)
    assert upsert(engine, *batch) == UpsertCounts(unchanged=n)
    with engine.connect() as conn:
        assert len(store.get_papers(conn, [f"2608.{i:05d}" for i in range(n)] + ["9999.99999"])) == n


# --- reads ----------------


def test_get_paper_unknown_and_latest_featuring(engine: Engine) -> None:
    upsert(
        engine,
        Record(paper(), feat(day=date(2026, 8, 3), upvotes=1)),
        Record(paper(), feat(day=date(2026, 8, 12), upvotes=9)),
    )
    with engine.connect() as conn:
        assert store.get_paper(conn, "0000.00000") is None
        found = store.get_papers(conn, ["2608.00001"])["2608.00001"]
    got = get(engine)
    assert got.featuring is not None and got.featuring.day == date(2026, 8, 12)
    assert found.featuring is not None and found.featuring.day == date(2026, 8, 12)


def test_featured_ranges_and_submitter(engine: Engine) -> None:
    days = [date(2026, 8, 10), date(2026, 8, 11), date(2026, 8, 13)]
    records = [
        Record(
            paper(f"2608.0000{i}"), feat(f"2608.0000{i}", day=d, submitter=Submitter("ada" if i else "bob"))
        )
        for i, d in enumerate(days)
    ]
    upsert(engine, *records)
    with engine.connect() as conn:
        everything = store.featured(conn, store.FeaturedQuery())
        assert [i.featuring.day for i in everything if i.featuring] == sorted(days, reverse=True)
        window = store.featured(conn, store.FeaturedQuery(date(2026, 8, 11), date(2026, 8, 13)))
        assert [i.paper.arxiv_id for i in window] == ["2608.00002", "2608.00001"]
        by_ada = store.featured(conn, store.FeaturedQuery(submitter="ada"))
        assert {i.paper.arxiv_id for i in by_ada} == {"2608.00001", "2608.00002"}
        assert store.featured(conn, store.FeaturedQuery(submitter="nobody")) == []
        assert store.latest_featured_day(conn) == date(2026, 8, 13)
        assert store.earliest_featured_day(conn) == date(2026, 8, 10)


def test_featured_page_latest_listed_first(engine: Engine) -> None:
    at = datetime(2026, 8, 12, 9, 0, tzinfo=UTC)
    upsert(
        engine,
        Record(paper("2608.00001"), feat("2608.00001", day=date(2026, 8, 10), submitter=Submitter("ada"))),
        Record(paper("2608.00001"), feat("2608.00001", day=date(2026, 8, 12), submitted_at=at)),
        Record(paper("2608.00002"), feat("2608.00002", day=date(2026, 8, 12))),  # untimed: last of its day
        Record(
            paper("2608.00003"), feat("2608.00003", day=date(2026, 8, 12), submitted_at=at.replace(hour=3))
        ),
        Record(paper("2608.00004"), feat("2608.00004", day=date(2026, 8, 11), submitter=Submitter("ada"))),
    )
    with engine.connect() as conn:

        def page(offset: int, limit: int, submitter: str | None = None) -> list[tuple[str, date]]:
            q = store.FeaturedQuery(submitter=submitter)
            return [
                (i.paper.arxiv_id, i.featuring.day)
                for i in store.featured_page(conn, q, offset, limit)
                if i.featuring is not None
            ]

        everything = [
            ("2608.00001", date(2026, 8, 12)),
            ("2608.00003", date(2026, 8, 12)),
            ("2608.00002", date(2026, 8, 12)),
            ("2608.00004", date(2026, 8, 11)),
            ("2608.00001", date(2026, 8, 10)),
        ]
        assert page(0, 10) == everything
        assert page(1, 2) == everything[1:3]
        assert page(4, 2) == everything[4:]
        assert page(5, 2) == []
        assert page(0, 10, "ada") == [("2608.00004", date(2026, 8, 11)), ("2608.00001", date(2026, 8, 10))]


def test_neighbour_days(engine: Engine) -> None:
    with engine.connect() as conn:
        assert store.neighbour_days(conn, date(2026, 8, 11)) == (None, None)
        assert store.latest_featured_day(conn) is None
    upsert(
        engine,
        *(
            Record(paper(f"2608.0000{i}"), feat(f"2608.0000{i}", day=d))
            for i, d in enumerate([date(2026, 8, 7), date(2026, 8, 10), date(2026, 8, 12)])
        ),
    )
    with engine.connect() as conn:
        assert store.neighbour_days(conn, date(2026, 8, 10)) == (date(2026, 8, 7), date(2026, 8, 12))
        assert store.neighbour_days(conn, date(2026, 8, 8)) == (date(2026, 8, 7), date(2026, 8, 10))
        assert store.neighbour_days(conn, date(2026, 8, 7)) == (None, date(2026, 8, 10))
        assert store.neighbour_days(conn, date(2026, 8, 12)) == (date(2026, 8, 10), None)


def test_page_papers_walks_everything_once_newest_first(engine: Engine) -> None:
    base = datetime(2026, 8, 1, tzinfo=UTC)
    # two papers share a date (ties broken by id), one has no date (its first_seen_at counts)
    dated = [paper(f"2608.0000{i}", published_at=base + timedelta(days=i // 2)) for i in range(7)]
    upsert(engine, *dated, paper("2608.00099", published_at=None), now=base + timedelta(days=30))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    with engine.connect() as conn:
        while True:
            items, cursor = store.page_papers(conn, cursor, 3)
            seen += [i.paper.arxiv_id for i in items]
            pages += 1
            if cursor is None:
                break
    assert pages == 3
    assert seen == ["2608.00099", "2608.00006", "2608.00005", "2608.00004", "2608.00003", "2608.00002",
                    "2608.00001", "2608.00000"]  # fmt: skip
    with engine.connect() as conn:
        items, cursor = store.page_papers(conn, None, 8)
        assert len(items) == 8 and cursor is None
        for bad in ("nonsense", "bnVsbA", store._encode_cursor(None, "x"), "W1sxLDJdLCAieCJd"):
            with pytest.raises(InvalidInput):
                store.page_papers(conn, bad, 3)


def test_page_papers_refuses_a_cursor_without_timezone(engine: Engine) -> None:
    import base64
    import json

    naive = base64.urlsafe_b64encode(json.dumps(["2026-08-01T00:00:00", "2608.00001"]).encode()).decode()
    with engine.connect() as conn, pytest.raises(InvalidInput):
        store.page_papers(conn, naive, 3)


def test_keyword_search(engine: Engine) -> None:
    upsert(
        engine,
        paper("2608.00001", title="Sparse attention for long documents", abstract="We study transformers."),
        paper("2608.00002", title="Transformers everywhere", abstract="Sparse attention, revisited."),
        paper("2608.00003", title="Graph networks", abstract="Nothing about that 100% _here_."),
        paper("2608.00004", title="Diffusion", abstract="No match.", authors=("Grace Hopper",)),
    )
    with engine.connect() as conn:

        def ids(q: str, limit: int = 10) -> list[str]:
            return [p.paper.arxiv_id for p in store.keyword_search(conn, q, limit)]

        assert ids("sparse ATTENTION") == ["2608.00001", "2608.00002"]  # title hits first
        assert ids("transformers") == ["2608.00002", "2608.00001"]
        assert ids("sparse graph") == []  # every word must match
        assert ids("hopper") == ["2608.00004"]  # authors are searched
        assert ids("100%") == ["2608.00003"] and ids("_here_") == ["2608.00003"]
        assert ids("%") == ["2608.00003"]  # LIKE wildcards are literal
        assert ids("   ") == []
        assert len(ids("a", limit=2)) == 2


# --- cursors and runs ----------------


def test_cursor_is_saved_with_its_page_or_not_at_all(engine: Engine) -> None:
    with engine.begin() as conn:
        store.upsert_records(conn, [Record(paper("2608.00001"))], NOW)
        ingest_state.set_cursor(conn, "src", {"line": 2000}, NOW)
    with engine.connect() as conn:
        assert ingest_state.get_cursor(conn, "src") == {"line": 2000}
    with pytest.raises(RuntimeError), engine.begin() as conn:
        store.upsert_records(conn, [Record(paper("2608.00002"))], NOW)
        ingest_state.set_cursor(conn, "src", {"line": 4000}, NOW)
        assert ingest_state.get_cursor(conn, "src") == {"line": 4000}  # visible inside the transaction
        raise RuntimeError("crash before commit")
    with engine.connect() as conn:
        assert ingest_state.get_cursor(conn, "src") == {"line": 2000}
        assert store.get_paper(conn, "2608.00002") is None
        assert ingest_state.get_cursor(conn, "other") is None
    with engine.begin() as conn:
        ingest_state.set_cursor(conn, "src", {"day": "2026-08-12", "ñ": "ü"}, NOW)
    with engine.begin() as conn:
        assert ingest_state.get_cursor(conn, "src") == {"day": "2026-08-12", "ñ": "ü"}
        ingest_state.delete_cursor(conn, "src")
        assert ingest_state.get_cursor(conn, "src") is None


def test_ingest_runs_are_logged(engine: Engine) -> None:
    with engine.begin() as conn:
        ok = ingest_state.start_run(conn, "snapshot", NOW)
        ingest_state.finish_run(conn, ok, UpsertCounts(3, 2, 1, 0), NOW + timedelta(seconds=5))
        bad = ingest_state.start_run(conn, "huggingface", NOW)
        ingest_state.finish_run(conn, bad, UpsertCounts(), NOW, error="429")
    with engine.connect() as conn:
        runs = ingest_state.recent_runs(conn)
    assert [(r.id, r.status, r.error) for r in runs] == [(bad, "failed", "429"), (ok, "ok", None)]
    assert (runs[1].inserted, runs[1].updated, runs[1].unchanged) == (3, 2, 1)
    assert runs[1].finished_at == NOW + timedelta(seconds=5)


def test_upsert_leaves_unrelated_fields_alone(engine: Engine) -> None:
    p = paper(version=1, journal_ref="J. Test 1", license="CC-BY")
    upsert(engine, p)
    upsert(engine, replace(p, version=2, journal_ref=None, license=None, title="New"))
    got = get(engine).paper
    assert (got.journal_ref, got.license, got.title) == ("J. Test 1", "CC-BY", "New")
