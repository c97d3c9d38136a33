"""A member building their own feed in a real browser (Debian's chromium through Playwright, the app under
uvicorn): sign up, upvote three papers, open "For you" and read why each card is there, mark one "Not
interested" (htmx swaps the card for a line with Undo; after a reload the paper is gone), follow an author,
save a paper to a collection, open the collection, export it as BibTeX (parsed back by bibtexparser), and
find the author on /following. "Not interested" works with JavaScript off too (a plain form post, then back
to the feed). Every page must run under the Content-Security-Policy without one violation.

The hub holds three clusters of papers with vectors made here (16 dimensions: "KV Cache", "Robot Grasping",
"Protein Folding"), written to the embeddings table of a real vector index's model, as tests/test_for_you.py
does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import bibtexparser
import browserkit
import members
import numpy as np
import pytest
from sqlalchemy.engine import Engine

from paperboy.models import Featuring, Paper, Record
from paperboy.search.hybrid import Searcher
from paperboy.search.vector import VectorIndex
from paperboy.store import embeddings as store_embeddings
from paperboy.store.papers import upsert_records
from paperboy.web.app import create_app
from paperboy.web.deps import Site
from paperboy.web.security import RateLimits

pytestmark = pytest.mark.browser

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODEL = "test/clusters-16"
DIM = 16
TOPICS = ("KV Cache", "Robot Grasping", "Protein Folding")
PER_TOPIC = 10
FOLLOWED = "Mira Okafor"  # an author of every third robot-grasping paper
PASSWORD = "a long enough password"


def _pid(topic: int, n: int) -> str:
    return f"2611.{topic + 1}{n:04d}"


def _title(topic: int, n: int) -> str:
    return f"{TOPICS[topic]} study number {n}"


def _load(engine: Engine) -> None:
    """30 papers of the last ten days, featured on their day, each with a unit vector near its topic's axis;
    the protein papers carry the upvotes (what trending shows a member with no history)."""
    rng = np.random.default_rng(14)
    records: list[Record] = []
    rows: list[tuple[str, bytes, str]] = []
    for t, topic in enumerate(TOPICS):
        for n in range(PER_TOPIC):
            pid = _pid(t, n)
            day = date(2026, 11, 19) - timedelta(days=n)
            first = FOLLOWED if t == 1 and n % 3 == 0 else f"{topic.split()[0]} Author{n}"
            paper = Paper(
                arxiv_id=pid,
                title=_title(t, n),
                abstract=f"We study {topic.lower()} in setting {n}, with ablations.",
                authors=(first, f"Other {topic.split()[0]}{n}"),
                categories=("cs.LG",),
                primary_category="cs.LG",
                published_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
            )
            upvotes = 40 + n if t == 2 else n
            featuring = Featuring(pid, day, "huggingface", paper.published_at, None, upvotes)
            records.append(Record(paper, featuring))
            v = np.eye(DIM, dtype=np.float32)[t] * 3.0 + rng.normal(0, 0.6, DIM).astype(np.float32)
            rows.append((pid, (v / np.linalg.norm(v)).astype("<f4").tobytes(), "h"))
    with engine.begin() as conn:
        upsert_records(conn, records, NOW)
        store_embeddings.save(conn, MODEL, DIM, rows, NOW)


@pytest.fixture
def hub(sqlite_engine: Engine, tmp_path: Path) -> Iterator[str]:
    _load(sqlite_engine)
    index = VectorIndex.create(tmp_path / "vectors.usearch", DIM, MODEL)
    port = browserkit.free_port()
    app = create_app(
        sqlite_engine,
        site=Site(name="Lab Papers", public_url=f"http://127.0.0.1:{port}", trending_days=7),
        clock=lambda: NOW,
        hasher=members.FAST_HASHER,
        rate_limits=RateLimits(signup="1000 per minute", vote="1000 per minute"),
        searcher=Searcher(None, index),
        secret_key=b"k" * 32,
    )
    with browserkit.serving(app, port) as base:
        yield base


def _page(browser: Any, *, javascript: bool = True) -> tuple[Any, list[str]]:
    context = browser.new_context(
        viewport=browserkit.DESKTOP, java_script_enabled=javascript, accept_downloads=True
    )
    context.route("https://**/*", lambda route: route.abort())
    page = context.new_page()
    problems: list[str] = []
    page.on("dialog", lambda d: problems.append(f"a script ran: {d.message}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and ("Content Security Policy" in m.text or "Refused" in m.text)
            else None
        ),
    )
    return page, problems


def _sign_up(page: Any, base: str, username: str) -> None:
    page.goto(base + "/signup")
    page.fill("#f-username", username)
    page.fill("#f-email", f"{username}@example.org")
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base + "/papers")


def _card(page: Any, title: str) -> Any:
    title_is = page.locator(".card-title", has_text=re.compile(f"^{re.escape(title)}$"))
    return page.locator("#cards > li.card", has=title_is)


def _bib_titles(text: str) -> list[str]:
    """The titles of a BibTeX file as bibtexparser reads them, without the braces that keep capitals."""
    library = bibtexparser.parse_string(text)
    assert not library.failed_blocks
    return [e.fields_dict["title"].value.replace("{", "").replace("}", "") for e in library.entries]


def _ids_of(title: str) -> tuple[int, int]:
    topic, n = title.rsplit(" study number ", 1)
    return TOPICS.index(topic), int(n)


def _titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#cards > li .card-title").all_inner_texts()]


def test_a_member_builds_a_feed_follows_saves_and_exports(browser: Any, hub: str) -> None:
    expect = browserkit.expect()
    base = hub
    page, problems = _page(browser)
    _sign_up(page, base, "ada")

    # Upvote three kv-cache papers, each on its page (htmx swaps the button in place).
    for n in (1, 2, 3):
        page.goto(f"{base}/papers/{_pid(0, n)}")
        page.locator(".paper-head button.votes").click()
        expect(page.locator(".paper-head button.votes")).to_have_attribute("aria-pressed", "true")

    # "For you" from the header: kv-cache papers first, each saying which upvoted paper it is like.
    page.get_by_role("link", name="For you").click()
    page.wait_for_url(base + "/papers/for-you")
    expect(page.locator("h1")).to_have_text("For you")
    expect(page.locator("main")).not_to_contain_text("Make this feed yours")
    titles = _titles(page)
    assert titles[:4] and all(t.startswith("KV Cache") for t in titles[:4]), titles
    assert not {_title(0, n) for n in (1, 2, 3)} & set(titles)  # what was upvoted is not suggested again
    first = page.locator("#cards > li.card").first
    expect(first.locator(".card-why")).to_contain_text(re.compile(r"KV Cache study number [123]"))

    # Not interested, with htmx: the card becomes a line with Undo, in place; after a reload it is gone.
    hidden = titles[0]
    _card(page, hidden).get_by_role("button", name="Not interested").click()
    line = page.locator("#cards > li.card-hidden")
    expect(line).to_have_count(1)
    expect(line.get_by_role("button", name="Undo")).to_be_visible()
    assert page.url == base + "/papers/for-you"  # no navigation: the swap happened in place
    # "Less like this" on another card, then Undo: the card comes back in place.
    less = _titles(page)[1]
    _card(page, less).get_by_role("button", name="Less like this").click()
    expect(page.locator("#cards > li.card-hidden")).to_have_count(2)
    expect(_card(page, less)).to_have_count(0)
    page.locator("#cards > li.card-hidden", has_text="fewer papers like this").get_by_role(
        "button", name="Undo"
    ).click()
    expect(_card(page, less).get_by_role("button", name="Not interested")).to_be_visible()
    page.reload()
    expect(page.locator("#cards > li.card").first).to_be_visible()
    assert hidden not in _titles(page) and less in _titles(page)
    expect(page.locator("#cards > li.card-hidden")).to_have_count(0)

    # The feed's own BibTeX export holds what the page shows, in its order.
    href = page.locator('.export-links a[data-format="bib"]').get_attribute("href")
    feed_bib = page.request.get(urljoin(page.url, href))
    assert feed_bib.ok
    assert _bib_titles(feed_bib.text())[:3] == _titles(page)[:3]

    # Follow an author from their page (htmx swaps the button); their papers then rank first, saying so.
    page.goto(f"{base}/authors/{quote(FOLLOWED)}")
    expect(page.locator("h1")).to_have_text(FOLLOWED)
    page.locator("#follow").get_by_role("button", name=re.compile("^Follow")).click()
    expect(page.locator("#follow button.btn-follow")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#follow button.btn-follow")).to_contain_text("Following")
    page.goto(base + "/papers/for-you")
    expect(page.locator("#cards .card-why", has_text=FOLLOWED).first).to_be_visible()

    # Save the feed's second card: one click puts it in the Reading list, the button says Saved.
    saved = _titles(page)[1]
    card = _card(page, saved)
    card.locator(".save").get_by_role("button", name="Save").click()
    expect(card.locator(".save .saved")).to_contain_text("Saved")

    # "Save to…" on another card: the menu opens in place, a new collection is made and ticked in one go.
    other = _titles(page)[2]
    card = _card(page, other)
    card.locator(".save-more").click()
    menu = card.locator(".save-menu")
    menu.get_by_label("New collection").fill("Long context")
    menu.get_by_role("button", name="Done").click()
    expect(card.locator(".save .saved")).to_contain_text("Saved")
    expect(card.locator(".save-menu")).to_have_count(0)

    # Open the collection from "Collections" in the header, and export it as BibTeX (a real download).
    page.get_by_role("link", name="Collections", exact=True).click()
    page.wait_for_url(base + "/collections")
    expect(page.locator(".collection-list a.collection-name")).to_have_count(2)
    page.get_by_role("link", name="Long context").click()
    expect(page.locator("#cards .card-title")).to_have_text([other])
    page.go_back()
    page.get_by_role("link", name="Reading list").click()
    expect(page.locator("#cards .card-title")).to_have_text([saved])
    collection = page.url
    bib_link = page.locator(".export-links a", has_text="BibTeX")
    with page.expect_download() as download:
        bib_link.click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename.endswith(".bib")
    assert text.lstrip().startswith("@")
    assert _bib_titles(text) == [saved]
    assert _pid(*_ids_of(saved)) in text  # the arXiv id travels with it

    # /following lists the author, with their newest papers below.
    page.get_by_role("link", name="Following", exact=True).click()
    page.wait_for_url(base + "/following")
    expect(page.locator("#following-author-h + .follow-rows")).to_contain_text(FOLLOWED)
    expect(page.locator(".following-papers .card-title").first).to_contain_text("Robot Grasping")

    # and on a phone, none of these pages scrolls sideways
    page.set_viewport_size(browserkit.PHONE)
    for url in (base + "/papers/for-you", base + "/following", base + "/collections", collection):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), url

    assert problems == []
    page.context.close()


def test_not_interested_works_without_javascript(browser: Any, hub: str) -> None:
    expect = browserkit.expect()
    base = hub
    page, problems = _page(browser, javascript=False)
    _sign_up(page, base, "bob")
    page.goto(f"{base}/papers/{_pid(1, 2)}")
    page.locator(".paper-head button.votes").click()  # a plain POST, then back to the paper
    page.wait_for_url(re.compile(rf"{re.escape(base)}/papers/{re.escape(_pid(1, 2))}.*"))
    expect(page.locator(".paper-head button.votes")).to_have_attribute("aria-pressed", "true")

    page.goto(base + "/papers/for-you")
    titles = _titles(page)
    assert titles[0].startswith("Robot Grasping"), titles
    _card(page, titles[0]).get_by_role("button", name="Not interested").click()
    page.wait_for_url(base + "/papers/for-you")  # posted, then redirected back to the feed
    after = _titles(page)
    assert titles[0] not in after
    assert after[0] == titles[1]  # the rest of the ranking is unchanged
    assert problems == []
    page.context.close()
