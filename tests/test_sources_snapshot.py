"""Bulk JSON lines (Kaggle snapshot and the daily-listing format): gz or plain, truncation, idempotence,
version replacement and withdrawals, through the `ingest snapshot` job on a real SQLite file."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from paperboy import jobs
from paperboy.errors import SourceError
from paperboy.ingest import IngestFailed
from paperboy.sources import snapshot
from paperboy.store import ingest_state
from paperboy.store import papers as store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "snapshot"
NOW = datetime(2026, 5, 6, 5, 0, tzinfo=UTC)


def now() -> datetime:
    return NOW


def get(engine: Engine, arxiv_id: str) -> store.StoredPaper:
    with engine.connect() as conn:
        found = store.get_paper(conn, arxiv_id)
    assert found is not None, arxiv_id
    return found


def gzip_copy(src: Path, dest: Path) -> Path:
    with src.open("rb") as f, gzip.open(dest, "wb") as g:
        shutil.copyfileobj(f, g)
    return dest


def many_listing_lines(path: Path, n: int) -> Path:
    """`n` listing-format lines (distinct ids), in the shape of the daily-listing corpus."""
    with path.open("w") as f:
        for i in range(n):
            record = {
                "id": f"2505.{10000 + i}",
                "title": f"Paper number {i}",
                "authors": [f"Author {i}", "Co Author"],
                "categories": ["cs.LG"],
                "comment": None,
                "summary": f"Abstract {i} with a hard\nline break.",
                "listing_date": "2025-05-01",
            }
            f.write(json.dumps(record) + "\n")
    return path


def test_kaggle_lines_parse() -> None:
    pages = list(snapshot.read_snapshot(FIXTURES / "kaggle_v1.jsonl"))
    papers = {r.paper.arxiv_id: r.paper for p in pages for r in p.records}
    p = papers["2401.00101"]
    assert p.version == 1 and p.title == "Learning Rates That Schedule Themselves"
    assert p.abstract == "We let the learning rate schedule learn itself."
    assert p.authors == ("Ines Moreau", "J. K. Larsen")  # from authors_parsed [last, first, suffix]
    assert p.categories == ("cs.LG", "stat.ML") and p.primary_category == "cs.LG"
    assert p.published_at == datetime(2024, 1, 1, 10, tzinfo=UTC)
    # No authors_parsed: the string is split, affiliations with commas inside do not split a name.
    assert papers["2401.00102"].authors == ("K. Oduya", "L. Brandt")
    assert papers["0704.0999"].withdrawn and papers["0704.0999"].version == 2
    assert pages[-1].cursor == {"line": 3}


def test_listing_lines_parse() -> None:
    (page,) = snapshot.read_snapshot(FIXTURES / "listing.jsonl")
    p = page.records[0].paper
    assert p.version is None  # the listing corpus carries no version
    assert p.authors == ("Mira Solberg", "Nadim Aziz")
    assert p.comments == "Accepted at an example workshop"
    assert p.published_at == datetime(2025, 4, 17, tzinfo=UTC)
    assert p.abstract == "We retrieve past reviews to help new ones."
    assert [r.paper.arxiv_id for r in page.records] == ["2504.20001", "2504.20002", "2504.20003"]


def test_gz_and_plain_give_the_same_records(tmp_path: Path) -> None:
    gz = gzip_copy(FIXTURES / "kaggle_v1.jsonl", tmp_path / "kaggle_v1.jsonl.gz")
    plain = [r for p in snapshot.read_snapshot(FIXTURES / "kaggle_v1.jsonl") for r in p.records]
    zipped = [r for p in snapshot.read_snapshot(gz) for r in p.records]
    assert plain == zipped and len(plain) == 3


def test_a_record_without_a_title_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "2401.00001", "title": "ok", "abstract": "a"}\n{"id": "2401.00002", "abstract": "a"}\n'
    )
    with pytest.raises(SourceError, match=r"bad\.jsonl:2: .*title"):
        list(snapshot.read_snapshot(path))


def test_truncated_gz_is_a_clear_error_and_earlier_pages_are_kept(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    plain = many_listing_lines(tmp_path / "listing.jsonl", 400)
    whole = gzip_copy(plain, tmp_path / "whole.jsonl.gz").read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: int(len(whole) * 0.6)])
    with pytest.raises(IngestFailed, match="truncated") as info:
        jobs.ingest_snapshot(sqlite_engine, cut, now, page_size=50)
    kept = info.value.counts.inserted
    assert 50 <= kept < 400 and kept % 50 == 0  # whole pages only
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == kept
        (run,) = ingest_state.recent_runs(conn)
    assert run.status == "failed" and run.inserted == kept
    # The complete file is another file (size, mtime): it loads in full, the stored pages unchanged.
    result = jobs.ingest_snapshot(sqlite_engine, tmp_path / "whole.jsonl.gz", now, page_size=50)
    assert (result.counts.inserted, result.counts.unchanged) == (400 - kept, kept)


def test_a_truncated_last_line_is_a_clear_error(tmp_path: Path, sqlite_engine: Engine) -> None:
    plain = many_listing_lines(tmp_path / "listing.jsonl", 30)
    text = plain.read_text()
    plain.write_text(text[: len(text) - 40])  # cut inside the last line
    with pytest.raises(IngestFailed, match=r"listing\.jsonl:30: not JSON .*truncated"):
        jobs.ingest_snapshot(sqlite_engine, plain, now, page_size=10)
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 20


def test_resume_after_a_failure_skips_the_stored_lines(tmp_path: Path, sqlite_engine: Engine) -> None:
    path = many_listing_lines(tmp_path / "listing.jsonl", 30)
    pages = snapshot.read_snapshot(path, page_size=10)
    first = next(pages)
    pages.close()
    with sqlite_engine.begin() as conn:  # as if a run had stored one page, then died
        store.upsert_records(conn, first.records, NOW)
        ingest_state.set_cursor(conn, jobs._file_cursor_name("snapshot", path), first.cursor or {}, NOW)
    result = jobs.ingest_snapshot(sqlite_engine, path, now, page_size=10)
    assert (result.counts.inserted, result.counts.unchanged, result.pages) == (20, 0, 2)


@pytest.mark.parametrize("gz", [False, True])
def test_second_run_changes_nothing_even_without_the_cursor(
    tmp_path: Path, sqlite_engine: Engine, gz: bool
) -> None:
    path = FIXTURES / "kaggle_v1.jsonl"
    if gz:
        path = gzip_copy(path, tmp_path / "kaggle_v1.jsonl.gz")
    first = jobs.ingest_snapshot(sqlite_engine, path, now)
    assert first.counts.inserted == 3
    second = jobs.ingest_snapshot(sqlite_engine, path, now)  # resumes at the end: nothing to do
    assert (second.counts.inserted, second.counts.updated) == (0, 0)
    with sqlite_engine.begin() as conn:
        ingest_state.delete_cursor(conn, jobs._file_cursor_name("snapshot", path))
    third = jobs.ingest_snapshot(sqlite_engine, path, now)  # reads every line again
    assert third.counts.changed == 0 and third.counts.unchanged == 3


def test_a_newer_version_replaces_and_an_older_one_changes_nothing(
    tmp_path: Path, sqlite_engine: Engine
) -> None:
    jobs.ingest_snapshot(sqlite_engine, FIXTURES / "kaggle_v1.jsonl", now)
    v2 = jobs.ingest_snapshot(sqlite_engine, FIXTURES / "kaggle_v2.jsonl", now)
    assert (v2.counts.inserted, v2.counts.updated) == (0, 1)
    p = get(sqlite_engine, "2401.00101").paper
    assert p.version == 2
    assert p.title == "Learning Rates That Schedule Themselves, Revisited"
    assert p.abstract == "A second version with larger experiments."
    assert p.comments == "v2: larger experiments"
    assert p.published_at == datetime(2024, 1, 1, 10, tzinfo=UTC)  # the first version's date stays
    assert p.updated_at == datetime(2024, 3, 1, 12, tzinfo=UTC)
    # v1 again (a copy of the old file, so it is not skipped by its cursor): nothing changes.
    old = shutil.copy(FIXTURES / "kaggle_v1.jsonl", tmp_path / "again_v1.jsonl")
    again = jobs.ingest_snapshot(sqlite_engine, Path(old), now)
    assert again.counts.changed == 0
    assert (
        get(sqlite_engine, "2401.00101").paper.title == "Learning Rates That Schedule Themselves, Revisited"
    )


def test_withdrawals_are_kept(tmp_path: Path, sqlite_engine: Engine) -> None:
    jobs.ingest_snapshot(sqlite_engine, FIXTURES / "kaggle_v1.jsonl", now)
    p = get(sqlite_engine, "0704.0999").paper
    assert p.withdrawn and p.title == "An Old Withdrawn Note"
    # An unversioned listing record of the same paper does not bring it back.
    line = {"id": "0704.0999", "title": "Another title", "authors": ["X"], "categories": ["math.CO"],
            "summary": "Not withdrawn here.", "listing_date": "2007-04-03"}  # fmt: skip
    path = tmp_path / "listing.jsonl"
    path.write_text(json.dumps(line) + "\n")
    jobs.ingest_snapshot(sqlite_engine, path, now)
    p = get(sqlite_engine, "0704.0999").paper
    assert p.withdrawn and p.title == "An Old Withdrawn Note"


@pytest.mark.shared_data
def test_real_kaggle_head(shared_data: Path, sqlite_engine: Engine) -> None:
    path = shared_data / "arxiv_metadata" / "kaggle_snapshot_head.jsonl"
    result = jobs.ingest_snapshot(sqlite_engine, path, now, page_size=64)
    assert (result.counts.inserted, result.pages) == (200, 4)
    p = get(sqlite_engine, "0704.0002").paper
    assert p.authors == ("Ileana Streinu", "Louis Theran")
    assert p.version == 2 and p.categories == ("math.CO", "cs.CG")
    assert p.title == "Sparsity-certifying Graph Decompositions"
    assert p.published_at == datetime(2007, 3, 31, 2, 26, 18, tzinfo=UTC)
    first = get(sqlite_engine, "0704.0001").paper
    assert first.doi == "10.1103/PhysRevD.76.013009" and first.journal_ref == "Phys.Rev.D76:013009,2007"
    with sqlite_engine.begin() as conn:
        ingest_state.delete_cursor(conn, jobs._file_cursor_name("snapshot", path))
    assert jobs.ingest_snapshot(sqlite_engine, path, now).counts.changed == 0


@pytest.mark.shared_data
def test_real_listing_sample_plain_and_gz(shared_data: Path, tmp_path: Path, sqlite_engine: Engine) -> None:
    path = shared_data / "arxiv_metadata" / "arxiv_daily_cs_sample_1000.jsonl"
    result = jobs.ingest_snapshot(sqlite_engine, path, now, page_size=250)
    assert (result.counts.inserted, result.pages) == (1000, 4)
    with sqlite_engine.connect() as conn:
        p = store.get_paper(conn, "2503.12015")
    assert p is not None and p.paper.title.startswith("QDM: Quadtree-Based Region-Adaptive")
    assert p.paper.authors[0] == "Donglin Yang"
    gz = gzip_copy(path, tmp_path / "sample.jsonl.gz")
    again = jobs.ingest_snapshot(sqlite_engine, gz, now, page_size=250)
    assert again.counts.changed == 0 and again.counts.unchanged == 1000
