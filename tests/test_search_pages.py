"""The search page `/papers?q=…` and its feed over a real SQLite file and the real app: results like the seed
page (marked words, snippet around the match), filters, paging, search-as-you-type, and every bad input.

Most tests run without a Searcher (the plain keyword scan); the last ones build the real hybrid Searcher over
tantivy and HNSW indexes in tmp_path with the small HashEmbedder of tests/searchkit.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import NOW, SITE, XSS, A, B, C

from paperboy.models import Paper, Record
from paperboy.store.papers import upsert_records
from paperboy.web.app import create_app

# Papers sharing the word "zeppelin", over several categories and dates (published at noon UTC).
Z_CL, Z_LG, Z_PR, Z_BOTH, Z_DEEP = "2501.00001", "2502.00002", "2503.00003", "2412.00004", "2503.00005"
HAN, RU = "2503.00006", "2503.00007"
DEEP_ABSTRACT = (
    "Opening sentence about nothing in particular. " * 12
    + "Here the zeppelin finally appears, next to <b>bold</b> & <i>odd</i> text. "
    + "Closing words. " * 20
)


CREW = ("Hugo Eckener", "Ferdinand von Zeppelin", "Ludwig Dürr", "Claude Dornier", "Paul Jaray")


def _paper(arxiv_id: str, title: str, abstract: str, day: date, *categories: str) -> Paper:
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=CREW if "airship" in abstract.lower() else ("Li Wei",),
        categories=categories,
        primary_category=categories[0] if categories else None,
        published_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
    )


def extra_papers() -> list[Paper]:
    return [
        _paper(Z_CL, "Zeppelin Language Models", "Airships of words.", date(2025, 1, 10), "cs.CL"),
        _paper(Z_LG, "Learning to Fly a Zeppelin", "Airships, learned.", date(2025, 2, 10), "cs.LG"),
        _paper(Z_PR, "Random Walks of a Zeppelin", "Airships, at random.", date(2025, 3, 1), "math.PR"),
        _paper(Z_BOTH, "Zeppelin Transformers", "Airships that attend.", date(2024, 12, 1), "cs.CL", "cs.LG"),
        _paper(Z_DEEP, "A Paper About Airships", DEEP_ABSTRACT, date(2025, 3, 2), "physics.flu-dyn"),
        _paper(
            HAN,
            "注意力机制的研究",
            "我们研究注意力机制。русский текст и ελληνικά.",
            date(2025, 3, 3),
            "cs.CL",
        ),
        _paper(
            RU, "Amp & Volt", "Signal amp & filter <design> notes, русский язык.", date(2025, 3, 3), "eess.SP"
        ),
    ]


def load(engine: Engine) -> None:
    webhub.load(engine)
    with engine.begin() as conn:
        upsert_records(conn, [Record(p) for p in extra_papers()], NOW)


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    load(sqlite_engine)
    with TestClient(create_app(sqlite_engine, site=SITE, clock=lambda: NOW)) as c:
        yield c


def ok(response: Any) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def card_ids(page: str) -> list[str]:
    return re.findall(r'<h2 class="card-title[^"]*" id="[^"]+"><a href="/papers/([^"]+)">', page)


def cards(page: str) -> dict[str, str]:
    """Each card's HTML by its paper id."""
    out = {}
    for chunk in page.split('<li class="card">')[1:]:
        m = re.search(r'<a href="/papers/([^"]+)">', chunk)
        assert m is not None
        out[m.group(1)] = chunk.split("</li>")[0]
    return out


def abstract_of(card: str) -> str:
    m = re.search(r'<p class="card-abstract math">(.*?)</p>', card, re.S)
    assert m is not None, card
    return m.group(1)


def feed_link(page: str) -> str:
    links = re.findall(
        r'<link rel="alternate" type="application/atom\+xml" title="[^"]*" href="([^"]+)">', page
    )
    assert len(links) == 1, links
    return html.unescape(links[0])


def search(client: TestClient, q: str, **params: Any) -> str:
    return ok(client.get("/papers", params={"q": q, **params}))


# --- results like the seed page ---------------------------------------------------------------------------


