"""Citations over HTTP: `/papers/{id}.bib|.ris|.csl.json`, `?format=` on the list, search and author pages
(exactly the page's papers, paging respected), the pages' Export / Cite links, and the Highwire
`citation_*` tags of paper pages checked as Zotero's "Embedded Metadata" translator reads them.

The translator (zotero/translators, "Embedded Metadata.js") maps `citation_title`,
`citation_publication_date` / `citation_date`, `citation_doi`, `citation_journal_title`, `citation_abstract`
and more from `html>head>meta[name$=…]` (the first of each); takes every `citation_author` in order (one
per tag; a single tag is split at `;`, and at a comma when both halves hold a space) and splits each name at
its comma into last and first name; falls back to `citation_online_date` for the date; attaches
`citation_pdf_url` as the PDF; takes the URL from `citation_abstract_html_url`.
`citation_technical_report_institution` would turn the item into a report.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import bibtexparser
import jsonschema_rs
import rispy
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.models import Paper, Record
from paperboy.store.papers import upsert_records

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "csl" / "csl-data.json").read_text())
CSL = jsonschema_rs.validator_for(SCHEMA)

# What the translator reads (HIGHWIRE_MAPPINGS and the tags it looks up by name), and what we add for Scholar.
ZOTERO_READS = {
    "citation_title",
    "citation_publication_date",
    "citation_date",
    "citation_journal_title",
    "citation_doi",
    "citation_abstract",
    "citation_author",
    "citation_pdf_url",
    "citation_abstract_html_url",
    "citation_online_date",
}
SCHOLAR_ONLY = {"citation_arxiv_id"}


class _Meta(HTMLParser):
    """The `<meta name content>` tags of a page, noting whether each sits in `<head>` (where Zotero's
    `html>head>meta` selector looks), and the page's links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_head = False
        self.meta: list[tuple[str, str, bool]] = []
        self.links: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "head":
            self.in_head = True
        elif tag == "body":
            self.in_head = False
        elif tag == "meta" and "name" in a:
            self.meta.append((a["name"], a.get("content", ""), self.in_head))
        elif tag == "a" and "href" in a:
            self.links.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False


def parsed(html: str) -> _Meta:
    p = _Meta()
    p.feed(html)
    p.close()
    return p


def card_ids(html: str) -> list[str]:
    """The papers a list page shows, in order, from its cards' title links."""
    return re.findall(r'<h2 class="card-title[^"]*" id="t-\d+"><a href="/papers/([^"]+)"', html)


def bib_ids(text: str) -> list[str]:
    lib = bibtexparser.parse_string(text)
    assert not lib.failed_blocks
    return [e["eprint"] for e in lib.entries]


def download(c: TestClient, url: str, media_type: str) -> str:
    r = c.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    return r.text


