"""The server-rendered pages over a real SQLite file and the real app: what each page shows and refuses."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import A_AUTHORS, OLD, XSS, A, B, C

from paperboy.db.schema import featurings, papers
from paperboy.models import Featuring, Paper, Record
from paperboy.store.papers import upsert_records
from paperboy.web.pages import PAGE_SIZE

STATIC = Path(__file__).resolve().parents[1] / "paperboy" / "static"


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with webhub.client(sqlite_engine) as c:
        yield c


@pytest.fixture
def empty_client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with webhub.client(sqlite_engine, loaded=False) as c:
        yield c


def ok(response: Any) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def card_ids(page: str) -> list[str]:
    """The arXiv ids of the cards, in order (each card's title links to /papers/<id>)."""
    return re.findall(r'<h2 class="card-title[^"]*" id="[^"]+"><a href="/papers/([^"]+)">', page)


def feed_links(page: str) -> list[str]:
    return re.findall(
        r'<link rel="alternate" type="application/atom\+xml" title="[^"]*" href="([^"]+)">', page
    )


def link_rel(page: str, rel: str) -> str | None:
    m = re.search(rf'<a class="nav-btn" href="([^"]+)" rel="{rel}"', page)
    return html.unescape(m.group(1)) if m else None


# --- list pages ---------------------------------------------------------------------------------------------


def test_root_redirects_to_papers(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == "/papers"


def test_papers_shows_the_latest_day_most_upvoted_first(client: TestClient) -> None:
    page = ok(client.get("/papers"))
    assert card_ids(page) == [A, B, C]
    assert "Wednesday, March 5, 2025" in page
    assert link_rel(page, "prev") == "/papers/date/2025-03-03"
    assert link_rel(page, "next") is None
    assert '<a href="/papers/date/2025-03-05" aria-current="page">Daily</a>' in page


def test_cards_show_what_the_seed_page_shows(client: TestClient) -> None:
    page = ok(client.get("/papers/date/2025-03-05"))
    cards = page.split('<li class="card">')[1:]
    card_a = next(c for c in cards if f'href="/papers/{A}"' in c)
    card_b = next(c for c in cards if f'href="/papers/{B}"' in c)
    assert "Sparse Attention in $O(n \\log n)$ Time" in card_a  # title (typeset in the browser)
    assert "We show that attention runs in" in card_a  # abstract snippet
    assert "More words follow. More words follow." in card_a
    assert "7 authors" in card_a
    assert '<time datetime="2025-03-01">Mar 1</time>' in card_a  # this year: no year, like the seed
    assert '<span class="count">42</span>' in card_a
    assert '<span>3</span><span class="visually-hidden"> comments</span>' in card_a
    assert "★ 1.2k" in card_a and 'href="https://github.com/example/sparse-attention"' in card_a
    assert "Submitted by Ada Lovelace" in card_a
    assert 'src="https://huggingface.co/avatars/ada.svg"' in card_a
    assert "1 author<" in card_b and "1 authors" not in card_b
    assert "javascript:" not in page


def test_snippet_is_cut_and_escaped(client: TestClient) -> None:
    page = ok(client.get("/papers"))
    assert XSS not in page
    assert "<b>tags</b>" not in page
    assert html.escape(XSS, quote=False) in page
    assert "…" in page  # the long abstract is cut


def test_every_list_page_has_the_search_box_tabs_and_a_feed_link(client: TestClient) -> None:
    expected = {
        "/papers": "/papers/feed.atom",
        "/papers/date/2025-03-05": "/papers/date/2025-03-05/feed.atom",
        "/papers/date/2025-03-01": "/papers/date/2025-03-01/feed.atom",
        "/papers/week/2025-W10": "/papers/week/2025-W10/feed.atom",
        "/papers/month/2025-03": "/papers/month/2025-03/feed.atom",
        "/papers/trending": "/papers/trending/feed.atom",
        "/papers?q=sparse": "/papers/feed.atom?q=sparse",
    }
    for path, feed in expected.items():
        page = ok(client.get(path))
        assert feed_links(page) == [feed], path
        assert '<form class="search" action="/papers" method="get" role="search">' in page, path
        assert "<title>" in page and "Lab Papers</title>" in page, path
        assert '<span class="brand-name">Lab Papers</span>' in page, path
        if "q=" not in path:
            assert ">Daily</a>" in page and ">Weekly</a>" in page, path
            assert ">Monthly</a>" in page and ">Trending</a>" in page, path


def test_day_navigation_goes_to_the_nearest_days_with_papers(client: TestClient) -> None:
    page = ok(client.get("/papers/date/2025-03-03"))
    assert card_ids(page) == [OLD]
    assert link_rel(page, "prev") == "/papers/date/2025-02-28"
    assert link_rel(page, "next") == "/papers/date/2025-03-05"
    # The sort order carries over to the neighbouring days.
    page = ok(client.get("/papers/date/2025-03-03?sort=publishedAt"))
    assert link_rel(page, "next") == "/papers/date/2025-03-05?sort=publishedAt"


def test_navigation_labels_name_the_year_when_it_changes(sqlite_engine: Engine) -> None:
    webhub.load(sqlite_engine)
    december = date(2024, 12, 20)
    paper = Paper("2412.00001", "Last Year", "An abstract.", ("A. Uthor",))
    with sqlite_engine.begin() as conn:
        upsert_records(conn, [Record(paper, Featuring(paper.arxiv_id, december, "huggingface"))], webhub.NOW)
    with webhub.client(sqlite_engine, loaded=False) as c:
        page = ok(c.get("/papers/date/2025-02-03"))
        assert "Previous: </span>Fri, Dec 20, 2024</span>" in page
        assert "Next: </span>Tue, Feb 4</span>" in page
        week = ok(c.get("/papers/week/2025-W06"))
        assert "Previous: </span>Week 5</span>" in week


def test_empty_weekday_and_weekend_say_so_differently(client: TestClient) -> None:
    weekday = ok(client.get("/papers/date/2025-03-04"))
    weekend = ok(client.get("/papers/date/2025-03-01"))
    for page in (weekday, weekend):
        assert card_ids(page) == []
        assert "Nothing was announced on this day" in page
    assert "(holiday, or not synced yet)" in weekday and "weekend" not in weekday.lower()
    assert "(weekend)" in weekend and "Monday to Friday" in weekend
    assert link_rel(weekday, "prev") == "/papers/date/2025-03-03"
    assert link_rel(weekday, "next") == "/papers/date/2025-03-05"
    assert link_rel(weekend, "prev") == "/papers/date/2025-02-28"
    assert link_rel(weekend, "next") == "/papers/date/2025-03-03"
    future = ok(client.get("/papers/date/2025-03-10"))
    assert "Nothing was announced on this day (yet)" in future


def test_week_and_month_pages(client: TestClient) -> None:
    week = ok(client.get("/papers/week/2025-W10"))
    assert card_ids(week) == [A, B, OLD, C]
    assert "Week 10, 2025 · Mar 3 – 9" in week
    assert link_rel(week, "prev") == "/papers/week/2025-W09"
    assert link_rel(week, "next") is None
    assert '<a href="/papers/week/2025-W10" aria-current="page">Weekly</a>' in week
    assert '<a href="/papers/date/2025-03-05">Daily</a>' in week  # tabs follow the period shown
    month = ok(client.get("/papers/month/2025-03"))
    assert card_ids(month) == [A, B, OLD, C]
    assert "March 2025" in month
    assert link_rel(month, "prev") == "/papers/month/2025-02"
    assert '<a href="/papers/month/2025-03" aria-current="page">Monthly</a>' in month


def test_sort_links_and_bad_sort(client: TestClient) -> None:
    page = ok(client.get("/papers/date/2025-03-05?sort=publishedAt"))
    assert card_ids(page) == [C, B, A]  # newest featuring first
    assert '<a href="/papers/date/2025-03-05?sort=publishedAt" aria-current="true">Newest</a>' in page
    r = client.get("/papers/date/2025-03-05?sort=stars")
    assert r.status_code == 400
    assert "sort &#39;stars&#39; is not one of" in r.text


def test_trending_is_hottest_first_over_the_window(client: TestClient) -> None:
    page = ok(client.get("/papers/trending"))
    ids = card_ids(page)
    assert ids[0] == A
    assert set(ids) >= {A, B, C, OLD}
    assert "2502.10000" not in ids  # featured Feb 3: outside the 7-day window ending Mar 5
    assert "Featured Feb 27 – Mar 5, hottest first" in page
    assert '<a href="/papers/trending" aria-current="page">Trending</a>' in page


def test_long_lists_page_with_links_and_htmx_load_more(client: TestClient) -> None:
    first = ok(client.get("/papers/month/2025-02"))
    ids = card_ids(first)
    assert len(ids) == PAGE_SIZE
    assert ids[0] == "2502.10054"  # most upvoted
    assert 'href="/papers/month/2025-02?p=2" rel="next">Next page' in first
    assert 'hx-get="/papers/month/2025-02?p=2" hx-target="#cards" hx-swap="beforeend"' in first
    assert "Page 1 of 2 · 55 papers" in first
    second = ok(client.get("/papers/month/2025-02?p=2"))
    assert card_ids(second) == [f"2502.{10000 + n}" for n in range(4, -1, -1)]
    assert '<ol class="cards" id="cards" start="51">' in second
    assert 'href="/papers/month/2025-02" rel="prev">← Previous page' in second
    assert "Load more" not in second
    beyond = client.get("/papers/month/2025-02?p=3")
    assert beyond.status_code == 404 and "page 3 is past the end of this list (2 pages)" in beyond.text
    assert client.get("/papers/month/2025-02?p=0").status_code == 400
    assert client.get("/papers/month/2025-02?p=two").status_code == 400


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/papers/date/2025-13-01", "date &#39;2025-13-01&#39; is not a valid date in YYYY-MM-DD form"),
        ("/papers/date/yesterday", "is not a valid date in YYYY-MM-DD form"),
        ("/papers/week/2025-W60", "does not exist"),
        ("/papers/week/2025-10", "is not an ISO week in YYYY-Www form"),
        ("/papers/month/2025-13", "is not a month in YYYY-MM form"),
        ("/papers/month/March", "is not a month in YYYY-MM form"),
    ],
)
def test_malformed_periods_are_400_pages_that_say_what_is_wrong(
    client: TestClient, path: str, message: str
) -> None:
    r = client.get(path)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert message in r.text
    assert '<form class="search"' in r.text  # still a full page of the site


