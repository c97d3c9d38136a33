"""The one-click unsubscribe link does one thing (issue 12, point 6), checked on the wire against a real
`paperboy serve` process: it unsubscribes (GET shows a button, POST with RFC 8058's body does it, with no
cookies) and offers to undo that with the same link, and nothing else. Its pages never show the address, the
preferences or a manage link; its token is refused by every route that manages a subscription, and leaves it
as it was. Managing takes the manage link that digest mails carry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from test_mail_wire import Keeper
from test_mail_wire import served as served  # the fixtures
from test_mail_wire import smtp_raw as smtp_raw
from test_subscribe_enumeration import KEY, Browser, db, make_active, manage_path, unsubscribe_path

from paperboy import signing
from paperboy.db.schema import subscriptions, topics

ADA = "ada.lovelace@lab.example"
PREFS = {
    "cadence": "weekly",
    "send_hour": "7",
    "weekly_day": "4",
    "timezone": "Europe/Paris",
    "max_papers": "15",
    "topics": "sparse attention\nKV cache eviction",
    "categories": "cs.CL",
    "authors": "Grace Hopper",
    "exclude": "medical",
}
PRIVATE = (
    ADA,
    "ada.lovelace",
    "sparse attention",
    "KV cache eviction",
    "Grace Hopper",
    "medical",
    "Europe/Paris",
    "/subscription",
    "feed.atom",
    "Rotate",
)
ONE_CLICK = {
    "content": b"List-Unsubscribe=One-Click",
    "headers": {"content-type": "application/x-www-form-urlencoded"},
}


def row(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        found = conn.execute(sa.select(subscriptions).where(subscriptions.c.email == ADA)).mappings().one()
        queries = conn.execute(sa.select(topics.c.query).where(topics.c.subscription_id == found["id"]))
        return {**found, "topics": sorted(queries.scalars())}


def token_of(path: str) -> str:
    return path.split("t=", 1)[1]


def assert_tells_nothing(html: str, unsubscribe_token: str) -> None:
    """No address, no preference, no link to manage; the only signed token on it is the one it came with."""
    for secret in PRIVATE:
        assert secret not in html, secret
    assert set(re.findall(r"t1\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", html)) <= {unsubscribe_token}


@pytest.fixture
def ada(served: tuple[str, Keeper, Path], tmp_path: Path) -> Any:
    """An active subscriber with topics and preferences, and the links its digests carry."""
    base, keeper, log = served
    engine = db(tmp_path)
    b = Browser(base)
    make_active(b, keeper, ADA, log, topic="sparse attention")
    manage = manage_path(engine, ADA)
    saved = b.web.post(manage, data={**PREFS, "csrf_token": b.token()})
    assert saved.status_code == 200 and "Saved." in saved.text
    yield base, engine, b, unsubscribe_path(engine, ADA), manage
    b.close()
    engine.dispose()


def test_the_link_unsubscribes_and_its_pages_show_nothing_else(ada: Any) -> None:
    base, engine, _, unsub, _ = ada
    token = token_of(unsub)
    assert row(engine)["status"] == "active"
    with httpx.Client(base_url=base, timeout=10) as mail_client:  # a mail provider or a scanner: no cookies
        page = mail_client.get(unsub)
        assert page.status_code == 200 and 'name="List-Unsubscribe" value="One-Click"' in page.text
        assert_tells_nothing(page.text, token)
        assert row(engine)["status"] == "active"  # opening the link changes nothing

        done = mail_client.post(unsub, **ONE_CLICK)
        assert done.status_code == 200 and "unsubscribed" in done.text
        assert_tells_nothing(done.text, token)
        assert f'action="/unsubscribe/resubscribe?t={token}"' in done.text  # undo, with the same link
    after = row(engine)
    assert after["status"] == "unsubscribed" and after["unsubscribed_at"] is not None
    assert after["topics"] == ["KV cache eviction", "sparse attention"]  # nothing but the status changed


def test_the_unsubscribe_token_opens_no_manage_route_and_changes_nothing(ada: Any) -> None:
    _, engine, b, unsub, manage = ada
    token = token_of(unsub)
    before = row(engine)
    csrf = b.token()
    attempts = [
        ("GET", "/subscription", {}),
        ("POST", "/subscription", {**PREFS, "cadence": "daily", "authors": "Mallory", "csrf_token": csrf}),
        ("POST", "/subscription/rotate", {"csrf_token": csrf}),
        ("POST", "/subscription/resume", {"csrf_token": csrf}),
        ("GET", "/subscription/feed.atom", {}),
        ("GET", "/api/subscription", {}),
    ]
    for method, path, data in attempts:
        r = b.web.request(method, path, params={"t": token}, data=data or None, follow_redirects=False)
        assert 400 <= r.status_code < 500, (method, path, r.status_code)
        assert ADA not in r.text and "t1." not in r.text.replace(token, ""), (method, path)
    assert row(engine) == before
    # the purpose is inside the signature: the same claims do not verify for anything else
    for purpose in ("manage", "feed", "confirm", ""):
        with pytest.raises(signing.BadToken):
            signing.verify(KEY, purpose, token, None)
    # and a manage token is not an unsubscribe token either
    assert (
        400
        <= b.web.post(f"/unsubscribe?t={token_of(manage)}", content=b"List-Unsubscribe=One-Click").status_code
        < 500
    )
    assert row(engine) == before


def test_resubscribing_from_the_unsubscribed_page_with_the_same_link(ada: Any) -> None:
    base, engine, b, unsub, _ = ada
    token = token_of(unsub)
    before = row(engine)
    with httpx.Client(base_url=base, timeout=10) as mail_client:
        assert mail_client.post(unsub, **ONE_CLICK).status_code == 200
    assert row(engine)["status"] == "unsubscribed"

    page = b.web.get(unsub)  # opening the link again: already unsubscribed, the button subscribes again
    assert page.status_code == 200 and "already unsubscribed" in page.text
    assert_tells_nothing(page.text, token)
    form = re.search(
        r'<form method="post" action="([^"]+)"[^>]*>\s*'
        r'<input type="hidden" name="csrf_token" value="([^"]+)"',
        page.text,
    )
    assert form and form.group(1) == f"/unsubscribe/resubscribe?t={token}"
    # the button is a form like any other: no CSRF token, no resubscribing
    refused = httpx.post(base + form.group(1), data={}, timeout=10)
    assert refused.status_code == 403 and row(engine)["status"] == "unsubscribed"

    back = b.web.post(form.group(1), data={"csrf_token": form.group(2)})
    assert back.status_code == 200 and "subscribed again" in back.text
    assert_tells_nothing(back.text, token)
    after = row(engine)
    assert after["status"] == "active" and after["unsubscribed_at"] is None
    same = {k: v for k, v in after.items() if k not in ("status", "confirmed_at", "unsubscribed_at")}
    assert same == {k: v for k, v in before.items() if k not in ("status", "confirmed_at", "unsubscribed_at")}
    # and the same link unsubscribes again, once more with nothing else on the page
    with httpx.Client(base_url=base, timeout=10) as mail_client:
        again = mail_client.post(unsub, **ONE_CLICK)
    assert again.status_code == 200 and row(engine)["status"] == "unsubscribed"
    assert_tells_nothing(again.text, token)