def test_results_show_title_snippet_authors_date_upvotes_and_comments(client: TestClient) -> None:
    page = search(client, "sparse attention")
    assert card_ids(page) == [A]
    card = cards(page)[A]
    assert "<mark>Sparse</mark> <mark>Attention</mark> in $O(n \\log n)$ Time" in card
    assert "We show that <mark>attention</mark> runs in $O(n \\log n)$ time" in abstract_of(card)
    shown = '<span class="authors-short">Ada Lovelace, Alan Turing, Grace Hopper et al.</span>'
    assert shown in _unlinked(card)
    assert '<a href="/authors/Ada%20Lovelace">Ada Lovelace</a>' in card  # names link to author pages
    assert "7 authors" in card
    assert '<time datetime="2025-03-01">Mar 1</time>' in card  # the arXiv date, as the seed shows it
    assert '<span class="count">42</span>' in card
    assert '<span>3</span><span class="visually-hidden"> comments</span>' in card
    assert "1 paper matches “sparse attention”" in page
    assert "by keyword" in page


def test_abstracts_are_escaped_before_words_are_marked(client: TestClient) -> None:
    page = search(client, "script alert")
    assert card_ids(page) == [A]
    snippet = abstract_of(cards(page)[A])
    assert XSS not in page and "<b>tags</b>" not in page
    assert "&lt;<mark>script</mark>&gt;<mark>alert</mark>(1)&lt;/<mark>script</mark>&gt;" in snippet
    assert "&lt;b&gt;tags&lt;/b&gt;" in snippet
    # A query word that is also part of an entity never splits it: `&amp;` stays whole.
    amp = search(client, "amp")
    snippet = abstract_of(cards(amp)[RU])
    assert "Signal <mark>amp</mark> &amp; filter &lt;design&gt; notes" in snippet
    assert "&<mark>" not in amp and "<mark>amp</mark>;" not in amp
    assert "<mark>Amp</mark> &amp; Volt" in cards(amp)[RU]


def test_the_snippet_shows_the_abstract_around_the_first_match(client: TestClient) -> None:
    page = search(client, "zeppelin finally")
    snippet = abstract_of(cards(page)[Z_DEEP])
    assert snippet.startswith("…")
    assert "the <mark>zeppelin</mark> <mark>finally</mark> appears" in snippet
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;odd&lt;/i&gt;" in snippet
    assert snippet.count("Opening sentence") < 3  # not the abstract's beginning
    # Stop words are not marked (the keyword index ignores them too) unless the query has nothing else.
    stop = search(client, "the zeppelin")
    assert "the <mark>zeppelin</mark> finally" in abstract_of(cards(stop)[Z_DEEP])
    assert "<mark>the</mark>" not in stop.lower()
    # A match near the start keeps the start.
    near = abstract_of(cards(search(client, "airships"))[Z_CL])
    assert near == "<mark>Airships</mark> of words."


def _unlinked(card: str) -> str:
    """A card without its author links (each name is an <a> to /authors/NAME)."""
    return re.sub(r"</?a\b[^>]*>", "", card)


def test_an_author_found_far_down_the_list_is_shown(client: TestClient) -> None:
    card = cards(search(client, "jaray"))[Z_CL]
    assert (
        '"authors-short">Hugo Eckener, Ferdinand von Zeppelin, Ludwig Dürr, …, Paul <mark>Jaray</mark></span>'
        in _unlinked(card)
    )
    assert '<a href="/authors/Paul%20Jaray">Paul <mark>Jaray</mark></a>' in card
    assert "5 authors" in card
    card = cards(search(client, "dornier"))[Z_CL]
    assert "Ludwig Dürr, Claude <mark>Dornier</mark> et al.</span>" in _unlinked(card)


def test_non_latin_scripts_are_found_and_marked(client: TestClient) -> None:
    han = search(client, "注意力机制")
    assert card_ids(han) == [HAN]
    assert "<mark>注意力机制</mark>的研究" in han
    assert "我们研究<mark>注意力机制</mark>。" in han
    russian = search(client, "русский")
    assert set(card_ids(russian)) == {HAN, RU}
    assert "<mark>русский</mark>" in russian
    greek = search(client, "ελληνικά")
    assert card_ids(greek) == [HAN] and "<mark>ελληνικά</mark>" in greek


