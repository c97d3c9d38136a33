"""arXiv RSS listings and the Atom API: parsing both serializations, and the `ingest arxiv` job end to end
against a local server playing rss.arxiv.org and export.arxiv.org."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from upstream import Reply, Upstream

from paperboy import jobs
from paperboy.cli import main
from paperboy.errors import InvalidInput, SourceError
from paperboy.ingest import IngestFailed
from paperboy.models import Paper, Record
from paperboy.sources import arxiv_api, arxiv_rss
from paperboy.sources.http import PoliteClient
from paperboy.store import ingest_state
from paperboy.store import papers as store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "arxiv"
NOW = datetime(2026, 5, 5, 8, 0, tzinfo=UTC)
DAY = date(2026, 5, 5)
CROSS_IDS = {"2605.01003", "2603.07001"}
ALL_IDS = ["2605.01001", "2605.01002", "2605.01003", "2604.09001", "2603.07001"]

# --- helpers: an Atom API that answers id_list queries from the entries of the fixture files -------------

_ENTRY = re.compile(r"<entry>.*?</entry>", re.S)
_ENTRY_ID = re.compile(r"<id>https?://arxiv\.org/abs/([^<]+?)v\d+</id>")
ENTRIES = {
    _ENTRY_ID.search(e).group(1): e  # type: ignore[union-attr]
    for name in ("atom_classic.xml", "atom_2026.xml")
    for e in _ENTRY.findall((FIXTURES / name).read_text())
}


def atom_feed(ids: list[str]) -> str:
    """A 2026-style feed holding the fixture entries of `ids` (unknown ids are left out, as arXiv does)."""
    entries = "\n".join(ENTRIES[i] for i in ids if i in ENTRIES)
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom"
 xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/api/test</id>
  <title>arXiv Query: id_list={",".join(ids)}</title>
  <updated>2026-05-05T06:00:00Z</updated>
  <opensearch:totalResults>{len(ids)}</opensearch:totalResults>
  {entries}
</feed>"""


def serve_api(upstream: Upstream, *batches: list[str]) -> None:
    for ids in batches:
        upstream.route("/api/query", {"id_list": ",".join(ids)}, Reply.xml(atom_feed(ids)))


def serve_rss(upstream: Upstream, body: bytes | str, category: str = "cs.CL") -> None:
    upstream.route(f"/rss/{category}", None, Reply.xml(body))


@pytest.fixture
def client() -> Iterator[PoliteClient]:
    with PoliteClient(retries=1, backoff=0.0, timeout=5.0) as c:
        yield c


def run(engine: Engine, client: PoliteClient, upstream: Upstream, **kw: object) -> jobs.IngestResult:
    return jobs.ingest_arxiv(
        engine,
        client,
        f"{upstream.url}/rss",
        f"{upstream.url}/api/query",
        "cs.CL",
        lambda: NOW,
        **kw,  # type: ignore[arg-type]
    )


def paper(engine: Engine, arxiv_id: str) -> store.StoredPaper:
    with engine.connect() as conn:
        found = store.get_paper(conn, arxiv_id)
    assert found is not None, arxiv_id
    return found


# --- RSS ---------------------------------------------------------------------------------------------------


def test_rss_items_announce_types_ids_and_fields() -> None:
    listing = arxiv_rss.parse_listing((FIXTURES / "rss_cs.CL.xml").read_bytes(), "cs.CL")
    assert listing.day == DAY  # "Tue, 05 May 2026 00:00:00 -0400": the date in arXiv's own zone
    assert [(i.arxiv_id, i.paper.version, i.announce_type) for i in listing.items] == [
        ("2605.01001", 1, "new"),
        ("2605.01002", 1, "new"),
        ("2605.01003", 1, "cross"),
        ("2604.09001", 2, "replace"),
        ("2603.07001", 3, "replace-cross"),
    ]
    first = listing.items[0].paper
    assert first.title == "Small Parsers for Long Documents"
    assert first.abstract.startswith("We parse long documents")  # the "arXiv:… Announce Type" header is gone
    assert "Announce Type" not in first.abstract and "Abstract:" not in first.abstract
    assert first.authors == ("Olga Ivanova", "Pedro Alves", "Qi Zhang")  # "…, Pedro Alves and Qi Zhang"
    assert first.categories == ("cs.CL", "cs.LG")
    assert first.license == "http://creativecommons.org/licenses/by/4.0/"
    last = listing.items[-1]
    assert last.is_cross and last.paper.withdrawn
    assert last.paper.authors == ("Victor Hugo Lima", "Wen Li", "Xavier Dupont")  # "…, Wen Li, and Xavier …"


