"""Hugging Face daily papers: every schema of saved responses, the whole real dump, and the API path against a
local server (pagination, 429 + Retry-After, 5xx, timeouts, malformed bodies, resuming from the cursor)."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from upstream import Reply, Upstream

from paperboy import jobs
from paperboy.errors import SourceError
from paperboy.ingest import IngestFailed
from paperboy.sources import huggingface
from paperboy.sources.http import PoliteClient
from paperboy.store import ingest_state
from paperboy.store import papers as store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hf"
WED, THU, FRI = date(2025, 6, 11), date(2025, 6, 12), date(2025, 6, 13)
NOW = datetime(2025, 6, 13, 18, 0, tzinfo=UTC)  # a Friday


def now() -> datetime:
    return NOW


def item(n: int, day: date, **paper: Any) -> dict[str, Any]:
    """An API item in the 2025 shape."""
    return {
        "paper": {
            "id": f"2506.{10000 + n}",
            "authors": [{"_id": f"a{n}", "name": f"Author {n}", "hidden": False}],
            "publishedAt": f"{day.isoformat()}T00:00:00.000Z",
            "submittedOnDailyAt": f"{day.isoformat()}T06:00:00.000Z",
            "title": f"Paper {n}",
            "summary": f"Abstract of paper {n}.",
            "upvotes": n % 17,
            **paper,
        },
        "publishedAt": f"{day.isoformat()}T00:00:00.000Z",
        "title": f"Paper {n}",
        "numComments": 0,
    }


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def client(waits: Waits) -> Iterator[PoliteClient]:
    with PoliteClient(retries=3, backoff=1.0, timeout=2.0, sleep=waits) as c:
        yield c


def api(engine: Engine, client: PoliteClient, upstream: Upstream, **kw: Any) -> jobs.IngestResult:
    return jobs.ingest_hf_api(engine, client, upstream.url, now, **kw)


def serve_day(upstream: Upstream, day: date, *replies: Reply, page: int = 0) -> None:
    upstream.route("/api/daily_papers", {"date": day.isoformat(), "p": str(page)}, *replies)


def stored(engine: Engine, arxiv_id: str) -> store.StoredPaper:
    with engine.connect() as conn:
        found = store.get_paper(conn, arxiv_id)
    assert found is not None, arxiv_id
    return found


# --- the schemas of saved responses ------------------------------------------------------------------------


def test_2024_schema() -> None:
    records = huggingface.parse_day(json.loads((FIXTURES / "daily_2024_schema.json").read_text()), None, "f")
    first = records[0]
    assert first.paper.arxiv_id == "2406.01001"
    assert first.paper.title == "Sparse Mixtures of Tiny Experts for On-Device Speech Recognition"
    assert first.paper.authors == ("Ada Lindqvist", "Bruno Okafor")
    assert first.paper.ai_summary is None and first.paper.ai_keywords is None
    f = first.featuring
    assert f is not None
    assert f.day == date(2024, 6, 3)  # no submittedOnDailyAt: the item's publishedAt
    assert (f.upvotes, f.num_comments) == (12, 1)
    assert f.submitter is not None and (f.submitter.name, f.submitter.fullname) == ("samr", "Sam Reviewer")
    assert f.thumbnail and f.thumbnail.endswith("2406.01001.png")


def test_2026_schema() -> None:
    records = huggingface.parse_day(json.loads((FIXTURES / "daily_2026_schema.json").read_text()), FRI, "f")
    p, f = records[0].paper, records[0].featuring
    assert p.ai_summary == "Agents learn when a clarifying question is worth more than acting."
    assert p.ai_keywords == ("clarifying questions", "tool use", "decision theory")
    assert (p.github_repo, p.github_stars) == ("https://github.com/example/ask-before-act", 431)
    assert p.project_page == "https://example.org/ask"
    assert p.published_at == datetime(2026, 8, 11, tzinfo=UTC)
    assert f is not None and f.day == FRI  # the day asked for wins over submittedOnDailyAt
    assert f.organization == "Example Lab" and f.upvotes == 72 and f.num_comments == 4
    assert records[1].paper.ai_keywords is None  # an empty keyword list is no keywords


def test_wrapper_with_repr_items() -> None:
    body = json.loads((FIXTURES / "wrapper_with_repr.json").read_text())
    records = huggingface.parse_day(body, None, "f")
    assert [r.paper.arxiv_id for r in records] == ["2501.05001", "2501.05002"]
    assert all(r.featuring and r.featuring.day == date(2025, 1, 10) for r in records)  # the wrapper's date
    assert records[0].featuring is not None and records[0].featuring.num_comments == 2


def test_scraped_map(tmp_path: Path, sqlite_engine: Engine) -> None:
    result = jobs.ingest_hf_file(sqlite_engine, FIXTURES / "scraped.json", now)
    assert (result.counts.inserted, result.counts.featured) == (2, 2)
    two = stored(sqlite_engine, "2312.09002")
    assert two.paper.authors == ("Mei Lin", "Noor Haddad")  # the list saved as a string
    assert two.featuring is not None and two.featuring.day == date(2023, 12, 18)


def test_not_a_daily_papers_shape(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"hello": "world"}')
    with pytest.raises(SourceError, match="not a shape of Hugging Face daily papers"):
        list(huggingface.read_file(path))


def test_json_lines_of_days_through_the_file_job(sqlite_engine: Engine) -> None:
    result = jobs.ingest_hf_file(sqlite_engine, FIXTURES / "days.jsonl", now)
    assert (result.pages, result.counts.inserted, result.counts.featured) == (3, 4, 5)
    with sqlite_engine.connect() as conn:
        days = store.featured(conn, store.FeaturedQuery(start=date(2024, 7, 1), end=date(2024, 7, 3)))
    assert sorted(str(f.featuring.day) for f in days if f.paper.arxiv_id == "2407.00001" and f.featuring) == [
        "2024-07-01",
        "2024-07-03",
    ]
    assert jobs.ingest_hf_file(sqlite_engine, FIXTURES / "days.jsonl", now).counts.changed == 0


def test_truncated_dump_keeps_the_days_before_the_damage(tmp_path: Path, sqlite_engine: Engine) -> None:
    path = tmp_path / "days.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as g:
        for n in range(120):  # 120 days of 5 papers, in the dump's {"date", "response"} shape
            day = date(2024, 7, 1) + timedelta(days=n)
            response = [item(5 * n + k, day) for k in range(5)]
            g.write(json.dumps({"date": day.isoformat(), "response": response}) + "\n")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestFailed, match="truncated") as info:
        jobs.ingest_hf_file(sqlite_engine, path, now)
    kept = info.value.counts.inserted
    assert 0 < kept < 600 and kept % 5 == 0  # whole days, stored before the damage
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == kept
        assert store.count_featured(conn) == kept


# --- the real data -----------------------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "count", "with_ai"),
    [
        ("daily_papers_2024-05-27.json", 13, False),
        ("daily_papers_2025-06-13.json", 26, True),
        ("daily_papers_2026-08-12.json", 20, True),
    ],
)
def test_real_fixture_schemas(shared_data: Path, name: str, count: int, with_ai: bool) -> None:
    body = json.loads((shared_data / "hf_daily_papers" / "fixtures" / name).read_text())
    day = date.fromisoformat(name[len("daily_papers_") : -len(".json")])
    records = huggingface.parse_day(body, day, name)
    assert len(records) == count
    assert all(r.paper.title and r.paper.abstract and r.paper.authors for r in records)
    assert all(r.featuring is not None and r.featuring.day == day for r in records)
    assert any(r.paper.ai_summary for r in records) == with_ai


@pytest.mark.shared_data
def test_the_whole_real_dump_and_the_scrape(shared_data: Path, sqlite_engine: Engine) -> None:
    dump = shared_data / "hf_daily_papers" / "daily_papers_by_day.jsonl.gz"
    result = jobs.ingest_hf_file(sqlite_engine, dump, now)
    assert result.pages == 580
    assert result.counts.inserted == 9877  # distinct papers
    assert result.counts.featured == 9881  # 4 papers were listed on two days
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 9877
        assert store.count_featured(conn) == 9881
        assert store.latest_featured_day(conn) == date(2026, 8, 21)
    assert jobs.ingest_hf_file(sqlite_engine, dump, now).counts.changed == 0
    scrape = shared_data / "hf_daily_papers" / "supplementary_hf_papers_scraped_2023-11_2024-04.json.gz"
    result = jobs.ingest_hf_file(sqlite_engine, scrape, now)
    assert result.counts.inserted + result.counts.updated == 753
    p = stored(sqlite_engine, "2312.17653")
    assert p.paper.title == "LARP: Language-Agent Role Play for Open-World Games"
    assert p.featuring is not None and p.featuring.upvotes == 29


# --- the API path ------------------------------------------------------------------------------------------


def test_api_pages_through_a_long_day(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_day(upstream, FRI, Reply.json([item(n, FRI) for n in range(100)]), page=0)
    serve_day(upstream, FRI, Reply.json([item(n, FRI) for n in range(100, 150)]), page=1)
    result = api(sqlite_engine, client, upstream, day=FRI)
    assert (result.counts.inserted, result.counts.featured) == (150, 150)
    assert [(r.query["date"], r.query["p"], r.query["limit"]) for r in upstream.requests] == [
        ("2025-06-13", "0", "100"),
        ("2025-06-13", "1", "100"),
    ]


def test_api_exactly_one_full_page_asks_once_more(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_day(upstream, FRI, Reply.json([item(n, FRI) for n in range(100)]), page=0)
    serve_day(upstream, FRI, Reply.json([]), page=1)
    assert api(sqlite_engine, client, upstream, day=FRI).counts.inserted == 100
    assert len(upstream.requests) == 2


@pytest.mark.shared_data
def test_api_serving_a_recorded_day(
    shared_data: Path, sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    body = (shared_data / "hf_daily_papers" / "fixtures" / "daily_papers_2025-06-13.json").read_bytes()
    serve_day(upstream, FRI, Reply(200, body, {"Content-Type": "application/json"}))
    result = api(sqlite_engine, client, upstream, day=FRI)
    assert (result.counts.inserted, result.counts.featured) == (26, 26)


def test_api_429_with_retry_after_is_honoured(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient, waits: Waits
) -> None:
    serve_day(upstream, FRI, Reply(429, headers={"Retry-After": "5"}), Reply.json([item(1, FRI)]))
    assert api(sqlite_engine, client, upstream, day=FRI).counts.inserted == 1
    assert waits == [5.0]


def test_api_429_with_a_tiny_real_wait(sqlite_engine: Engine, upstream: Upstream) -> None:
    serve_day(upstream, FRI, Reply(429, headers={"Retry-After": "1"}), Reply.json([item(1, FRI)]))
    with PoliteClient(retries=1) as client:  # really sleeps
        api(sqlite_engine, client, upstream, day=FRI)
    first, second = upstream.requests
    assert second.at - first.at >= 0.9  # waited the second it was told to (less scheduling jitter)


def test_api_5xx_retried_then_success(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient, waits: Waits
) -> None:
    serve_day(upstream, FRI, Reply(502), Reply(503), Reply.json([item(1, FRI)]))
    assert api(sqlite_engine, client, upstream, day=FRI).counts.inserted == 1
    assert waits == [1.0, 2.0]


def test_api_timeout_retried(sqlite_engine: Engine, upstream: Upstream, waits: Waits) -> None:
    serve_day(upstream, FRI, Reply.json([item(1, FRI)], delay=2.0), Reply.json([item(1, FRI)]))
    with PoliteClient(retries=1, timeout=0.3, sleep=waits) as client:
        assert api(sqlite_engine, client, upstream, day=FRI).counts.inserted == 1
    assert len(upstream.requests) == 2


@pytest.mark.parametrize(
    "bad",
    [
        Reply.json([item(9, THU)], truncate=30),  # a body cut short (with a matching Content-Length)
        Reply(200, b"<html>Bad gateway</html>", {"Content-Type": "text/html"}),  # not JSON at all
        Reply.json({"error": "Invalid date"}),  # JSON of another shape
    ],
)
def test_api_malformed_body_fails_and_keeps_what_was_stored(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient, bad: Reply
) -> None:
    upstream.route("/api/daily_papers", None, Reply.json([]))
    serve_day(upstream, WED, Reply.json([item(1, WED), item(2, WED)]))
    serve_day(upstream, THU, bad)
    with pytest.raises(IngestFailed) as info:
        api(sqlite_engine, client, upstream, since=WED)
    assert "2025-06-12" in str(info.value)  # names the request
    assert info.value.counts.inserted == 2
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 2  # Wednesday stays stored
        assert ingest_state.get_cursor(conn, jobs.HF_CURSOR) == {"day": "2025-06-11"}
        assert ingest_state.recent_runs(conn)[0].status == "failed"


def test_api_cut_connection_is_retried(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    body = [item(n, FRI) for n in range(20)]
    serve_day(upstream, FRI, Reply.json(body, cut_connection=True), Reply.json(body))
    assert api(sqlite_engine, client, upstream, day=FRI).counts.inserted == 20


def test_api_resumes_from_the_cursor(sqlite_engine: Engine, upstream: Upstream, client: PoliteClient) -> None:
    upstream.route("/api/daily_papers", None, Reply.json([]))
    serve_day(upstream, WED, Reply.json([item(1, WED)]))
    serve_day(upstream, THU, Reply(500))
    with pytest.raises(IngestFailed):
        api(sqlite_engine, client, upstream, since=WED)
    serve_day(upstream, THU, Reply.json([item(2, THU)]))
    serve_day(upstream, FRI, Reply.json([item(3, FRI)]))
    before = len(upstream.requests)
    result = api(sqlite_engine, client, upstream)  # no --since: from the cursor
    asked = [r.query["date"] for r in upstream.requests[before:]]
    assert asked == ["2025-06-11", "2025-06-12", "2025-06-13"]  # the cursor's own day again, then on
    assert result.counts.inserted == 2 and result.counts.unchanged == 1
    with sqlite_engine.connect() as conn:
        assert ingest_state.get_cursor(conn, jobs.HF_CURSOR) == {"day": "2025-06-13"}


def test_api_an_old_cursor_is_not_skipped_past(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    with sqlite_engine.begin() as conn:
        ingest_state.set_cursor(conn, jobs.HF_CURSOR, {"day": "2025-06-02"}, NOW)
    upstream.route("/api/daily_papers", None, Reply.json([]))
    api(sqlite_engine, client, upstream, default_days=3)
    asked = sorted({r.query["date"] for r in upstream.requests})
    assert asked[0] == "2025-06-02" and len(asked) == 10  # two full weeks of weekdays, not just 3 days


def test_api_an_explicit_date_leaves_the_sync_cursor_alone(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    with sqlite_engine.begin() as conn:
        ingest_state.set_cursor(conn, jobs.HF_CURSOR, {"day": "2025-06-13"}, NOW)
    serve_day(upstream, WED, Reply.json([item(1, WED)]))
    api(sqlite_engine, client, upstream, day=WED)
    with sqlite_engine.connect() as conn:
        assert ingest_state.get_cursor(conn, jobs.HF_CURSOR) == {"day": "2025-06-13"}


def test_api_counts_only_grow(sqlite_engine: Engine, upstream: Upstream, client: PoliteClient) -> None:
    serve_day(upstream, FRI, Reply.json([item(5, FRI, upvotes=10)]))
    api(sqlite_engine, client, upstream, day=FRI)
    serve_day(upstream, FRI, Reply.json([item(5, FRI, upvotes=25, ai_summary="Now with a summary.")]))
    again = api(sqlite_engine, client, upstream, day=FRI)
    assert (again.counts.updated, again.counts.featured) == (1, 1)
    p = stored(sqlite_engine, "2506.10005")
    assert p.featuring is not None and p.featuring.upvotes == 25
    assert p.paper.ai_summary == "Now with a summary."


def test_file_job_reads_a_gzipped_copy(tmp_path: Path, sqlite_engine: Engine) -> None:
    gz = tmp_path / "daily.json.gz"
    with (FIXTURES / "daily_2026_schema.json").open("rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    result = jobs.ingest_hf_file(sqlite_engine, gz, now)
    assert (result.counts.inserted, result.counts.featured) == (2, 2)