# --- search -------------------------------------------------------------------------------------------------


def test_search_lists_matches_and_echoes_the_query(client: TestClient) -> None:
    page = ok(client.get("/papers", params={"q": "sparse attention"}))
    assert card_ids(page) == [A]
    assert 'name="q" value="sparse attention"' in page
    assert "1 paper matches “sparse attention”" in page
    nothing = ok(client.get("/papers", params={"q": "zebra finch"}))
    assert card_ids(nothing) == [] and "No papers match “zebra finch”" in nothing


def test_search_query_is_escaped(client: TestClient) -> None:
    page = ok(client.get("/papers", params={"q": '"><script>alert(1)</script>'}))
    assert "<script>alert(1)</script>" not in page
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page


def test_search_by_arxiv_id_finds_the_paper(client: TestClient) -> None:
    page = ok(client.get("/papers", params={"q": f"https://arxiv.org/abs/{A}v2"}))
    assert card_ids(page)[0] == A


# --- paper page ---------------------------------------------------------------------------------------------


def test_paper_page_shows_everything_we_know(client: TestClient) -> None:
    page = ok(client.get(f"/papers/{A}"))
    assert '<h1 id="paper-title" class="math">Sparse Attention in $O(n \\log n)$ Time</h1>' in page
    for name in A_AUTHORS:  # each links to its author page (tests/test_authors.py)
        assert f'title="Papers by {name}">{name}</a></li>' in page
    assert "$O(n \\log n)$" in page and "\\(n^2\\)" in page  # left for KaTeX to typeset
    assert "/static/vendor/katex-0.19.1/katex.min.js" in page
    assert "/static/vendor/katex-0.19.1/contrib/auto-render.min.js" in page
    assert 'Published <time datetime="2025-03-01">Mar 1, 2025</time>' in page
    assert 'Updated <time datetime="2025-03-04">Mar 4, 2025</time>' in page
    assert '<span class="version">v2</span>' in page
    assert '<span class="tag tag-primary" title="Primary category">cs.LG</span>' in page
    assert '<span class="tag">cs.AI</span>' in page and '<span class="tag">stat.ML</span>' in page
    assert "12 pages, 3 figures" in page
    assert "J. Sparse Res. 1 (2025) 1-12" in page
    assert 'href="https://doi.org/10.1234/sparse.2025"' in page
    assert 'href="http://creativecommons.org/licenses/by/4.0/"' in page
    assert f'href="https://arxiv.org/abs/{A}"' in page
    assert f'href="https://arxiv.org/pdf/{A}"' in page and "PDF on arXiv" in page
    assert 'href="https://github.com/example/sparse-attention"' in page and "example/sparse-attention" in page
    assert "★ 1.2k" in page
    assert 'href="https://sparse.example.org"' in page and "Project page" in page
    assert '<span class="count">42</span>' in page
    assert "Submitted by <strong>Ada Lovelace</strong>" in page
    assert 'src="https://huggingface.co/avatars/ada.svg"' in page
    assert "Sparse keys make attention near-linear." in page
    assert '<a href="/papers?q=sparse%20attention">sparse attention</a>' in page
    assert 'href="/papers/date/2025-03-05"' in page and "Wednesday, March 5, 2025" in page
    assert "3 comments" in page
    assert "withdrawn" not in page.lower()