def test_rss_empty_weekend_feed_has_a_day_and_no_items() -> None:
    listing = arxiv_rss.parse_listing((FIXTURES / "rss_empty.xml").read_bytes(), "cs.CL")
    assert listing.items == []
    assert listing.day == date(2026, 5, 9)


def test_rss_version_comes_from_the_description_when_the_guid_has_none() -> None:
    body = (
        (FIXTURES / "rss_cs.CL.xml")
        .read_text()
        .replace("oai:arXiv.org:2604.09001v2", "oai:arXiv.org:2604.09001")
    )
    listing = arxiv_rss.parse_listing(body, "cs.CL")
    assert listing.items[3].paper.version == 2


def test_rss_not_a_feed_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="not an RSS feed"):
        arxiv_rss.parse_listing(b"<html><body>maintenance</body></html>", "cs.CL")


@pytest.mark.parametrize("bad", ["cs.CL/../x", "cs CL", "", "1cs"])
def test_rss_category_is_checked_before_any_request(
    bad: str, upstream: Upstream, client: PoliteClient
) -> None:
    with pytest.raises(InvalidInput):
        arxiv_rss.fetch_listing(client, f"{upstream.url}/rss", bad)
    assert upstream.requests == []


@pytest.mark.shared_data
@pytest.mark.parametrize("category", ["cs.AI", "cs.CL", "cs.LG"])
def test_real_rss_feeds(shared_data: Path, category: str) -> None:
    body = (shared_data / "arxiv_api_fixtures" / "rss" / f"rss_{category}_2026.xml").read_bytes()
    assert not body.lstrip().startswith(b"<?xml")  # the real files come without a declaration
    listing = arxiv_rss.parse_listing(body, category)
    assert listing.day == date(2026, 4, 27)
    assert len(listing.items) == 3
    for item in listing.items:
        p = item.paper
        assert item.announce_type == "new"
        assert re.fullmatch(r"2604\.2\d{4}", p.arxiv_id) and p.version == 1
        assert p.title and len(p.abstract) > 200 and "Announce Type" not in p.abstract
        assert p.authors and all("," not in a for a in p.authors)
        assert category in p.categories
        assert p.license and p.license.startswith("http")


@pytest.mark.shared_data
def test_real_rss_long_author_list(shared_data: Path) -> None:
    body = (shared_data / "arxiv_api_fixtures" / "rss" / "rss_cs.AI_2026.xml").read_bytes()
    items = {i.arxiv_id: i.paper for i in arxiv_rss.parse_listing(body, "cs.AI").items}
    authors = items["2604.21936"].authors
    assert len(authors) == 18
    assert authors[0] == "Lianrui Zuo" and authors[-1] == "Bennett A. Landman"


# --- Atom API ----------------------------------------------------------------------------------------------


def test_atom_classic_serialization() -> None:
    feed = arxiv_api.parse_feed((FIXTURES / "atom_classic.xml").read_bytes())
    assert feed.total == 2
    first, second = feed.papers
    assert (first.arxiv_id, first.version) == ("2605.01001", 1)
    assert first.title == "Small Parsers for Long Documents"  # hard line break joined
    assert first.abstract == (
        "We parse long documents with a small model and a large cache. "
        "The cache makes the small model competitive."
    )
    assert first.authors == ("Olga Ivanova", "Pedro Alves", "Qi Zhang")  # affiliation ignored
    assert first.primary_category == "cs.CL"
    assert first.categories == ("cs.CL", "cs.LG")  # primary first, whatever the entry's order
    assert first.published_at == datetime(2026, 5, 1, 17, 59, 37, tzinfo=UTC)
    assert first.comments == "12 pages, 4 figures; code at https://example.org/small-parsers"
    assert first.journal_ref == "Journal of Examples 7, 101 (2026)"
    assert first.doi == "10.1234/example.2026.001"
    assert not first.withdrawn
    assert second.comments is None and second.doi is None and second.journal_ref is None


def test_atom_2026_serialization() -> None:
    feed = arxiv_api.parse_feed((FIXTURES / "atom_2026.xml").read_bytes())
    revised, withdrawn = feed.papers
    assert (revised.arxiv_id, revised.version) == ("2604.09001", 2)
    assert revised.published_at == datetime(2026, 4, 10, 9, 30, tzinfo=UTC)  # <published> after categories
    assert revised.updated_at == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    assert revised.primary_category == "cs.CL"  # <arxiv:primary_category> without scheme
    assert withdrawn.withdrawn
    assert withdrawn.categories == ("cs.CV", "cs.CL")