# --- filters and paging -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {Z_CL, Z_LG, Z_PR, Z_BOTH, Z_DEEP}),
        ({"category": "cs.CL"}, {Z_CL, Z_BOTH}),
        ({"category": "cs"}, {Z_CL, Z_LG, Z_BOTH}),  # an archive: every cs.*
        ({"category": "cs.LG, math.PR"}, {Z_LG, Z_PR, Z_BOTH}),  # comma-separated
        ({"category": ["cs.CL", "math.PR"]}, {Z_CL, Z_PR, Z_BOTH}),  # repeated
        ({"from": "2025-01-01"}, {Z_CL, Z_LG, Z_PR, Z_DEEP}),
        ({"to": "2025-01-31"}, {Z_CL, Z_BOTH}),
        ({"from": "2025-01-10", "to": "2025-02-10"}, {Z_CL, Z_LG}),  # inclusive at both ends
        ({"from": "2025-02-01", "category": "cs"}, {Z_LG}),
        ({"from": "2026-01-01"}, set()),
        (
            {"from": "", "to": "", "category": ""},
            {Z_CL, Z_LG, Z_PR, Z_BOTH, Z_DEEP},
        ),  # empty fields: no filter
    ],
)
def test_filters(client: TestClient, params: dict[str, Any], expected: set[str]) -> None:
    page = search(client, "zeppelin", **params)
    assert set(card_ids(page)) == expected
    if not expected:
        assert "No papers match “zeppelin” with these filters" in page
        assert 'href="/papers?q=zeppelin">search again without the filters</a>' in page
        assert "5 papers match without them" in page  # what dropping the filters would give


def test_filters_are_plain_get_fields_kept_in_links_and_the_feed(client: TestClient) -> None:
    page = search(client, "zeppelin", **{"from": "2024-06-01", "to": "2025-12-31", "category": "cs.CL,cs.LG"})
    assert '<form class="filters" action="/papers" method="get"' in page
    assert '<input type="hidden" name="q" value="zeppelin">' in page
    assert 'name="from" value="2024-06-01"' in page and 'name="to" value="2025-12-31"' in page
    assert 'name="category" value="cs.CL, cs.LG"' in page
    assert (
        feed_link(page) == "/papers/feed.atom?q=zeppelin&from=2024-06-01&to=2025-12-31&category=cs.CL%2Ccs.LG"
    )
    assert 'href="/papers?q=zeppelin">Clear filters</a>' in page


def test_paging_20_at_a_time_like_the_list_pages(client: TestClient) -> None:
    first = search(client, "filler")
    assert len(card_ids(first)) == 20
    assert "55 papers match “filler”" in first
    assert "Page 1 of 3 · 55 papers" in first
    assert 'href="/papers?q=filler&amp;p=2" rel="next">Next page' in first
    assert 'hx-get="/papers?q=filler&amp;p=2" hx-target="#cards" hx-swap="beforeend"' in first
    second = search(client, "filler", p=2)
    assert '<ol class="cards" id="cards" start="21">' in second
    assert 'href="/papers?q=filler" rel="prev">← Previous page' in second
    third = search(client, "filler", p=3)
    assert len(card_ids(third)) == 15 and "Load more" not in third
    seen = card_ids(first) + card_ids(second) + card_ids(third)
    assert len(set(seen)) == 55
    # Past the last page: a 404 that says so, as on the list pages.
    beyond = client.get("/papers", params={"q": "filler", "p": 4})
    assert beyond.status_code == 404 and "page 4 is past the end of these results (3 pages)" in beyond.text
    filtered = search(client, "filler", **{"from": "2025-02-10", "to": "2025-02-14"})
    assert 'href="/papers?q=filler&amp;from=2025-02-10&amp;to=2025-02-14' not in filtered  # one page: no next
    assert len(card_ids(filtered)) == 15


# --- search as you type, feeds ----------------------------------------------------------------------------


