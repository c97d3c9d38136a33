"""OAI-PMH ListRecords (arXivRaw and arXiv formats), resumption tokens, OAI errors, and the resumable
`ingest oai` job against a local server playing export.arxiv.org/oai2."""

from __future__ import annotations

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
from paperboy.errors import SourceError
from paperboy.ingest import IngestFailed
from paperboy.sources import arxiv_oai
from paperboy.sources.http import PoliteClient
from paperboy.store import ingest_state
from paperboy.store import papers as store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "oai"
PAGE1 = (FIXTURES / "raw_page1.xml").read_bytes()
PAGE2 = (FIXTURES / "raw_page2.xml").read_bytes()
TOKEN = "8844211|1001"
NOW = datetime(2026, 5, 6, 5, 0, tzinfo=UTC)
CURSOR = "oai:cs:arXivRaw"

ERROR_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">
<responseDate>2026-05-06T13:25:21Z</responseDate>
<request>http://export.arxiv.org/oai2</request>
<error code="{code}">{message}</error>
</OAI-PMH>"""


def oai_error(code: str, message: str = "something is wrong") -> bytes:
    return ERROR_TEMPLATE.format(code=code, message=message).encode()


@pytest.fixture
def client() -> Iterator[PoliteClient]:
    with PoliteClient(retries=1, backoff=0.0, timeout=5.0) as c:
        yield c


def serve_two_pages(
    upstream: Upstream, page1: bytes = PAGE1, page2: bytes = PAGE2, token: str = TOKEN
) -> None:
    upstream.route("/oai", {"verb": "ListRecords", "metadataPrefix": "arXivRaw"}, Reply.xml(page1))
    upstream.route("/oai", {"verb": "ListRecords", "resumptionToken": token}, Reply.xml(page2))


def run(engine: Engine, client: PoliteClient, upstream: Upstream, **kw: object) -> jobs.IngestResult:
    return jobs.ingest_oai(engine, client, f"{upstream.url}/oai", "cs", lambda: NOW, **kw)  # type: ignore[arg-type]


def cursor(engine: Engine, name: str = CURSOR) -> dict[str, object] | None:
    with engine.connect() as conn:
        return ingest_state.get_cursor(conn, name)


# --- parsing -----------------------------------------------------------------------------------------------


def test_arxiv_raw_versions_dates_submitter_and_withdrawal() -> None:
    response = arxiv_oai.parse_response(PAGE1)
    assert response.response_date == datetime(2026, 5, 6, 4, 36, 53, tzinfo=UTC)
    assert response.resumption_token == TOKEN
    assert response.complete_list_size == 4
    assert response.deleted == 1  # a deleted record has no metadata: skipped, counted
    revised, withdrawn = response.records
    p = revised.paper
    assert (p.arxiv_id, p.version) == ("2604.09001", 2)
    assert p.published_at == datetime(2026, 4, 10, 9, 30, tzinfo=UTC)  # first version
    assert p.updated_at == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # newest version
    assert p.title == "Tokenizers Revisited (Second Edition)"
    assert p.authors == ("Uma Raman", "Yusuf Demir")
    assert p.categories == ("cs.CL", "cs.LG") and p.primary_category == "cs.CL"
    assert p.license == "http://creativecommons.org/licenses/by/4.0/"
    assert revised.submitter == "Uma Raman" and revised.datestamp == date(2026, 5, 5)
    assert not p.withdrawn
    w = withdrawn.paper
    assert w.withdrawn and w.version == 2  # the newest version is 0kb
    assert w.authors == ("Zoe Hart", "Anil Kapoor")  # "(Example University, Springfield)" dropped


def test_arxiv_raw_last_page_old_style_id_and_withdrawn_by_comment() -> None:
    response = arxiv_oai.parse_response(PAGE2)
    assert response.resumption_token is None  # an empty token ends the list
    (record,) = response.records
    p = record.paper
    assert (p.arxiv_id, p.version) == ("cs/0101001", 2)
    assert p.withdrawn  # 2kb newest version, but the comments say so
    assert p.authors == ("Bea Quist", "Carl Ode", "Dana Frost")
    assert p.journal_ref == "Example Letters 1 (2001) 1-10" and p.doi == "10.5555/example.0101001"


def test_arxiv_format_authors_and_dates() -> None:
    response = arxiv_oai.parse_response((FIXTURES / "arxiv_format.xml").read_bytes())
    (record,) = response.records
    p = record.paper
    assert p.arxiv_id == "2601.03003"
    assert p.version is None  # the arXiv format does not say; such records only fill gaps
    assert p.authors == ("Frances M. Eastwood", "Hector Garcia Marquez Jr")
    assert p.published_at == datetime(2026, 1, 7, tzinfo=UTC)
    assert p.updated_at == datetime(2026, 5, 4, tzinfo=UTC)
    assert p.categories == ("hep-th", "hep-lat")
    assert p.abstract == "A short note on strings on a lattice."
    assert p.doi == "10.5555/eprt.2026.034"


def test_no_records_match_is_an_empty_list() -> None:
    response = arxiv_oai.parse_response(oai_error("noRecordsMatch", "no records"))
    assert response.records == [] and response.resumption_token is None


@pytest.mark.parametrize("code", ["badArgument", "badResumptionToken", "badVerb", "idDoesNotExist"])
def test_other_oai_errors_are_source_errors_with_code_and_message(code: str) -> None:
    with pytest.raises(arxiv_oai.OaiError, match=f"{code}: the message") as info:
        arxiv_oai.parse_response(oai_error(code, "the message"))
    assert info.value.code == code and info.value.message == "the message"
    assert isinstance(info.value, SourceError)


def test_not_oai_pmh_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="not an OAI-PMH response"):
        arxiv_oai.parse_response(b"<html/>")


SHARED_ERRORS = [
    ("Error_BadArgument.xml", "badArgument", "illegal argument 'identifier'"),
    ("Error_BadResumptionToken.xml", "badResumptionToken", "illegal for this repository"),
    ("Error_BadVerb.xml", "badVerb", "Verb 'wah' not implemented"),
    ("Error_IdDoesNotExist.xml", "idDoesNotExist", "does not correspond to an item"),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("name", "code", "text"), SHARED_ERRORS)
def test_real_error_responses(shared_data: Path, name: str, code: str, text: str) -> None:
    body = (shared_data / "arxiv_api_fixtures" / "oai_pmh" / name).read_bytes()
    with pytest.raises(arxiv_oai.OaiError, match=re.escape(text)) as info:
        arxiv_oai.parse_response(body)
    assert info.value.code == code


@pytest.mark.shared_data
def test_real_no_records_match(shared_data: Path) -> None:
    body = (shared_data / "arxiv_api_fixtures" / "oai_pmh" / "Error_NoRecordsMatch.xml").read_bytes()
    response = arxiv_oai.parse_response(body)
    assert response.records == [] and response.response_date == datetime(2015, 6, 23, 13, 28, 30, tzinfo=UTC)


@pytest.mark.shared_data
def test_real_list_records_both_formats(shared_data: Path) -> None:
    folder = shared_data / "arxiv_api_fixtures" / "oai_pmh"
    raw = arxiv_oai.parse_response(
        (folder / "ListRecords_arXivRaw_from-2016-10-20_page1_387records.xml").read_bytes()
    )
    assert len(raw.records) == 387
    assert (raw.resumption_token, raw.complete_list_size) == ("1403493|1001", 1440)
    withdrawn = {r.paper.arxiv_id for r in raw.records if r.paper.withdrawn}
    assert {"0803.4354", "0808.3386", "1603.06854"} <= withdrawn  # 0kb newest versions; "has been withdrawn"
    first = raw.records[0].paper
    assert (first.arxiv_id, first.version) == ("0803.4354", 6)
    assert first.published_at == datetime(2008, 3, 30, 23, 26, 50, tzinfo=UTC)
    assert first.updated_at == datetime(2016, 10, 20, 16, 58, 38, tzinfo=UTC)
    assert first.title == "A O(n^8) X O(n^7) Linear Programming Model of the Traveling Salesman Problem"
    six = arxiv_oai.parse_response(
        (folder / "ListRecords_arXivRaw_from-2014-10-01_excerpt_6records.xml").read_bytes()
    )
    assert [r.paper.arxiv_id for r in six.records][:2] == ["0704.0471", "0704.0716"]
    assert six.records[0].paper.authors == ("D.V. Shetty", "S.J. Yennello", "G.A. Souliotis")
    assert six.records[1].paper.version == 4
    hep = arxiv_oai.parse_response(
        (folder / "ListRecords_arXiv_set-physics-hep-th_2017-12-14.xml").read_bytes()
    )
    assert hep.resumption_token is None
    assert [r.paper.authors for r in hep.records][:2] == [
        ("Philipp A Hoehn",),
        ("Luis B. Castro", "Edilberto O. Silva"),
    ]
    single = arxiv_oai.parse_response((folder / "GetRecord_arXiv_1401.2122.xml").read_bytes())
    assert single.records[0].paper.doi == "10.1007/s11005-017-1013-4"
    raw_single = arxiv_oai.parse_response(
        (folder / "GetRecord_arXivRaw_1302.2146_2015-01-06.xml").read_bytes()
    )
    assert raw_single.records[0].paper.version == 2 and raw_single.records[0].submitter == "Michael Saelim"


# --- list_records over HTTP --------------------------------------------------------------------------------


def test_list_records_follows_the_resumption_token(upstream: Upstream, client: PoliteClient) -> None:
    serve_two_pages(upstream)
    pages = list(
        arxiv_oai.list_records(client, f"{upstream.url}/oai", set_spec="cs", from_date=date(2026, 5, 1))
    )
    assert [[r.paper.arxiv_id for r in p.records] for p in pages] == [
        ["2604.09001", "0911.0001"],
        ["cs/0101001"],
    ]
    first, second = upstream.requests
    assert first.query == {
        "verb": "ListRecords",
        "metadataPrefix": "arXivRaw",
        "from": "2026-05-01",
        "set": "cs",
    }
    assert second.query == {
        "verb": "ListRecords",
        "resumptionToken": TOKEN,
    }  # the token is an exclusive argument
    assert pages[0].cursor == {
        "from": "2026-05-01",
        "resumption_token": TOKEN,
        "set": "cs",
        "prefix": "arXivRaw",
        "list_date": "2026-05-06",
    }
    # Complete: the next list asks for what changed since the day this one started.
    assert pages[1].cursor == {
        "from": "2026-05-06",
        "resumption_token": None,
        "set": "cs",
        "prefix": "arXivRaw",
    }
    assert pages[0].total == 2  # pages expected: 4 records in pages of 2


def test_list_records_arxiv_prefix(upstream: Upstream, client: PoliteClient) -> None:
    upstream.route(
        "/oai", {"metadataPrefix": "arXiv"}, Reply.xml((FIXTURES / "arxiv_format.xml").read_bytes())
    )
    (page,) = arxiv_oai.list_records(
        client, f"{upstream.url}/oai", metadata_prefix="arXiv", set_spec="physics:hep-th"
    )
    assert [r.paper.arxiv_id for r in page.records] == ["2601.03003"]
    assert upstream.requests[0].query["set"] == "physics:hep-th"
    assert page.cursor is not None and page.cursor["prefix"] == "arXiv"


def test_list_records_503_retry_after_then_page(upstream: Upstream) -> None:
    upstream.route("/oai", None, Reply(503, headers={"Retry-After": "0"}), Reply.xml(PAGE2))
    with PoliteClient(retries=2) as client:
        (page,) = arxiv_oai.list_records(client, f"{upstream.url}/oai", set_spec="cs")
    assert len(page.records) == 1 and len(upstream.requests) == 2


# --- the ingest job ----------------------------------------------------------------------------------------


def test_ingest_oai_stores_both_pages_and_keeps_withdrawn_papers(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_two_pages(upstream)
    result = run(sqlite_engine, client, upstream, from_date=date(2026, 5, 1))
    assert (result.pages, result.counts.inserted, result.counts.featured) == (2, 3, 0)
    with sqlite_engine.connect() as conn:
        withdrawn = store.get_paper(conn, "0911.0001")
        old_style = store.get_paper(conn, "cs/0101001")
        assert store.get_paper(conn, "2605.00099") is None  # the deleted record
    assert withdrawn is not None and withdrawn.paper.withdrawn and withdrawn.paper.version == 2
    assert withdrawn.paper.title == "A Proof That Did Not Hold"  # kept, with its metadata
    assert old_style is not None and old_style.paper.withdrawn
    assert cursor(sqlite_engine) == {
        "from": "2026-05-06",
        "resumption_token": None,
        "set": "cs",
        "prefix": "arXivRaw",
    }


def test_cursor_is_saved_with_each_page_and_an_interrupted_run_resumes_with_the_token(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    upstream.route("/oai", {"metadataPrefix": "arXivRaw"}, Reply.xml(PAGE1))
    upstream.route("/oai", {"resumptionToken": TOKEN}, Reply(500))  # arXiv falls over on page 2
    with pytest.raises(IngestFailed, match="500") as info:
        run(sqlite_engine, client, upstream, from_date=date(2026, 5, 1))
    assert info.value.counts.inserted == 2  # page 1 is stored, with its cursor
    assert cursor(sqlite_engine) == {
        "from": "2026-05-01",
        "resumption_token": TOKEN,
        "set": "cs",
        "prefix": "arXivRaw",
        "list_date": "2026-05-06",
    }

    upstream.route("/oai", {"resumptionToken": TOKEN}, Reply.xml(PAGE2))  # arXiv is back
    before = len(upstream.requests)
    result = run(sqlite_engine, client, upstream)  # no --from: resume
    resumed = upstream.requests[before:]
    assert [r.query for r in resumed] == [{"verb": "ListRecords", "resumptionToken": TOKEN}]
    assert (result.pages, result.counts.inserted) == (1, 1)
    # The finished list's `from` is the day it started, not the day it was resumed.
    assert cursor(sqlite_engine) == {
        "from": "2026-05-06",
        "resumption_token": None,
        "set": "cs",
        "prefix": "arXivRaw",
    }

    upstream.route("/oai", {"from": "2026-05-06"}, Reply.xml(oai_error("noRecordsMatch")))
    nothing_new = run(sqlite_engine, client, upstream)
    assert upstream.requests[-1].query == {
        "verb": "ListRecords",
        "metadataPrefix": "arXivRaw",
        "from": "2026-05-06",
        "set": "cs",
    }
    assert nothing_new.counts.changed == 0
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 3


def test_an_expired_stored_token_restarts_the_list_from_its_from_date(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    with sqlite_engine.begin() as conn:
        ingest_state.set_cursor(
            conn,
            CURSOR,
            {"from": "2026-05-01", "resumption_token": "stale|1", "set": "cs", "prefix": "arXivRaw"},
            NOW,
        )
    upstream.route(
        "/oai", {"resumptionToken": "stale|1"}, Reply.xml(oai_error("badResumptionToken", "expired"))
    )
    serve_two_pages(upstream)
    result = run(sqlite_engine, client, upstream)
    assert result.counts.inserted == 3
    assert [r.query.get("resumptionToken") or r.query.get("from") for r in upstream.requests] == [
        "stale|1",
        "2026-05-01",
        TOKEN,
    ]


def test_a_bad_token_mid_list_fails_the_run(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    serve_two_pages(
        upstream, page2=oai_error("badResumptionToken", "The resumptionToken supplied is illegal")
    )
    with pytest.raises(IngestFailed, match="badResumptionToken"):
        run(sqlite_engine, client, upstream, from_date=date(2026, 5, 1))
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 2
        (run_row,) = ingest_state.recent_runs(conn)
    assert run_row.status == "failed" and run_row.error is not None and "badResumptionToken" in run_row.error


def test_bad_argument_fails_the_run_with_the_code(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    upstream.route("/oai", None, Reply.xml(oai_error("badArgument", "illegal argument 'from'")))
    with pytest.raises(IngestFailed, match="badArgument: illegal argument 'from'"):
        run(sqlite_engine, client, upstream, from_date=date(2026, 5, 1))
    assert cursor(sqlite_engine) is None


def test_no_records_match_completes_with_the_response_date(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    upstream.route("/oai", None, Reply.xml(oai_error("noRecordsMatch", "nothing")))
    result = run(sqlite_engine, client, upstream, from_date=date(2026, 5, 1))
    assert result.pages == 1 and result.counts.changed == 0
    assert cursor(sqlite_engine) == {
        "from": "2026-05-06",
        "resumption_token": None,
        "set": "cs",
        "prefix": "arXivRaw",
    }


def test_an_explicit_from_starts_a_new_list_even_with_a_stored_token(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    with sqlite_engine.begin() as conn:
        ingest_state.set_cursor(
            conn,
            CURSOR,
            {"from": "2026-04-01", "resumption_token": "old|9", "set": "cs", "prefix": "arXivRaw"},
            NOW,
        )
    serve_two_pages(upstream)
    run(sqlite_engine, client, upstream, from_date=date(2026, 5, 1))
    assert upstream.requests[0].query["from"] == "2026-05-01"
    assert all("old|9" not in r.query.values() for r in upstream.requests)


def test_cursors_are_per_set_and_prefix(
    sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    upstream.route(
        "/oai", {"metadataPrefix": "arXiv"}, Reply.xml((FIXTURES / "arxiv_format.xml").read_bytes())
    )
    run(sqlite_engine, client, upstream, metadata_prefix="arXiv", from_date=date(2026, 5, 5))
    assert cursor(sqlite_engine) is None
    assert cursor(sqlite_engine, "oai:cs:arXiv") == {
        "from": "2026-05-06",
        "resumption_token": None,
        "set": "cs",
        "prefix": "arXiv",
    }


@pytest.mark.shared_data
def test_real_pages_across_a_resumption_token(
    shared_data: Path, sqlite_engine: Engine, upstream: Upstream, client: PoliteClient
) -> None:
    folder = shared_data / "arxiv_api_fixtures" / "oai_pmh"
    page1 = (folder / "ListRecords_arXivRaw_from-2014-10-01_excerpt_6records.xml").read_bytes()
    # Page 2 reuses the records of the 387-record response, as the last page of the same list.
    page2 = re.sub(
        rb"<resumptionToken[^>]*>[^<]*</resumptionToken>",
        b'<resumptionToken cursor="6" completeListSize="393"/>',
        (folder / "ListRecords_arXivRaw_from-2016-10-20_page1_387records.xml").read_bytes(),
    )
    serve_two_pages(upstream, page1, page2, token="726959|1001")
    result = run(sqlite_engine, client, upstream, from_date=date(2014, 10, 1))
    assert result.pages == 2
    assert result.counts.inserted == 393
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 393
        p = store.get_paper(conn, "0808.3386")
    assert p is not None and p.paper.withdrawn and p.paper.version == 8
    # The list started on 2015-01-06 (the first responseDate): that is where the next run starts.
    assert cursor(sqlite_engine) == {
        "from": "2015-01-06",
        "resumption_token": None,
        "set": "cs",
        "prefix": "arXivRaw",
    }
    again = run(sqlite_engine, client, upstream, from_date=date(2014, 10, 1))
    assert again.counts.changed == 0  # idempotent


# --- the command -------------------------------------------------------------------------------------------


def test_cli_ingest_oai_resumes(tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAPERBOY_DATABASE_URL", raising=False)
    monkeypatch.setenv("PAPERBOY_ARXIV_OAI_URL", f"{upstream.url}/oai")
    monkeypatch.setenv("PAPERBOY_ARXIV_MIN_INTERVAL", "0")
    monkeypatch.setenv("PAPERBOY_HTTP_RETRIES", "0")
    upstream.route("/oai", {"metadataPrefix": "arXivRaw"}, Reply.xml(PAGE1))
    upstream.route("/oai", {"resumptionToken": TOKEN}, Reply(503))
    failed = CliRunner().invoke(main, ["ingest", "oai", "--set", "cs", "--from", "2026-05-01"])
    assert failed.exit_code == 1
    assert "Kept 2 new" in failed.output
    upstream.route("/oai", {"resumptionToken": TOKEN}, Reply.xml(PAGE2))
    resumed = CliRunner().invoke(main, ["ingest", "oai", "--set", "cs"])
    assert resumed.exit_code == 0, resumed.output
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert (result["source"], result["inserted"], result["pages"]) == ("oai:arXivRaw", 1, 1)
    assert upstream.requests[-1].query == {"verb": "ListRecords", "resumptionToken": TOKEN}
    bad = CliRunner().invoke(main, ["ingest", "oai", "--set", "cs", "--prefix", "oai_dc"])
    assert bad.exit_code == 2