def test_atom_error_entry_is_a_source_error() -> None:
    with pytest.raises(SourceError, match=r"incorrect id format for 2605\.0100x"):
        arxiv_api.parse_feed((FIXTURES / "atom_error.xml").read_bytes())


def test_atom_other_root_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="not an Atom feed"):
        arxiv_api.parse_feed(b"<rss version='2.0'><channel/></rss>")


@pytest.mark.shared_data
def test_real_atom_classic_responses(shared_data: Path) -> None:
    folder = shared_data / "arxiv_api_fixtures" / "atom_api"
    feed = arxiv_api.parse_feed((folder / "query_id_list-1601.00001_2020-09-04.xml").read_bytes())
    (p,) = feed.papers
    assert (p.arxiv_id, p.version, feed.total) == ("1601.00001", 1, 1)
    assert p.title == "Inelastic effects in molecular transport junctions: The probe technique at high bias"
    assert p.doi == "10.1063/1.4944470"
    assert p.journal_ref == "J. Chem. Phys. 144, 124107 (2016)"
    assert p.authors == ("Michael Kilgour", "Dvira Segal")
    assert p.primary_category == "cond-mat.mes-hall"
    feed = arxiv_api.parse_feed((folder / "query_cat-cs.RO_AND_neural_max2_2025-10-17.xml").read_bytes())
    assert feed.total == 5619
    assert [p.arxiv_id for p in feed.papers] == ["2510.14968", "2510.14827"]
    assert feed.papers[0].categories[0] == "cs.RO"


@pytest.mark.shared_data
def test_real_atom_2026_response(shared_data: Path) -> None:
    body = (
        shared_data / "arxiv_api_fixtures" / "atom_api" / "query_all-nicotine_max10_2026-07-17.xml"
    ).read_bytes()
    feed = arxiv_api.parse_feed(body)
    assert feed.total == 58
    assert len(feed.papers) == 10
    by_id = {p.arxiv_id: p for p in feed.papers}
    old_style = by_id["q-bio/0509018"]
    assert old_style.version == 2 and old_style.doi == "10.1088/1478-3975/3/2/007"
    first = by_id["1509.01687"]
    assert (
        first.comments == "4 figures" and first.journal_ref == "Journal of Applied Physics 116, 244307 (2014)"
    )
    assert first.published_at == datetime(2015, 9, 5, 10, 21, 46, tzinfo=UTC)
    assert all(p.primary_category and p.primary_category == p.categories[0] for p in feed.papers)


def test_fetch_by_ids_batches_with_id_list_and_max_results(upstream: Upstream, client: PoliteClient) -> None:
    serve_api(upstream, ["2605.01001", "2605.01002"], ["2604.09001", "2603.07001"], ["2605.01003"])
    ids = ["2605.01001", "2605.01002", "2604.09001", "2603.07001", "2605.01003", "2605.01001"]
    batches = list(arxiv_api.fetch_by_ids(client, f"{upstream.url}/api/query", ids, batch_size=2))
    assert [[p.arxiv_id for p in b] for b in batches] == [
        ["2605.01001", "2605.01002"],
        ["2604.09001", "2603.07001"],
        [],  # arXiv does not know it: missing from its batch, not an error
    ]
    assert [(r.query["id_list"], r.query["max_results"]) for r in upstream.requests] == [
        ("2605.01001,2605.01002", "2"),
        ("2604.09001,2603.07001", "2"),
        ("2605.01003", "1"),
    ]


def test_fetch_by_ids_error_entry(upstream: Upstream, client: PoliteClient) -> None:
    upstream.route("/api/query", None, Reply.xml((FIXTURES / "atom_error.xml").read_bytes()))
    with pytest.raises(SourceError, match="arXiv API error"):
        list(arxiv_api.fetch_by_ids(client, f"{upstream.url}/api/query", ["2605.0100x"]))


# --- the ingest job ----------------------------------------------------------------------------------------