def test_search_as_you_type_through_htmx_and_a_plain_form(client: TestClient) -> None:
    for page in (search(client, "zeppelin"), ok(client.get("/papers")), ok(client.get(f"/papers/{A}"))):
        assert '<form class="search" action="/papers" method="get" role="search">' in page
        m = re.search(r'<input id="search-q" type="search" name="q"[^>]*>', page, re.S)
        assert m is not None
        field = m.group(0)
        assert 'hx-get="/papers"' in field
        assert 'hx-trigger="input changed delay:250ms, search"' in field
        assert 'hx-target="#results"' in field and 'hx-select="#results"' in field
        assert 'hx-swap="outerHTML"' in field and 'hx-push-url="true"' in field
        assert 'hx-include=".search-filter"' in field  # the filters stay while the words change
        assert page.count('<div id="results">') == 1  # the region typing replaces, on every page
    # What htmx asks for is the same page: the results region is in it, cards inside.
    page = ok(client.get("/papers", params={"q": "zeppelin"}, headers={"HX-Request": "true"}))
    region = page.split('<div id="results">', 1)[1].split("</main>", 1)[0]
    assert set(card_ids(region)) == {Z_CL, Z_LG, Z_PR, Z_BOTH, Z_DEEP}
    assert 'name="q" value="zeppelin"' in page
    filters = re.search(r'<form class="filters"[^>]*>', page, re.S)
    assert filters is not None and 'hx-get="/papers"' in filters.group(0)


def test_every_search_page_links_an_atom_feed_of_itself(client: TestClient) -> None:
    page = search(client, "zeppelin", category="cs")
    href = feed_link(page)
    assert href == "/papers/feed.atom?q=zeppelin&category=cs"
    r = client.get(href)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(r.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert [e.id for e in feed.entries] == [f"{SITE.public_url}/papers/{i}" for i in card_ids(page)]
    assert "zeppelin" in feed.feed.title and "in cs" in feed.feed.subtitle
    assert feed.feed.link == f"{SITE.public_url}/papers?q=zeppelin&category=cs"
    awkward = client.get("/papers/feed.atom", params={"q": 'odd "quotes" <b> & 注意力机制'})
    assert awkward.status_code == 200 and feedparser.parse(awkward.content).bozo == 0
    assert client.get("/papers/feed.atom", params={"q": "x", "from": "soon"}).status_code == 400


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["", "   ", "\t\n"])
def test_an_empty_query_is_the_latest_day(client: TestClient, q: str) -> None:
    page = ok(client.get("/papers", params={"q": q}))
    assert card_ids(page) == [A, B, C]
    assert "Wednesday, March 5, 2025" in page


def test_a_10_kb_query_is_cut_and_answered(client: TestClient) -> None:
    q = "sparse " * 1500  # 10.5 kB
    r = client.get("/papers", params={"q": q})
    page = ok(r)
    assert card_ids(page) == [A]
    assert "Only the first 1,000 characters of your query were searched." in page
    assert len(page) < 60_000  # the query is echoed cut, not 10 kB at a time
    feed = client.get(feed_link(page))
    assert feed.status_code == 200 and len(feed.content) < 40_000


@pytest.mark.parametrize("q", ["!!!", "?", "... --- ...", "“”«»", "*", "()"])
def test_punctuation_only_finds_nothing_and_says_why(client: TestClient, q: str) -> None:
    page = search(client, q)
    assert card_ids(page) == []
    assert "Nothing to search for in" in page
    assert "punctuation alone matches nothing" in page
    assert '<details class="filters-box"' not in page and '<p class="subtitle">' not in page


@pytest.mark.parametrize(
    "q",
    [
        '"sparse attention"',
        "sparse*",
        "sparse NEAR attention",
        "NEAR(sparse attention, 3)",
        "title:sparse",
        "(sparse",
        "sparse)",
        "-sparse",
        "sparse -attention",
        "sparse AND (attention OR",
        "'; DROP TABLE papers; --",
        "%_%",
        "\\",
        # "\x00" is refused before any search: a 400 naming q (tests/test_crafted_input.py)
    ],
)
def test_fts_syntax_is_plain_text(client: TestClient, q: str) -> None:
    r = client.get("/papers", params={"q": q})
    assert r.status_code == 200, r.text
    assert '<form class="search"' in r.text


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "2025-13-01"}, "from", "from: &#39;2025-13-01&#39; is not a date in YYYY-MM-DD form"),
        ({"from": "20250301"}, "from", "is not a date in YYYY-MM-DD form"),
        ({"to": "yesterday"}, "to", "to: &#39;yesterday&#39; is not a date in YYYY-MM-DD form"),
        ({"from": "2025-03-05", "to": "2025-03-01"}, "from", "from 2025-03-05 is after to 2025-03-01"),
        ({"category": "cs.XX"}, "category", "category: &#39;cs.XX&#39; is not an arXiv category"),
        ({"category": "cs.CL; DROP"}, "category", "is not an arXiv category"),
        ({"category": ",".join(f"cs.X{n}" for n in range(21))}, "category", "at most 20 categories"),
        ({"p": "0"}, "p", "p: Input should be greater than or equal to 1"),
        ({"p": "two"}, "p", "p: Input should be a valid integer"),
        ({"p": "52"}, "p", "p: page 52 is out of range: search results have at most 51 pages"),
        ({"p": "9" * 40}, "p", ""),
    ],
)
def test_bad_filters_and_pages_are_400_pages_naming_the_field(
    client: TestClient, params: dict[str, str], field: str, message: str
) -> None:
    r = client.get("/papers", params={"q": "zeppelin", **params})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert message in r.text
    assert field in r.text
    assert '<form class="search"' in r.text  # still a full page of the site
    assert 'name="q" value="zeppelin"' in r.text  # with the words typed still in the box


