"""The pages in a real browser: the real app under uvicorn (a thread, a free port), Debian's chromium driven
by Playwright. Checks what only a browser can: KaTeX typesets, htmx appends, nothing scrolls sideways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import browserkit
import pytest
import webhub
from sqlalchemy.engine import Engine
from webhub import NOW, A

from paperboy.web.app import create_app
from paperboy.web.deps import Site

pytestmark = pytest.mark.browser


@pytest.fixture
def base_url(sqlite_engine: Engine) -> Iterator[str]:
    webhub.load(sqlite_engine)
    port = browserkit.free_port()
    site = Site(name="Lab Papers", public_url=f"http://127.0.0.1:{port}", trending_days=7)
    with browserkit.serving(create_app(sqlite_engine, site=site, clock=lambda: NOW), port) as base:
        yield base


def new_page(browser: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport)
    # No outside network in tests: upstream avatars fail at once, as they would on an offline hub.
    context.route("https://**/*", lambda route: route.abort())
    page = context.new_page()
    page.on("dialog", lambda d: pytest.fail(f"a script ran: {d.message}"))
    return page


def no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_click_through_to_a_paper_with_typeset_formulas(browser: Any, base_url: str) -> None:
    page = new_page(browser, browserkit.DESKTOP)
    page.goto(base_url + "/papers")
    page.get_by_role("link", name="Sparse Attention in").first.click()
    page.wait_for_url(f"{base_url}/papers/{A}")
    page.wait_for_selector(".abstract .katex")
    assert page.locator(".abstract .katex").count() == 2  # $O(n \log n)$ and \(n^2\)
    assert page.locator("h1 .katex").count() == 1
    assert "<script>alert(1)</script>" in page.locator(".abstract").inner_text()  # shown as text
    assert page.locator(".avatar img").count() == 0  # the broken avatar gave way to the initial
    assert page.locator(".avatar").first.inner_text() == "A"
    page.context.close()


def test_phone_width_has_no_horizontal_scroll(browser: Any, base_url: str) -> None:
    page = new_page(browser, browserkit.PHONE)
    for path in ("/papers", f"/papers/{A}", "/papers/week/2025-W10", "/papers/date/2025-03-04", "/about"):
        page.goto(base_url + path)
        page.wait_for_load_state("load")
        assert no_sideways_scroll(page), path
    page.context.close()


def test_load_more_appends_the_next_page_in_place(browser: Any, base_url: str) -> None:
    page = new_page(browser, browserkit.DESKTOP)
    page.goto(base_url + "/papers/month/2025-02")
    assert page.locator("#cards > li").count() == 50
    page.get_by_role("link", name="Load more").click()
    # (no wait_for_function: a string evaluated in the page is eval, which the CSP forbids)
    expect = browserkit.expect()
    expect(page.locator("#cards > li")).to_have_count(55)
    assert page.url == base_url + "/papers/month/2025-02"
    assert page.locator("text=Load more").count() == 0
    assert page.locator("#pager").count() == 1
    page.context.close()
