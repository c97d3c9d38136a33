"""Subscribing in a real browser (Debian's chromium through Playwright, the app under uvicorn, a real SMTP
server): the footer form on any page and "Email me new matches" on a search page each send a confirmation
mail whose link opens a page whose button confirms; no CSP violation on the way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import browserkit
import pytest
import sqlalchemy as sa
import webhub
from sqlalchemy.engine import Engine
from test_digest_plan import _Inbox
from test_digest_plan import smtp as smtp  # the fixture
from webhub import NOW

from paperboy.db.schema import subscriptions, topics
from paperboy.digest.send import send_pending
from paperboy.mailer import SmtpMailer
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


def _confirmation_link(engine: Engine, url: str, inbox: _Inbox, address: str) -> str:
    with SmtpMailer(url) as mailer:
        report = send_pending(engine, mailer, lambda: NOW, sender="Lab Papers <papers@example.org>", rate=100)
    assert report.sent >= 1
    (mail,) = [m for m in inbox.messages if m["To"] == address]
    found = re.search(
        r"(http://127\.0\.0\.1:\d+/subscribe/confirm\?t=\S+)", mail.get_body(("plain",)).get_content()
    )
    assert found, "no confirmation link in the mail"
    return found.group(1)


def test_subscribe_from_the_footer_and_from_a_search(
    browser: Any, base_url: str, sqlite_engine: Engine, smtp: tuple[str, _Inbox]
) -> None:
    expect = browserkit.expect()
    url, inbox = smtp
    context = browser.new_context(viewport=browserkit.DESKTOP)
    context.route("https://**/*", lambda route: route.abort())
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "console",
        lambda m: (
            problems.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None
        ),
    )

    page.goto(base_url + "/papers")
    page.fill("#footer-email", "reader@example.org")
    page.locator(".footer-subscribe").get_by_role("button", name="Subscribe").click()
    expect(page.locator("main")).to_contain_text("reader@example.org")
    link = _confirmation_link(sqlite_engine, url, inbox, "reader@example.org")
    page.goto(link)
    with sqlite_engine.connect() as conn:
        assert (
            conn.execute(sa.select(subscriptions.c.status)).scalar_one() == "pending"
        )  # the GET changed nothing
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("main")).to_contain_text("You’re subscribed")
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(subscriptions.c.status)).scalar_one() == "active"

    page.goto(base_url + "/papers?q=sparse+attention")
    page.fill("#save-search-email", "alerts@example.org")
    page.get_by_role("button", name="Email me new matches").click()
    link = _confirmation_link(sqlite_engine, url, inbox, "alerts@example.org")
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    with sqlite_engine.connect() as conn:
        saved = (
            conn.execute(
                sa.select(topics.c.query)
                .join(subscriptions, subscriptions.c.id == topics.c.subscription_id)
                .where(subscriptions.c.email == "alerts@example.org")
            )
            .scalars()
            .all()
        )
    assert saved == ["sparse attention"]
    assert problems == []
    context.close()