def test_one_paper_as_bib_ris_and_csl_json(engine: Engine) -> None:
    c = webhub.client(engine)
    bib = download(c, f"/papers/{webhub.A}.bib", "application/x-bibtex")
    (entry,) = bibtexparser.parse_string(bib).entries
    assert entry.entry_type == "article" and entry.key == "lovelace2025sparse"
    assert entry["journal"] == "J. Sparse Res. 1 (2025) 1-12" and entry["doi"] == "10.1234/sparse.2025"
    assert entry["title"] == "Sparse Attention in {$O(n \\log n)$} Time"
    assert c.get(f"/papers/{webhub.A}.bib").headers["content-disposition"] == (
        "attachment; filename=\"2503.01234.bib\"; filename*=UTF-8''2503.01234.bib"
    )
    (record,) = rispy.loads(download(c, f"/papers/{webhub.A}.ris", "application/x-research-info-systems"))
    assert record["title"] == "Sparse Attention in $O(n \\log n)$ Time"
    assert record["authors"][:2] == ["Lovelace, Ada", "Turing, Alan"] and len(record["authors"]) == 7
    data = json.loads(download(c, f"/papers/{webhub.A}.csl.json", "application/vnd.citationstyles.csl+json"))
    CSL.validate(data)
    assert data[0]["number"] == f"arXiv:{webhub.A}" and data[0]["DOI"] == "10.1234/sparse.2025"
    old = download(c, f"/papers/{webhub.OLD}.bib", "application/x-bibtex")
    assert bib_ids(old) == [webhub.OLD]
    assert (
        'filename="hep-th-9901001.bib"' in c.get(f"/papers/{webhub.OLD}.bib").headers["content-disposition"]
    )
    moved = c.get(f"/papers/{webhub.A}v2.ris", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == f"/papers/{webhub.A}.ris"
    assert c.get("/papers/2501.99999.bib").status_code == 404


def test_list_pages_export_exactly_the_papers_they_show(sqlite_engine: Engine) -> None:
    c = webhub.client(sqlite_engine)
    for path in ("/papers", "/papers/date/2025-03-05", "/papers/week/2025-W10", "/papers/trending"):
        shown = card_ids(c.get(path).text)
        assert shown, path
        assert bib_ids(download(c, f"{path}?format=bib", "application/x-bibtex")) == shown, path
    # A month of 55 fillers: page 1 holds 50, page 2 the other 5; each export holds its own page.
    month = "/papers/month/2025-02"
    first, second = card_ids(c.get(month).text), card_ids(c.get(f"{month}?p=2").text)
    assert (len(first), len(second)) == (50, 5)
    ris = rispy.loads(download(c, f"{month}?p=2&format=ris", "application/x-research-info-systems"))
    assert [r["accession_number"] for r in ris] == [f"arXiv:{i}" for i in second]
    bib = download(c, f"{month}?format=bib&sort=publishedAt", "application/x-bibtex")
    assert bib_ids(bib) == card_ids(c.get(f"{month}?sort=publishedAt").text)
    keys = [e.key for e in bibtexparser.parse_string(bib).entries]
    assert len(set(keys)) == 50 and keys[0] == "iller2025filler"  # one author, one title word: made unique
    assert (
        'filename="papers-month-2025-02-p2.ris"'
        in c.get(f"{month}?p=2&format=ris").headers["content-disposition"]
    )
    data = json.loads(download(c, "/papers?format=csljson", "application/vnd.citationstyles.csl+json"))
    CSL.validate(data)


def test_search_and_author_pages_export_their_page(sqlite_engine: Engine) -> None:
    c = webhub.client(sqlite_engine)
    shown = card_ids(c.get("/papers?q=filler").text)
    assert len(shown) == 20  # a search page holds 20
    assert bib_ids(download(c, "/papers?q=filler&format=bib", "application/x-bibtex")) == shown
    page2 = card_ids(c.get("/papers?q=filler&p=2").text)
    assert bib_ids(download(c, "/papers?q=filler&p=2&format=bib", "application/x-bibtex")) == page2
    author = "/authors/" + quote("Ada Lovelace")
    data = json.loads(download(c, f"{author}?format=csljson", "application/vnd.citationstyles.csl+json"))
    assert [d["number"] for d in data] == [f"arXiv:{i}" for i in card_ids(c.get(author).text)]
    filler = "/authors/" + quote("F. Iller")
    assert len(bib_ids(download(c, f"{filler}?p=2&format=bib", "application/x-bibtex"))) == 5


def test_an_unknown_format_is_a_400_that_names_the_choices(sqlite_engine: Engine) -> None:
    c = webhub.client(sqlite_engine)
    for url in ("/papers?format=endnote", "/papers/trending?format=pdf", "/papers?q=filler&format=x"):
        r = c.get(url)
        assert r.status_code == 400, url
        assert "bib, ris, csljson" in r.text
    assert c.get("/authors/" + quote("Ada Lovelace") + "?format=docx").status_code == 400


def test_pages_link_to_their_exports_and_the_paper_page_to_cite(sqlite_engine: Engine) -> None:
    c = webhub.client(sqlite_engine)
    for page in ("/papers/month/2025-02?p=2", "/papers?q=filler", "/authors/" + quote("Ada Lovelace")):
        links = [a for a in parsed(c.get(page).text).links if "data-format" in a]
        assert [a["data-format"] for a in links] == ["bib", "ris", "csljson"], page
        for a in links:
            assert "download" in a
            r = c.get(a["href"].replace("&amp;", "&"))
            assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment"), a
        if "p=2" in page:
            assert all("p=2" in a["href"] for a in links)
    html = c.get(f"/papers/{webhub.A}").text
    cite = [a["href"] for a in parsed(html).links if "data-format" in a]
    assert cite == [f"/papers/{webhub.A}.bib", f"/papers/{webhub.A}.ris", f"/papers/{webhub.A}.csl.json"]
    assert "@article{lovelace2025sparse," in html  # the BibTeX to copy


def test_paper_page_meta_tags_are_what_zotero_reads_and_match_the_paper(engine: Engine) -> None:
    c = webhub.client(engine)
    hostile = Paper(
        arxiv_id="2503.07777",
        title='Quotes " and <tags> & ampersands; 50% {braces}',
        abstract="An abstract\nover two lines.",
        authors=("Jan van der Berg", "Martin Luther King Jr.", 'O\'Brien "Bob" Smith', "Plato"),
        published_at=webhub.NOW.replace(day=2),
        updated_at=webhub.NOW.replace(day=4),
        doi="10.5555/q<x>",
    )
    with engine.begin() as conn:
        upsert_records(conn, [Record(hostile)], webhub.NOW)
    for paper, authors in (
        (hostile, ["van der Berg, Jan", "King Jr., Martin Luther", 'Smith, O\'Brien "Bob"', "Plato"]),
        (
            webhub.records()[0].paper,
            [
                *("Lovelace, Ada", "Turing, Alan", "Hopper, Grace", "Dijkstra, Edsger", "Liskov, Barbara"),
                *("Knuth, Donald", "Allen, Frances"),
            ],
        ),
    ):
        page = parsed(c.get(f"/papers/{paper.arxiv_id}").text)
        tags = [(n, v) for n, v, in_head in page.meta if n.startswith("citation_")]
        assert all(in_head for n, _, in_head in page.meta if n.startswith("citation_"))
        names = {n for n, _ in tags}
        assert names <= ZOTERO_READS | SCHOLAR_ONLY
        assert "citation_technical_report_institution" not in names  # would make Zotero save a report
        one = {n: v for n, v in tags if n != "citation_author"}
        assert len(one) == len([t for t in tags if t[0] != "citation_author"])  # each once
        assert one["citation_title"] == paper.title
        got = [v for n, v in tags if n == "citation_author"]
        assert got == authors
        for name in got:  # what processHighwireCreators does with each tag
            assert ";" not in name and name.count(",") <= 1
        assert paper.published_at is not None
        assert one["citation_publication_date"] == paper.published_at.strftime("%Y/%m/%d")
        online = paper.updated_at or paper.published_at
        assert one["citation_online_date"] == online.strftime("%Y/%m/%d")
        assert one["citation_arxiv_id"] == paper.arxiv_id
        assert one["citation_pdf_url"] == f"https://arxiv.org/pdf/{paper.arxiv_id}"
        assert one["citation_abstract_html_url"] == f"https://arxiv.org/abs/{paper.arxiv_id}"
        assert one.get("citation_doi") == paper.doi
        assert one.get("citation_journal_title") == paper.journal_ref
        assert one["citation_abstract"] == " ".join(paper.abstract.split())