def test_junk_never_reaches_a_500(client: TestClient) -> None:
    junk = ["", "%00", "'; --", "9" * 400, "ü", "-1", "1e9", "[]", "{}", "%", "_", "注意", "cs.", ".cs"]
    for value in junk:
        for name in ("q", "from", "to", "category", "p"):
            params = {"q": "zeppelin", name: value} if name != "q" else {"q": value}
            r = client.get("/papers", params=params)
            assert r.status_code in (200, 400, 404), (name, value, r.text)
            f = client.get("/papers/feed.atom", params=params)
            assert f.status_code in (200, 400), (name, value, f.text)


# --- similar papers on the paper page ---------------------------------------------------------------------


def test_similar_section_is_absent_without_a_searcher(client: TestClient) -> None:
    page = ok(client.get(f"/papers/{A}"))
    assert "Similar papers" not in page and 'class="similar' not in page


# --- with the real hybrid searcher ------------------------------------------------------------------------


@pytest.fixture
def hybrid(sqlite_engine: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    """The app with a real Searcher: tantivy and HNSW indexes in tmp_path, every paper embedded."""
    pytest.importorskip("paperboy.search.embed", reason="the search stack (embed.py) has not landed yet")
    from searchkit import HashEmbedder

    from paperboy.search import indexer
    from paperboy.search.hybrid import Searcher

    load(sqlite_engine)
    emb = HashEmbedder()
    keyword = indexer.open_keyword_index(tmp_path / "keyword", sqlite_engine)
    vector = indexer.open_vector_index(tmp_path / "vectors.hnsw", sqlite_engine, emb.model, emb.dim)
    searcher = Searcher(keyword, vector, emb)
    with TestClient(create_app(sqlite_engine, site=SITE, clock=lambda: NOW, searcher=searcher)) as c:
        yield c, (sqlite_engine, emb, vector)
    keyword.close()


def test_hybrid_search_says_which_modes_answered(hybrid: tuple[TestClient, Any]) -> None:
    client, (engine, emb, vector) = hybrid
    before = search(client, "zeppelin airships")  # no vector yet: keyword only, and a discreet note
    assert "by keyword" in before and "search by meaning joins in once" in before
    assert "Similar papers appear once this paper" in ok(client.get(f"/papers/{Z_CL}"))
    from paperboy.search import indexer

    indexer.embed_pending(engine, emb, vector, lambda: NOW)
    after = search(client, "zeppelin airships")
    assert "by keyword + meaning" in after and "joins in" not in after
    assert Z_CL in card_ids(after) and "<mark>Zeppelin</mark>" in after
    # FTS syntax and other scripts go to tantivy as plain text
    for q in ('"zeppelin', "zeppelin*", "NEAR(zeppelin)", "title:zeppelin", "-zeppelin", "注意力机制"):
        assert client.get("/papers", params={"q": q}).status_code == 200, q
    paper = ok(client.get(f"/papers/{Z_CL}"))
    assert '<h2 id="similar-h">Similar papers</h2>' in paper
    similar = re.findall(r'<li>\s*<a class="math" href="/papers/([^"]+)">', paper)
    assert 1 <= len(similar) <= 8 and Z_CL not in similar
