"""The Atom feeds: well-formed (feedparser, bozo == 0), absolute links, and the same papers as their page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
import pytest
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import A_AUTHORS, OLD, SITE, A, B, C

from paperboy.models import Paper, Record
from paperboy.store.papers import upsert_records
from paperboy.web.feeds import FEED_LIMIT

BASE = SITE.public_url

# page path -> its feed path
FEEDS = {
    "/papers": "/papers/feed.atom",
    "/papers/date/2025-03-05": "/papers/date/2025-03-05/feed.atom",
    "/papers/date/2025-03-04": "/papers/date/2025-03-04/feed.atom",
    "/papers/week/2025-W10": "/papers/week/2025-W10/feed.atom",
    "/papers/month/2025-03": "/papers/month/2025-03/feed.atom",
    "/papers/month/2025-02": "/papers/month/2025-02/feed.atom",
    "/papers/trending": "/papers/trending/feed.atom",
    "/papers?q=sparse": "/papers/feed.atom?q=sparse",
}


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with webhub.client(sqlite_engine) as c:
        yield c


def parse(client: TestClient, path: str) -> Any:
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(r.content)
    assert feed.bozo == 0, (path, feed.get("bozo_exception"))
    assert feed.version == "atom10"
    return feed


def card_ids(page: str) -> list[str]:
    return re.findall(r'<h2 class="card-title[^"]*" id="[^"]+"><a href="/papers/([^"]+)">', page)


@pytest.mark.parametrize(("page_path", "feed_path"), FEEDS.items())
def test_every_feed_is_valid_atom_with_the_pages_papers(
    client: TestClient, page_path: str, feed_path: str
) -> None:
    feed = parse(client, feed_path)
    page = client.get(page_path).text
    assert f'href="{feed_path}"' in page  # the page advertises this feed
    # The feed holds the page's cards in the page's order (and, on long lists, the next pages' too).
    ids = [e.id for e in feed.entries]
    assert ids[: len(card_ids(page))] == [f"{BASE}/papers/{i}" for i in card_ids(page)]
    assert len(ids) <= FEED_LIMIT and len(set(ids)) == len(ids)
    assert feed.feed.id == BASE + feed_path
    assert feed.feed.updated_parsed is not None
    assert feed.feed.author == "Lab Papers"
    assert feed.feed.title.endswith("· Lab Papers")
    links = {link.rel: link.href for link in feed.feed.links}
    assert links["self"] == BASE + feed_path
    assert links["alternate"] == BASE + page_path
    for entry in feed.entries:
        assert entry.title and entry.summary
        assert entry.published_parsed is not None and entry.updated_parsed is not None
        assert entry.updated_parsed >= entry.published_parsed
        assert entry.link == entry.id  # our paper page, absolute
        assert entry.link.startswith(BASE + "/papers/")


def test_entry_carries_title_authors_abstract_dates_and_links(client: TestClient) -> None:
    feed = parse(client, "/papers/date/2025-03-05/feed.atom")
    assert [e.id.rsplit("/papers/", 1)[1] for e in feed.entries] == [A, B, C]
    entry = feed.entries[0]
    assert entry.title == "Sparse Attention in $O(n \\log n)$ Time"
    assert [a.name for a in entry.authors] == list(A_AUTHORS)
    assert entry.summary == webhub.A_ABSTRACT.strip()
    assert "<script>alert(1)</script>" in entry.summary  # as text: escaped in the XML, intact once parsed
    assert entry.published == "2025-03-05T08:00:00Z"  # when it was featured
    assert entry.updated == "2025-03-05T08:00:00Z"
    related = [link.href for link in entry.links if link.rel == "related"]
    assert related == [f"https://arxiv.org/abs/{A}"]
    assert [t.term for t in entry.tags] == ["cs.LG", "cs.AI", "stat.ML"]
    assert feed.feed.updated == "2025-03-05T10:00:00Z"  # the newest entry


def test_a_long_list_feed_goes_past_the_first_page(client: TestClient) -> None:
    feed = parse(client, "/papers/month/2025-02/feed.atom")
    assert len(feed.entries) == webhub.MANY  # all 55, most upvoted first (the page shows 50 at a time)
    assert feed.entries[0].title == "Filler Paper Number 54"


def test_markup_in_the_feed_is_escaped(client: TestClient) -> None:
    body = client.get("/papers/date/2025-03-05/feed.atom").text
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_old_style_ids_and_search_feeds(client: TestClient) -> None:
    feed = parse(client, "/papers/date/2025-03-03/feed.atom")
    assert [e.id for e in feed.entries] == [f"{BASE}/papers/{OLD}"]
    search = parse(client, "/papers/feed.atom?q=sparse+attention")
    assert [e.id for e in search.entries] == [f"{BASE}/papers/{A}"]
    assert "sparse attention" in search.feed.title


def test_feed_paths_are_not_taken_for_paper_ids(client: TestClient) -> None:
    # /papers/{arxiv_id:path} is registered after the feeds: these never reach the paper page.
    for path in FEEDS.values():
        assert client.get(path).headers["content-type"].startswith("application/atom+xml"), path


def test_malformed_feed_periods_are_400(client: TestClient) -> None:
    assert client.get("/papers/date/2025-02-30/feed.atom").status_code == 400
    assert client.get("/papers/week/2025-W99/feed.atom").status_code == 400
    assert client.get("/papers/month/2025-00/feed.atom").status_code == 400
    assert client.get("/papers/date/2025-03-05/feed.atom?sort=stars").status_code == 400


def test_characters_xml_cannot_carry_are_dropped(sqlite_engine: Engine) -> None:
    with webhub.client(sqlite_engine) as c:
        odd = Paper(
            "2503.09999", "Form\x0cfeed in a title", "Control \x1b characters\x0b here.", ("A. B\x07",)
        )
        with sqlite_engine.begin() as conn:
            upsert_records(conn, [Record(odd)], datetime(2025, 3, 6, tzinfo=UTC))
        feed = parse(c, "/papers/feed.atom?q=control+characters")
        [entry] = feed.entries
        assert entry.title == "Formfeed in a title"
        assert entry.summary == "Control  characters here."
        assert [a.name for a in entry.authors] == ["A. B"]


def test_empty_hub_feeds_are_still_valid(sqlite_engine: Engine) -> None:
    with webhub.client(sqlite_engine, loaded=False) as c:
        for path in ("/papers/feed.atom", "/papers/trending/feed.atom", "/papers/date/2025-03-04/feed.atom"):
            feed = parse(c, path)
            assert feed.entries == []
