"""Hostile XML from an upstream is refused before anything is expanded or fetched."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from upstream import Reply, Upstream

from paperboy import jobs
from paperboy.errors import SourceError
from paperboy.ingest import IngestFailed
from paperboy.sources import arxiv_api, arxiv_oai, arxiv_rss
from paperboy.sources.http import PoliteClient
from paperboy.sources.xml import parse_xml
from paperboy.store import ingest_state
from paperboy.store import papers as store

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title></channel></rss>"""


def external_entity(url: str) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE feed [<!ENTITY xxe SYSTEM "{url}">]>
<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/abs/2605.01001v1</id>
<title>&xxe;</title></entry></feed>""".encode()


def external_dtd(url: str) -> bytes:
    return f"""<?xml version="1.0"?>
<!DOCTYPE OAI-PMH SYSTEM "{url}">
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2026-05-06T00:00:00Z</responseDate>
<ListRecords/></OAI-PMH>""".encode()


def test_billion_laughs_is_refused_without_expanding() -> None:
    with pytest.raises(SourceError, match="unsafe XML"):
        parse_xml(BILLION_LAUGHS, "feed")


def test_external_entity_to_a_local_file_is_refused() -> None:
    with pytest.raises(SourceError, match="unsafe XML"):
        parse_xml(external_entity("file:///etc/passwd"), "feed")


def test_external_entity_is_never_fetched(upstream: Upstream) -> None:
    secret = f"{upstream.url}/secret"
    upstream.route("/secret", None, Reply(200, b"TOP SECRET"))
    upstream.route("/api/query", None, Reply.xml(external_entity(secret)))
    with PoliteClient(retries=0) as client, pytest.raises(SourceError, match="unsafe XML"):
        list(arxiv_api.fetch_by_ids(client, f"{upstream.url}/api/query", ["2605.01001"]))
    assert [r.path for r in upstream.requests] == ["/api/query"]  # /secret was not fetched


def test_external_dtd_is_never_fetched(upstream: Upstream) -> None:
    upstream.route("/evil.dtd", None, Reply(200, b'<!ENTITY x "y">'))
    upstream.route("/oai", None, Reply.xml(external_dtd(f"{upstream.url}/evil.dtd")))
    with PoliteClient(retries=0) as client, pytest.raises(SourceError, match="unsafe XML"):
        list(arxiv_oai.list_records(client, f"{upstream.url}/oai", set_spec="cs"))
    assert [r.path for r in upstream.requests] == ["/oai"]


def test_rss_bomb_through_the_fetcher(upstream: Upstream) -> None:
    upstream.route("/rss/cs.CL", None, Reply.xml(BILLION_LAUGHS))
    with PoliteClient(retries=0) as client, pytest.raises(SourceError, match=r"GET .*/rss/cs\.CL.*unsafe"):
        arxiv_rss.fetch_listing(client, f"{upstream.url}/rss", "cs.CL")


def test_a_bomb_fails_the_ingest_run_and_stores_nothing(upstream: Upstream, sqlite_engine: Engine) -> None:
    upstream.route("/rss/cs.CL", None, Reply.xml(BILLION_LAUGHS))
    now = datetime(2026, 5, 5, 8, tzinfo=UTC)
    with PoliteClient(retries=0) as client, pytest.raises(IngestFailed, match="unsafe XML"):
        jobs.ingest_arxiv(
            sqlite_engine, client, f"{upstream.url}/rss", f"{upstream.url}/api/query", "cs.CL", lambda: now
        )
    with sqlite_engine.connect() as conn:
        assert store.count_papers(conn) == 0
        assert ingest_state.get_cursor(conn, "arxiv:cs.CL") is None
        (run,) = ingest_state.recent_runs(conn)
    assert run.status == "failed"
    assert run.error is not None and "unsafe XML" in run.error


@pytest.mark.parametrize(
    "body",
    [
        b"<rss version='2.0'><channel/></rss>",  # no declaration (as arXiv's RSS fixtures are)
        b"\n  <?xml version='1.0' encoding='UTF-8'?>\n<rss version='2.0'><channel/></rss>",
        b"\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel/></rss>",
    ],
)
def test_harmless_variations_parse(body: bytes) -> None:
    assert parse_xml(body, "feed").tag == "rss"


@pytest.mark.parametrize("body", [b"", b"   ", b"<rss><channel>", b"not xml at all"])
def test_empty_or_truncated_xml_is_a_source_error(body: bytes) -> None:
    with pytest.raises(SourceError, match="feed"):
        parse_xml(body, "feed")