def test_paper_page_escapes_markup_in_the_abstract(client: TestClient) -> None:
    page = ok(client.get(f"/papers/{A}"))
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;tags&lt;/b&gt;" in page


def test_paper_page_never_links_to_non_http_urls(client: TestClient) -> None:
    page = ok(client.get(f"/papers/{B}"))
    assert "javascript:" not in page
    assert "1 author" not in page  # the paper page lists names, not a count
    assert 'title="Papers by Solo Author">Solo Author</a></li>' in page


def test_old_style_id_and_withdrawn_banner(client: TestClient) -> None:
    page = ok(client.get(f"/papers/{OLD}"))
    assert "An Old-Style Identifier from 1999" in page
    assert "This paper has been withdrawn." in page
    assert "This paper has been withdrawn by the author." in page
    assert f'href="https://arxiv.org/abs/{OLD}"' in page


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (f"/papers/{A}v2", f"/papers/{A}"),
        (f"/papers/{A}v1", f"/papers/{A}"),
        (f"/papers/{OLD}v3", f"/papers/{OLD}"),
        (f"/papers/arXiv:{A}", f"/papers/{A}"),
        (f"/papers/https://arxiv.org/abs/{A}v2", f"/papers/{A}"),
        (f"/papers/https://arxiv.org/pdf/{A}.pdf", f"/papers/{A}"),
        ("/papers/", "/papers"),
    ],
)
def test_versioned_ids_and_urls_redirect_to_the_canonical_page(
    client: TestClient, path: str, target: str
) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 301
    assert r.headers["location"] == target


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/papers/2501.99999", "paper 2501.99999 is not in this hub"),
        ("/papers/hep-th/0000001", "paper hep-th/0000001 is not in this hub"),
        ("/papers/not-a-paper", "is not an arXiv id"),
    ],
)
def test_unknown_paper_is_a_404_page(client: TestClient, path: str, message: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert message in r.text
    assert "Not found" in r.text


def test_unknown_path_outside_papers_is_a_404_page(client: TestClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404 and "nothing at /nowhere" in r.text


# --- about, assets, safety ----------------------------------------------------------------------------------


def test_about_page_credits_arxiv_and_names_the_sources(client: TestClient) -> None:
    page = ok(client.get("/about"))
    assert "Thank you to arXiv for use of its open access interoperability." in page
    assert "Hugging Face Daily Papers" in page
    assert "About Lab Papers" in page
    brand = re.search(r'<a class="brand"[^>]*>.*?</a>', page, re.S)
    assert brand is not None and "arxiv" not in brand.group(0).lower()


def test_vendored_assets_are_served_locally(client: TestClient) -> None:
    page = ok(client.get("/papers"))
    scripts = re.findall(r'<script defer src="([^"]+)"></script>', page)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)">', page)
    assert scripts and styles
    for src in scripts + styles:
        assert src.startswith("/static/"), src
        assert client.get(src).status_code == 200, src
    css = client.get("/static/vendor/katex-0.19.1/katex.min.css").text
    fonts = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    assert len(fonts) > 10
    for font in fonts:
        assert (STATIC / "vendor" / "katex-0.19.1" / font).is_file(), font
    assert (STATIC / "vendor" / "katex-0.19.1" / "LICENSE").is_file()
    assert (STATIC / "vendor" / "htmx-2.0.11.LICENSE").is_file()


def test_pages_never_change_the_database(sqlite_engine: Engine) -> None:
    def snapshot() -> list[object]:
        with sqlite_engine.connect() as conn:
            return [conn.execute(sa.select(t)).all() for t in (papers, featurings)]

    with webhub.client(sqlite_engine) as c:
        before = snapshot()
        for path in (
            "/papers",
            "/papers?q=sparse",
            "/papers/date/2025-03-04",
            "/papers/week/2025-W10",
            "/papers/month/2025-02?p=2",
            "/papers/trending",
            f"/papers/{A}",
            f"/papers/{A}v2",
            "/papers/feed.atom",
            "/about",
        ):
            assert c.get(path).status_code in (200, 301), path
        assert snapshot() == before


def test_an_empty_hub_says_how_to_fill_it(empty_client: TestClient) -> None:
    page = ok(empty_client.get("/papers"))
    assert "No papers yet" in page and "paperboy ingest" in page
    assert feed_links(page) == ["/papers/feed.atom"]
    trending = ok(empty_client.get("/papers/trending"))
    assert card_ids(trending) == []
    day = ok(empty_client.get("/papers/date/2025-03-04"))
    assert "Nothing was announced on this day" in day
    assert link_rel(day, "prev") is None and link_rel(day, "next") is None
