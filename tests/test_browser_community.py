"""A member's whole visit in a real browser (Debian's chromium through Playwright, the app under uvicorn,
arXiv played by a real local HTTP server): sign up, submit a paper, upvote it, comment, sign out, sign in
again, and find everything still there. The page must run under the Content-Security-Policy without one
violation, and work with JavaScript off too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browserkit
import pytest
import webhub
from sqlalchemy.engine import Engine
from upstream import Reply, Upstream
from webhub import NOW, B

from paperboy.community.submit import arxiv_fetcher
from paperboy.web.app import create_app
from paperboy.web.deps import Site

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "arxiv" / "atom_submit.xml"
NEW = "2503.02001"  # the one entry of atom_submit.xml, first published two days before NOW
PASSWORD = "a long enough password"


@pytest.fixture
def hub(sqlite_engine: Engine, upstream: Upstream) -> Iterator[tuple[str, Upstream]]:
    webhub.load(sqlite_engine)
    upstream.route("/api/query", {"id_list": NEW}, Reply.xml(FIXTURE.read_bytes()))
    port = browserkit.free_port()
    fetch = arxiv_fetcher(f"{upstream.url}/api/query", min_interval=0.0, timeout=5.0, retries=0)
    app = create_app(
        sqlite_engine,
        site=Site(name="Lab Papers", public_url=f"http://127.0.0.1:{port}", trending_days=7),
        clock=lambda: NOW,
        fetch_paper=fetch,
    )
    with fetch, browserkit.serving(app, port) as base:
        yield base, upstream


def _page(browser: Any, *, javascript: bool = True) -> tuple[Any, list[str]]:
    context = browser.new_context(viewport=browserkit.DESKTOP, java_script_enabled=javascript)
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


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/papers")


def test_sign_up_submit_upvote_comment_sign_out_and_in_again(browser: Any, hub: tuple[str, Upstream]) -> None:
    expect = browserkit.expect()
    base, arxiv = hub
    page, problems = _page(browser)

    # Sign up: the form signs in at once and goes back to the daily list.
    page.goto(base + "/papers")
    page.get_by_role("link", name="Sign up").click()
    page.fill("#f-username", "ada")
    page.fill("#f-email", "ada@example.org")
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base + "/papers")
    expect(page.locator(".site-nav")).to_contain_text("ada")

    # Submit a paper by its arXiv URL: fetched from "arXiv", featured today, shown at once.
    page.get_by_role("link", name="Submit").click()
    page.fill("#f-arxiv", f"https://arxiv.org/abs/{NEW}v2")
    page.get_by_role("button", name="Submit").last.click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/papers/{NEW}.*"))
    expect(page.locator("h1")).to_contain_text("Member-Submitted Results")
    expect(page.locator(".submitter-lg")).to_contain_text("ada")
    assert len(arxiv.requests_to("/api/query")) == 1

    # Upvote it (htmx swaps the button in place: same URL, pressed, one more).
    vote = page.locator(".paper-head button.votes")
    expect(vote).to_have_attribute("aria-pressed", "false")
    expect(vote.locator(".count")).to_have_text("0")
    vote.click()
    expect(page.locator(".paper-head button.votes")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".paper-head button.votes .count")).to_have_text("1")

    # Comment, with a little Markdown.
    page.fill("#new-body", "Solid **ablations**; see also <script>alert(1)</script>")
    page.get_by_role("button", name="Comment").click()
    expect(page.locator("#comments strong", has_text="ablations")).to_be_visible()
    expect(page.locator("#comments")).to_contain_text("<script>alert(1)</script>")  # text, not a script

    # Sign out: the header offers signing in again, and the page shows no member state.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(base + "/papers")
    expect(page.locator(".site-nav")).to_contain_text("Sign in")

    # Sign in again: everything done is still there.
    _sign_in(page, base, "ada")
    page.goto(f"{base}/papers/{NEW}")
    expect(page.locator(".paper-head button.votes")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".paper-head button.votes .count")).to_have_text("1")
    expect(page.locator("#comments strong", has_text="ablations")).to_be_visible()
    page.goto(f"{base}/papers/date/{NOW.date().isoformat()}")
    card = page.locator(".card", has_text="Member-Submitted Results")
    expect(card).to_contain_text("Submitted by ada")
    expect(card.locator("button.votes .count")).to_have_text("1")
    page.goto(base + "/u/ada")
    expect(page.locator("main")).to_contain_text("Member-Submitted Results")

    # signed in, the header has more links: still no sideways scroll on a phone
    page.set_viewport_size(browserkit.PHONE)
    for path in ("/papers", f"/papers/{NEW}", "/settings", "/admin", "/u/ada"):
        page.goto(base + path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path

    assert problems == []
    page.context.close()


def test_upvoting_works_without_javascript(browser: Any, hub: tuple[str, Upstream]) -> None:
    expect = browserkit.expect()
    base, _ = hub
    page, problems = _page(browser, javascript=False)
    page.goto(base + "/signup")
    page.fill("#f-username", "bob")
    page.fill("#f-email", "bob@example.org")
    page.fill("#f-password", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base + "/papers")
    day = f"{base}/papers/date/2025-03-05"
    page.goto(day)
    card = page.locator(".card", has_text="A Single-Author Note on Benchmarks")
    expect(card.locator("button.votes .count")).to_have_text("5")
    card.locator("button.votes").click()  # a plain POST, then back to the same list
    page.wait_for_url(day)
    card = page.locator(".card", has_text="A Single-Author Note on Benchmarks")
    expect(card.locator("button.votes .count")).to_have_text("6")
    expect(card.locator("button.votes")).to_have_attribute("aria-pressed", "true")
    page.goto(f"{base}/api/papers/{B}")
    assert '"localUpvotes":1' in page.content()
    assert problems == []
    page.context.close()