def test_ingest_arxiv_enriches_the_listing_and_features_new_papers(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    serve_api(upstream, ALL_IDS)
    result = run(sqlite_engine, client, upstream)
    assert (result.counts.inserted, result.counts.featured, result.pages) == (5, 2, 1)

    enriched = paper(sqlite_engine, "2605.01001")
    p = enriched.paper
    assert p.published_at == datetime(2026, 5, 1, 17, 59, 37, tzinfo=UTC)  # from the API
    assert p.doi == "10.1234/example.2026.001" and p.journal_ref == "Journal of Examples 7, 101 (2026)"
    assert p.license == "http://creativecommons.org/licenses/by/4.0/"  # from the feed: the API has none
    assert p.primary_category == "cs.CL" and p.version == 1
    assert enriched.featuring is not None
    assert (enriched.featuring.day, enriched.featuring.source) == (DAY, "arxiv")

    cross = paper(sqlite_engine, "2605.01003")  # unknown to the API: stored as the feed describes it
    assert cross.featuring is None
    assert cross.paper.title == "Graph Priors for Retrieval" and cross.paper.published_at is None
    assert paper(sqlite_engine, "2604.09001").featuring is None  # replacements are not featured
    assert paper(sqlite_engine, "2603.07001").paper.withdrawn

    with sqlite_engine.connect() as conn:
        assert ingest_state.get_cursor(conn, "arxiv:cs.CL") == {"day": "2026-05-05"}
        featured = store.featured(conn, store.FeaturedQuery(start=DAY, end=DAY))
    assert sorted(f.paper.arxiv_id for f in featured) == ["2605.01001", "2605.01002"]
    (api_request,) = upstream.requests_to("/api/query")
    assert api_request.query["id_list"] == ",".join(ALL_IDS)


def test_second_run_on_the_same_listing_is_a_no_op(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    serve_api(upstream, ALL_IDS)
    run(sqlite_engine, client, upstream)
    again = run(sqlite_engine, client, upstream)
    assert again.pages == 0 and again.counts.changed == 0 and again.counts.unchanged == 0
    assert len(upstream.requests_to("/api/query")) == 1  # the stored day means no API call at all
    forced = run(sqlite_engine, client, upstream, force=True)
    assert forced.pages == 1
    assert forced.counts.changed == 0 and forced.counts.unchanged == 5  # idempotent when forced


def test_without_cross_lists(sqlite_engine: Engine, upstream: Upstream, client: PoliteClient) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    kept = [i for i in ALL_IDS if i not in CROSS_IDS]
    serve_api(upstream, kept)
    result = run(sqlite_engine, client, upstream, cross_lists=False)
    assert result.counts.inserted == 3
    with sqlite_engine.connect() as conn:
        for arxiv_id in CROSS_IDS:
            assert store.get_paper(conn, arxiv_id) is None


def test_feature_new_off_stores_without_featuring(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    serve_api(upstream, ALL_IDS)
    result = run(sqlite_engine, client, upstream, feature_new=False)
    assert result.counts.inserted == 5 and result.counts.featured == 0


def test_a_replacement_updates_the_stored_version(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    v1 = Paper(
        arxiv_id="2604.09001",
        version=1,
        title="Tokenizers Revisited",
        abstract="A study of tokenizers.",
        authors=("Uma Raman",),
        categories=("cs.CL",),
        published_at=datetime(2026, 4, 10, 9, 30, tzinfo=UTC),
    )
    with sqlite_engine.begin() as conn:
        store.upsert_records(conn, [Record(v1)], NOW)
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    serve_api(upstream, ALL_IDS)
    result = run(sqlite_engine, client, upstream)
    assert result.counts.updated == 1 and result.counts.inserted == 4
    p = paper(sqlite_engine, "2604.09001").paper
    assert p.version == 2
    assert p.title == "Tokenizers Revisited (Second Edition)"
    assert p.comments == "v2: new section 5"
    assert p.updated_at == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def test_batches_and_a_failure_mid_listing(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    serve_api(upstream, ALL_IDS[:2], ALL_IDS[4:])
    upstream.route("/api/query", {"id_list": ",".join(ALL_IDS[2:4])}, Reply(500))
    with pytest.raises(IngestFailed, match="500") as info:
        run(sqlite_engine, client, upstream, batch_size=2)
    assert info.value.counts.inserted == 2  # the first batch is stored
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 2
        # The day is marked done only by the last page, so the next run does the whole listing again.
        assert ingest_state.get_cursor(conn, "arxiv:cs.CL") is None
        assert ingest_state.recent_runs(conn)[0].status == "failed"
    serve_api(upstream, ALL_IDS[2:4])  # arXiv is back
    result = run(sqlite_engine, client, upstream, batch_size=2)
    assert result.pages == 3
    assert (result.counts.inserted, result.counts.unchanged) == (3, 2)
    with sqlite_engine.connect() as conn:
        assert ingest_state.get_cursor(conn, "arxiv:cs.CL") == {"day": "2026-05-05"}


def test_api_error_entry_fails_the_run(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    upstream.route("/api/query", None, Reply.xml((FIXTURES / "atom_error.xml").read_bytes()))
    with pytest.raises(IngestFailed, match="incorrect id format"):
        run(sqlite_engine, client, upstream)
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 0


def test_since_after_the_listing_day_does_nothing(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    result = run(sqlite_engine, client, upstream, since=date(2026, 5, 6))
    assert result.pages == 0
    assert upstream.requests_to("/api/query") == []
    serve_api(upstream, ALL_IDS)
    assert run(sqlite_engine, client, upstream, since=date(2026, 5, 1)).counts.inserted == 5


def test_an_empty_feed_records_its_day(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_rss(upstream, (FIXTURES / "rss_empty.xml").read_bytes())
    result = run(sqlite_engine, client, upstream)
    assert result.pages == 1 and result.counts.changed == 0
    assert upstream.requests_to("/api/query") == []
    with sqlite_engine.connect() as conn:
        assert ingest_state.get_cursor(conn, "arxiv:cs.CL") == {"day": "2026-05-09"}


def test_arxiv_requests_are_paced(sqlite_engine: Engine, upstream: Upstream) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    serve_api(upstream, ALL_IDS[:2], ALL_IDS[2:4], ALL_IDS[4:])
    with PoliteClient(min_interval=0.15) as paced:
        run(sqlite_engine, paced, upstream, batch_size=2)
    times = [r.at for r in upstream.requests]
    assert len(times) == 4  # the feed, then three id batches
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.15 * 0.9


@pytest.mark.shared_data
def test_real_rss_feed_through_the_job(shared_data: Path, sqlite_engine: Engine, upstream: Upstream) -> None:
    serve_rss(
        upstream, (shared_data / "arxiv_api_fixtures" / "rss" / "rss_cs.AI_2026.xml").read_bytes(), "cs.AI"
    )
    upstream.route("/api/query", None, Reply.xml(atom_feed([])))  # the API knows none of them yet
    with PoliteClient(retries=0) as client:
        result = jobs.ingest_arxiv(
            sqlite_engine, client, f"{upstream.url}/rss", f"{upstream.url}/api/query", "cs.AI", lambda: NOW
        )
    assert (result.counts.inserted, result.counts.featured) == (3, 3)
    with sqlite_engine.connect() as conn:
        day = date(2026, 4, 27)
        assert len(store.featured(conn, store.FeaturedQuery(start=day, end=day))) == 3


# --- the command -------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAPERBOY_ARXIV_CATEGORIES", raising=False)
    monkeypatch.setenv("PAPERBOY_ARXIV_RSS_URL", f"{upstream.url}/rss")
    monkeypatch.setenv("PAPERBOY_ARXIV_API_URL", f"{upstream.url}/api/query")
    monkeypatch.setenv("PAPERBOY_ARXIV_MIN_INTERVAL", "0.05")
    monkeypatch.setenv("PAPERBOY_HTTP_RETRIES", "0")
    return tmp_path / "data"


def summary(stdout: str) -> dict[str, int]:
    return json.loads(stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_cli_ingest_arxiv(cli_env: Path, upstream: Upstream) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    serve_api(upstream, [i for i in ALL_IDS if i not in CROSS_IDS])
    first = CliRunner().invoke(main, ["ingest", "arxiv", "--category", "cs.CL", "--no-cross-lists"])
    assert first.exit_code == 0, first.output
    assert summary(first.stdout) | {"run": 0} == {
        "source": "arxiv",
        "run": 0,
        "pages": 1,
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "featured": 2,
    }
    again = CliRunner().invoke(main, ["ingest", "arxiv", "--category", "cs.CL", "--since", "2026-05-01"])
    assert again.exit_code == 0, again.output
    assert summary(again.stdout)["pages"] == 0
    assert "paperboy ingest oai" in again.stderr  # older days come from OAI-PMH


def test_cli_ingest_arxiv_failure_exits_non_zero(cli_env: Path, upstream: Upstream) -> None:
    serve_rss(upstream, (FIXTURES / "rss_cs.CL.xml").read_bytes())
    upstream.route("/api/query", None, Reply(503))
    result = CliRunner().invoke(main, ["ingest", "arxiv", "--category", "cs.CL"])
    assert result.exit_code == 1
    assert "503" in result.output and "run the same command again" in result.output


def test_cli_ingest_arxiv_needs_a_category(cli_env: Path) -> None:
    result = CliRunner().invoke(main, ["ingest", "arxiv"])
    assert result.exit_code == 2 and "--category" in result.output
    bad = CliRunner().invoke(main, ["ingest", "arxiv", "--category", "cs/../x"])
    assert bad.exit_code == 1 and "not an arXiv category" in bad.output
