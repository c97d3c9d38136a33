"""Subscribing to digests (issue 5): double opt-in, confirmation limits, preferences behind signed links,
saved searches, RFC 8058 one-click unsubscribe, the topics' feed, and the settings page's digest section.

The app runs over a real SQLite file (the store tests also over PostgreSQL); mail is read from the outbox
table, where a sender would pick it up.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import members
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from test_security import XSS_CORPUS, assert_no_markup_from_data
from webhub import NOW, SITE, A

from paperboy import signing
from paperboy.db import transaction
from paperboy.db.schema import confirmations, outbox, subscriptions, topics
from paperboy.digest import subscriptions as subs
from paperboy.models import Subscription
from paperboy.store import outbox as outbox_store
from paperboy.store import subscriptions as store
from paperboy.templating import make_environment
from paperboy.web.app import create_app
from paperboy.web.security import RateLimits

KEY = b"k" * 32
LINK = re.compile(r"https://papers\.example\.org/subscribe/confirm\?t=([A-Za-z0-9_\-]+)")
ROOMY = RateLimits(subscribe="1000 per hour", signup="1000 per hour")


def _app(engine: Engine, *, later: timedelta = timedelta(0), rate_limits: RateLimits = ROOMY) -> Any:
    return create_app(
        engine,
        site=SITE,
        clock=lambda: NOW + later,
        hasher=members.FAST_HASHER,
        secret_key=KEY,
        rate_limits=rate_limits,
    )


def _client(engine: Engine, *, load: bool = True, **kwargs: Any) -> TestClient:
    if load:
        import webhub

        webhub.load(engine)
    return TestClient(_app(engine, **kwargs), base_url="https://testserver")


def _subscribe(c: TestClient, email: str, **fields: str) -> Any:
    return c.post(
        "/subscribe",
        data={"email": email, "csrf_token": members.csrf(c, "/subscribe"), **fields},
        follow_redirects=False,
    )


def _rows(engine: Engine, table: sa.Table, **where: Any) -> list[dict[str, Any]]:
    stmt = sa.select(table)
    for name, value in where.items():
        stmt = stmt.where(table.c[name] == value)
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(stmt.order_by(table.c[next(iter(table.primary_key)).name])).mappings()
        ]


def _snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    return {t.name: _rows(engine, t) for t in (subscriptions, topics, confirmations, outbox)}


def _sub(engine: Engine, email: str) -> Subscription:
    with engine.connect() as conn:
        found = store.get_by_email(conn, email)
    assert found is not None
    return found


def _confirm_token(engine: Engine, email: str) -> str:
    mails = _rows(engine, outbox, kind="confirm", to_addr=email)
    assert mails, f"no confirmation mail to {email}"
    found = LINK.search(mails[-1]["text_body"])
    assert found
    return found.group(1)


def _confirm(c: TestClient, token: str) -> Any:
    return c.post("/subscribe/confirm", data={"t": token, "csrf_token": members.csrf(c, "/subscribe")})


def _active(engine: Engine, c: TestClient, email: str, **fields: str) -> Subscription:
    assert _subscribe(c, email, **fields).status_code == 200
    assert _confirm(c, _confirm_token(engine, email)).status_code == 200
    found = _sub(engine, email)
    assert found.status == "active"
    return found


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + "?" + parts.query


def _manage(found: Subscription) -> str:
    return _path(subs.manage_url(SITE.public_url, KEY, found, NOW))


def _unsub(found: Subscription) -> str:
    return _path(subs.unsubscribe_url(SITE.public_url, KEY, found))


def _feed(found: Subscription) -> str:
    return _path(subs.feed_url(SITE.public_url, KEY, found, NOW))


# --- double opt-in ------------------------------------------------------------------------------------------


def test_subscribe_queues_one_confirmation_and_only_the_button_confirms(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        r = _subscribe(c, "  Ada@Example.ORG ")
        assert r.status_code == 200 and "Check your inbox" in r.text
        found = _sub(sqlite_engine, "ada@example.org")
        assert found.status == "pending" and found.confirmed_at is None
        mails = _rows(sqlite_engine, outbox)
        assert len(mails) == 1
        mail = mails[0]
        assert mail["kind"] == "confirm" and mail["status"] == "pending"
        assert mail["to_addr"] == "ada@example.org" and mail["subscription_id"] == found.id
        assert "Confirm your subscription" in mail["subject"]
        token = _confirm_token(sqlite_engine, "ada@example.org")
        assert f"/subscribe/confirm?t={token}" in mail["html_body"]
        assert mail["message_id"].startswith("<confirm.") and mail["message_id"].endswith(
            "@papers.example.org>"
        )
        [row] = _rows(sqlite_engine, confirmations)
        assert row["token_hash"] != token and len(row["token_hash"]) == 64  # only a hash is kept
        assert row["expires_at"] == NOW + timedelta(days=7)

        before = _snapshot(sqlite_engine)
        page = c.get("/subscribe/confirm", params={"t": token})
        assert page.status_code == 200 and 'action="/subscribe/confirm"' in page.text
        assert (
            _snapshot(sqlite_engine) == before
        )  # opening the link (or a mail scanner doing so) changes nothing

        done = _confirm(c, token)
        assert done.status_code == 200 and "subscribed" in done.text
        assert "/subscription?t=" in done.text  # a link to the preferences
        found = _sub(sqlite_engine, "ada@example.org")
        assert found.status == "active" and found.confirmed_at == NOW

        # single use
        assert _confirm(c, token).status_code == 400
        assert c.get("/subscribe/confirm", params={"t": token}).status_code == 400


def test_confirmation_links_expire_after_seven_days(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        _subscribe(c, "ada@example.org")
        _subscribe(c, "bob@example.org")
    ada, bob = (
        _confirm_token(sqlite_engine, "ada@example.org"),
        _confirm_token(sqlite_engine, "bob@example.org"),
    )
    with _client(sqlite_engine, load=False, later=timedelta(days=7, seconds=1)) as late:
        assert late.get("/subscribe/confirm", params={"t": ada}).status_code == 400
        r = _confirm(late, ada)
        assert r.status_code == 400 and "expired" in r.text
    assert _sub(sqlite_engine, "ada@example.org").status == "pending"
    with _client(sqlite_engine, load=False, later=timedelta(days=6, hours=23)) as in_time:
        assert _confirm(in_time, bob).status_code == 200
    assert _sub(sqlite_engine, "bob@example.org").status == "active"


def test_unconfirmed_addresses_are_not_active_subscriptions(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        _subscribe(c, "pending@example.org")
        _active(sqlite_engine, c, "active@example.org")
    with sqlite_engine.connect() as conn:
        assert [s.email for s in store.active_subscriptions(conn)] == ["active@example.org"]


def test_at_most_three_confirmation_mails_per_address_per_six_hours(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        pages = [_subscribe(c, "ada@example.org") for _ in range(3)]
        before = _snapshot(sqlite_engine)
        r = _subscribe(c, "ada@example.org")
        # the same page as the first three (a 429 here told who had been asked for lately), no mail
        assert r.status_code == 200 and "Check your inbox" in r.text
        assert "retry-after" not in r.headers
        assert {p.status_code for p in pages} == {200} and {p.text for p in pages} == {r.text}
        assert _snapshot(sqlite_engine) == before
        assert _subscribe(c, "bob@example.org").status_code == 200  # per address
    with _client(sqlite_engine, load=False, later=timedelta(hours=6, seconds=1)) as later:
        assert _subscribe(later, "ada@example.org").status_code == 200
    assert len(_rows(sqlite_engine, outbox, to_addr="ada@example.org")) == 4


def test_subscribe_requests_are_limited_per_ip(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine, rate_limits=RateLimits(subscribe="2 per hour")) as c:
        assert _subscribe(c, "a@example.org").status_code == 200
        assert _subscribe(c, "b@example.org").status_code == 200
        before = _snapshot(sqlite_engine)
        r = _subscribe(c, "c@example.org")
        assert r.status_code == 429 and r.headers["retry-after"]
        assert _snapshot(sqlite_engine) == before


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "<script>@x.org", "a" * 250 + "@example.org"])
def test_a_bad_address_is_a_400_and_nothing_is_stored(sqlite_engine: Engine, email: str) -> None:
    with _client(sqlite_engine) as c:
        before = _snapshot(sqlite_engine)
        r = _subscribe(c, email)
        assert r.status_code == 400
        assert 'aria-invalid="true"' in r.text and "email address" in r.text
        assert_no_markup_from_data(r.text, "/subscribe")
        assert _snapshot(sqlite_engine) == before


def test_a_suppressed_address_gets_nothing(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        outbox_store.suppress(conn, "gone@example.org", "hard bounce", NOW)
    with _client(sqlite_engine) as c:
        before = _snapshot(sqlite_engine)
        r = _subscribe(c, "Gone@example.org")
        assert r.status_code == 200 and "Check your inbox" in r.text  # the page does not tell
        assert _snapshot(sqlite_engine) == before  # nothing stored, nothing queued


def test_an_active_address_gets_its_preferences_link_capped_and_the_page_does_not_tell(
    sqlite_engine: Engine,
) -> None:
    with _client(sqlite_engine) as c:
        fresh = _subscribe(c, "new@example.org")
        _active(sqlite_engine, c, "ada@example.org")  # its confirmation: 1 of 3
        pages = [_subscribe(c, "ada@example.org") for _ in range(3)]
        # the same page as for an address that was not subscribed: nobody learns who is on the list
        for r in pages:
            assert r.status_code == 200
            assert r.text.replace("ada@example.org", "X") == fresh.text.replace("new@example.org", "X")
        mails = _rows(sqlite_engine, outbox, kind="confirm", to_addr="ada@example.org")
        assert len(mails) == 3  # the cap counts every mail the form sends, whatever it says
        notice = mails[1]
        assert "subscribed already" in notice["text_body"] and "already" in notice["subject"]
        assert _sub(sqlite_engine, "ada@example.org").status == "active"
        # its link leads to the preferences, changing nothing on the way
        token = LINK.search(notice["text_body"])
        assert token
        page = c.get("/subscribe/confirm", params={"t": token.group(1)})
        assert "subscribed already" in page.text and "Open my preferences" in page.text
        before = _sub(sqlite_engine, "ada@example.org")
        done = _confirm(c, token.group(1))
        assert done.status_code == 200 and "/subscription?t=" in done.text
        assert _sub(sqlite_engine, "ada@example.org") == before


def test_a_full_topic_list_is_not_told_on_the_page(sqlite_engine: Engine) -> None:
    """Refusing a 21st topic at once (a 400) told that the address is subscribed with 20 topics: the
    confirmation goes out as for any address, and the confirmed page says the topic was not added."""
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org")
        _save(c, found, _prefs(topics="\n".join(f"topic {n}" for n in range(subs.MAX_TOPICS))))
        r = _subscribe(c, "ada@example.org", topic="one too many")
        assert r.status_code == 200 and "Check your inbox" in r.text
        done = _confirm(c, _confirm_token(sqlite_engine, "ada@example.org"))
        assert done.status_code == 200 and "was not added" in done.text
        assert len(_sub(sqlite_engine, "ada@example.org").topics) == subs.MAX_TOPICS


def test_an_address_that_left_can_come_back_through_a_new_confirmation(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org")
        TestClient(c.app, base_url="https://testserver").post(_unsub(found))
        assert _sub(sqlite_engine, "ada@example.org").status == "unsubscribed"
        assert "Check your inbox" in _subscribe(c, "ada@example.org").text
        assert _sub(sqlite_engine, "ada@example.org").status == "unsubscribed"  # until the click
        _confirm(c, _confirm_token(sqlite_engine, "ada@example.org"))
        back = _sub(sqlite_engine, "ada@example.org")
        assert back.status == "active" and back.unsubscribed_at is None


# --- one-click unsubscribe ----------------------------------------------------------------------------------


def _queue_digest(engine: Engine, found: Subscription, n: int) -> None:
    with engine.begin() as conn:
        outbox_store.enqueue(
            conn,
            kind="digest",
            to_addr=found.email,
            subject="digest",
            text_body="papers",
            html_body=None,
            headers={},
            message_id=f"<digest.{found.id}.{n}@papers.example.org>",
            now=NOW,
            subscription_id=found.id,
        )


def test_one_click_unsubscribe_without_cookies_or_csrf(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        ada = _active(sqlite_engine, c, "ada@example.org")
        bob = _active(sqlite_engine, c, "bob@example.org")
    _queue_digest(sqlite_engine, ada, 1)
    _queue_digest(sqlite_engine, bob, 1)
    mail_client = TestClient(
        _app(sqlite_engine), base_url="https://testserver"
    )  # a mail provider: no cookies

    before = _snapshot(sqlite_engine)
    page = mail_client.get(_unsub(ada))
    assert page.status_code == 200 and "ada@example.org" not in page.text  # the link travels in headers
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert 'name="csrf_token"' not in page.text.split('class="site-footer"')[0]
    assert _snapshot(sqlite_engine) == before  # a GET changes nothing

    fresh = TestClient(_app(sqlite_engine), base_url="https://testserver")
    r = fresh.post(
        _unsub(ada),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and "unsubscribed" in r.text
    assert "ada@example.org" not in r.text and "/subscription" not in r.text  # nothing but the undo button
    assert "/unsubscribe/resubscribe?t=" in r.text
    gone = _sub(sqlite_engine, "ada@example.org")
    assert gone.status == "unsubscribed" and gone.unsubscribed_at == NOW
    statuses = {m["to_addr"]: m["status"] for m in _rows(sqlite_engine, outbox, kind="digest")}
    assert statuses == {"ada@example.org": "cancelled", "bob@example.org": "pending"}
    assert _sub(sqlite_engine, "bob@example.org").status == "active"
    # twice is fine
    again = fresh.post(_unsub(ada), data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200


def _bad_tokens(found: Subscription, purpose: str) -> dict[str, str]:
    good = signing.sign(KEY, purpose, found.id, found.token_version, NOW + timedelta(days=1))
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    other = "unsubscribe" if purpose != "unsubscribe" else "manage"
    expired = {
        "expired": signing.sign(KEY, purpose, found.id, found.token_version, NOW - timedelta(seconds=1))
    }
    return {
        "tampered": flipped,
        "truncated": good[: len(good) // 2],
        **(expired if purpose != "unsubscribe" else {}),  # unsubscribe links never expire
        "other purpose": signing.sign(KEY, other, found.id, found.token_version, NOW + timedelta(days=1)),
        "old version": signing.sign(KEY, purpose, found.id, found.token_version - 1, NOW + timedelta(days=1)),
        "other key": signing.sign(b"x" * 32, purpose, found.id, found.token_version, NOW + timedelta(days=1)),
        "no such subscription": signing.sign(KEY, purpose, 999, 1),
        "garbage": "t1.%%%.<script>",
        "empty": "",
        "huge": "t1." + "A" * 900,
    }


def test_bad_tokens_are_4xx_on_every_token_route(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org", topic="sparse attention")
        with sqlite_engine.begin() as conn:
            store.bump_token_version(conn, found.id)  # so that "old version" exists
        found = _sub(sqlite_engine, "ada@example.org")
        csrf = members.csrf(c, "/subscribe")
        prefs = {
            "cadence": "weekly",
            "send_hour": "9",
            "weekly_day": "1",
            "timezone": "UTC",
            "max_papers": "5",
        }
        routes = [
            ("GET", "/unsubscribe", "unsubscribe", {}),
            ("POST", "/unsubscribe", "unsubscribe", {"List-Unsubscribe": "One-Click"}),
            ("GET", "/subscription", "manage", {}),
            ("POST", "/subscription", "manage", {**prefs, "csrf_token": csrf}),
            ("POST", "/subscription/rotate", "manage", {"csrf_token": csrf}),
            ("POST", "/subscription/resume", "manage", {"csrf_token": csrf}),
            ("GET", "/subscription/feed.atom", "feed", {}),
            ("GET", "/api/subscription", "manage", {}),
        ]
        before = _snapshot(sqlite_engine)
        for method, path, purpose, data in routes:
            for name, token in _bad_tokens(found, purpose).items():
                r = c.request(method, path, params={"t": token}, data=data or None, follow_redirects=False)
                assert 400 <= r.status_code < 500, (method, path, name, r.status_code, r.text[:300])
                if path.startswith("/api/"):
                    assert "error" in r.json()
        for token in ("", "x" * 43, "A" * 300, "<script>alert(1)</script>"):
            assert 400 <= c.get("/subscribe/confirm", params={"t": token}).status_code < 500
            assert 400 <= _confirm(c, token).status_code < 500
        assert _snapshot(sqlite_engine) == before


# --- preferences --------------------------------------------------------------------------------------------


def _prefs(**overrides: str) -> dict[str, str]:
    form = {
        "cadence": "weekly",
        "send_hour": "7",
        "weekly_day": "4",
        "timezone": "Europe/Paris",
        "max_papers": "15",
        "topics": "KV cache eviction\nspeculative decoding -medical\n\nkv cache eviction",
        "categories": "cs.CL, cs.LG cs",
        "authors": "Ada Lovelace\nAlan Turing, Grace Hopper",
        "exclude": "medical\nsurvey",
    }
    form.update(overrides)
    return form


def _save(c: TestClient, found: Subscription, form: dict[str, str]) -> Any:
    return c.post(_manage(found), data={**form, "csrf_token": members.csrf(c, _manage(found))})


def test_preferences_are_shown_saved_and_served_as_json(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org", topic="sparse attention", category="cs.LG")
        page = c.get(_manage(found))
        assert page.status_code == 200 and "ada@example.org" in page.text
        assert "sparse attention" in page.text and "/subscription/feed.atom?t=" in page.text
        r = _save(
            c, found, _prefs(topics="sparse attention\nKV cache eviction\nspeculative decoding -medical")
        )
        assert r.status_code == 200 and "Saved." in r.text
        saved = _sub(sqlite_engine, "ada@example.org")
        assert (saved.cadence, saved.send_hour, saved.weekly_day, saved.timezone, saved.max_papers) == (
            "weekly",
            7,
            4,
            "Europe/Paris",
            15,
        )
        assert saved.categories == ("cs.CL", "cs.LG", "cs")
        assert saved.authors == ("Ada Lovelace", "Alan Turing", "Grace Hopper")
        assert saved.exclude == ("medical", "survey")
        assert [(t.query, t.source, t.categories) for t in saved.topics] == [
            ("sparse attention", "search", ("cs.LG",)),  # kept with its filter
            ("KV cache eviction", "topic", ()),
            ("speculative decoding -medical", "topic", ()),
        ]
        data = c.get("/api/subscription", params={"t": _manage(saved).split("t=")[1]}).json()
        assert data["email"] == "ada@example.org" and data["cadence"] == "weekly" and data["sendHour"] == 7
        assert [t["query"] for t in data["topics"]] == [
            "sparse attention",
            "KV cache eviction",
            "speculative decoding -medical",
        ]
        assert data["topics"][0]["categories"] == ["cs.LG"]
        # dropping a line drops the topic; duplicates collapse
        _save(c, saved, _prefs(topics="KV cache eviction\nkv CACHE eviction"))
        assert [t.query for t in _sub(sqlite_engine, "ada@example.org").topics] == ["KV cache eviction"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "../../etc/passwd"),
        ("timezone", ""),
        ("cadence", "hourly"),
        ("send_hour", "24"),
        ("send_hour", "seven"),
        ("weekly_day", "7"),
        ("max_papers", "0"),
        ("max_papers", "51"),
        ("topics", "\n".join(f"topic {n}" for n in range(21))),
        ("topics", "x" * 201),
        ("categories", "cs.CL, <script>"),
        ("categories", "cs.CL, cs.XX"),  # shaped like a category; arXiv has none: it would match nothing
        ("categories", " ".join(f"cs.X{chr(65 + n)}" for n in range(21))),
        ("authors", "\n".join(f"Author {n}" for n in range(51))),
        ("exclude", "\n".join(f"word{n}" for n in range(51))),
        ("exclude", "y" * 101),
    ],
)
def test_a_bad_preference_is_a_400_beside_its_field_and_nothing_changes(
    sqlite_engine: Engine, field: str, value: str
) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org", topic="sparse attention")
        before = _snapshot(sqlite_engine)
        r = _save(c, found, _prefs(**{field: value}))
        assert r.status_code == 400, r.text[:300]
        assert "Nothing was saved" in r.text and 'class="field-message"' in r.text
        assert re.search(rf'class="field field-error">\s*<label for="f-{field}"', r.text), field
        assert _snapshot(sqlite_engine) == before


def test_several_bad_preferences_are_all_named(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org")
        r = _save(c, found, _prefs(timezone="Nowhere/Land", max_papers="500", cadence="yearly"))
        assert r.status_code == 400
        assert (
            "not a time zone" in r.text
            and "How many papers" in r.text
            and "daily (weekdays) or weekly" in r.text
        )
        assert 'value="Nowhere/Land"' in r.text  # what was typed comes back


def test_rotating_links_kills_the_old_ones(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org", topic="sparse attention")
        old_manage, old_unsub, old_feed = _manage(found), _unsub(found), _feed(found)
        r = c.post(
            "/subscription/rotate?" + old_manage.split("?")[1],
            data={"csrf_token": members.csrf(c)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        new_manage = r.headers["location"]
        assert new_manage.startswith("/subscription?t=") and "rotated=1" in new_manage
        assert c.get(new_manage).status_code == 200
        for old in (old_manage, old_unsub, old_feed):
            assert c.get(old).status_code == 400, old
        assert c.post(old_unsub, data={"List-Unsubscribe": "One-Click"}).status_code == 400
        assert _sub(sqlite_engine, "ada@example.org").status == "active"


def test_an_unsubscribed_address_can_resume_from_its_preferences(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org")
        c.post(_unsub(found), data={"List-Unsubscribe": "One-Click"})
        page = c.get(_manage(found))
        assert "unsubscribed" in page.text and "/subscription/resume?t=" in page.text
        r = c.post(
            _manage(found).replace("/subscription?", "/subscription/resume?"),
            data={"csrf_token": members.csrf(c)},
        )
        assert r.status_code == 200
        assert _sub(sqlite_engine, "ada@example.org").status == "active"


# --- saved searches -----------------------------------------------------------------------------------------


def test_a_saved_search_becomes_a_topic_only_after_its_confirmation(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        _active(sqlite_engine, c, "ada@example.org")
        page = c.get("/papers", params={"q": "sparse attention", "category": "cs.LG"})
        assert "Email me new matches" in page.text
        assert 'name="topic" value="sparse attention"' in page.text
        assert 'name="category" value="cs.LG"' in page.text
        r = _subscribe(
            c, "ada@example.org", topic="sparse attention", category="cs.LG", next="/papers?q=sparse"
        )
        assert r.status_code == 200 and "Check your inbox" in r.text
        assert _sub(sqlite_engine, "ada@example.org").topics == ()  # nobody adds topics without the click
        mail = _rows(sqlite_engine, outbox, kind="confirm", to_addr="ada@example.org")[-1]
        assert "sparse attention" in mail["subject"] and "sparse attention" in mail["text_body"]
        token = _confirm_token(sqlite_engine, "ada@example.org")
        assert "sparse attention" in c.get("/subscribe/confirm", params={"t": token}).text
        assert _confirm(c, token).status_code == 200
        [topic] = _sub(sqlite_engine, "ada@example.org").topics
        assert (topic.query, topic.source, topic.categories) == ("sparse attention", "search", ("cs.LG",))
        assert topic.vector is None  # the planner embeds it
        # the same search again: already there, so the mail says so and leads to the preferences
        before = _sub(sqlite_engine, "ada@example.org")
        assert "Check your inbox" in _subscribe(c, "ada@example.org", topic="sparse attention").text
        mail = _rows(sqlite_engine, outbox, kind="confirm", to_addr="ada@example.org")[-1]
        assert "subscribed already" in mail["text_body"] and "sparse attention" in mail["text_body"]
        assert _sub(sqlite_engine, "ada@example.org") == before


def test_a_saved_search_for_a_new_address_subscribes_it_with_the_topic(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        _subscribe(c, "new@example.org", topic="KV cache eviction")
        assert _sub(sqlite_engine, "new@example.org").topics == ()
        _confirm(c, _confirm_token(sqlite_engine, "new@example.org"))
        found = _sub(sqlite_engine, "new@example.org")
        assert found.status == "active" and [t.query for t in found.topics] == ["KV cache eviction"]


# --- the topics' feed ---------------------------------------------------------------------------------------


def test_the_topics_feed_parses_and_needs_its_token(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org", topic="sparse attention")
        _subscribe(c, "ada@example.org", topic="Filler")
        _confirm(c, _confirm_token(sqlite_engine, "ada@example.org"))
        found = _sub(sqlite_engine, "ada@example.org")
        r = c.get(_feed(found))
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(r.content)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        ids = [e.link.rsplit("/", 1)[1] for e in parsed.entries]
        assert A in ids and len(ids) == len(set(ids))  # merged, no duplicates
        assert any(i.startswith("2502.") for i in ids)
        dates = [e.updated_parsed for e in parsed.entries]
        assert dates == sorted(dates, reverse=True)  # newest first
        # excluded words leave papers out
        _save(c, found, _prefs(topics="sparse attention\nFiller", exclude="sparse"))
        ids = [e.link.rsplit("/", 1)[1] for e in feedparser.parse(c.get(_feed(found)).content).entries]
        assert A not in ids and ids
        for token in ("", "nope", _manage(found).split("t=")[1]):
            assert 400 <= c.get("/subscription/feed.atom", params={"t": token}).status_code < 500


# --- members ------------------------------------------------------------------------------------------------


def test_the_settings_page_subscribes_and_then_manages_the_account_address(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        members.signup(c, "ada")
        page = c.get("/settings")
        assert "Email digest" in page.text and "Subscribe ada@example.org" in page.text
        assert c.get("/settings/subscription", follow_redirects=False).status_code == 404
        r = c.post(
            "/subscribe",
            data={
                "email": "ada@example.org",
                "next": "/settings",
                "csrf_token": members.csrf(c, "/settings"),
            },
        )
        assert r.status_code == 200 and "Check your inbox" in r.text
        mail = _rows(sqlite_engine, outbox, kind="confirm")[-1]
        assert "ada" in mail["text_body"]
        assert _sub(sqlite_engine, "ada@example.org").user_id is None  # linked only by the click
        _confirm(c, _confirm_token(sqlite_engine, "ada@example.org"))
        found = _sub(sqlite_engine, "ada@example.org")
        assert found.status == "active" and found.user_id is not None
        page = c.get("/settings")
        assert "Edit digest preferences" in page.text and "daily" in page.text
        r = c.get("/settings/subscription", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/subscription?t=")
        assert "ada@example.org" in c.get(r.headers["location"]).text
        # the footer form is prefilled for members
        assert 'value="ada@example.org"' in c.get("/papers").text


def test_an_account_does_not_take_over_someone_elses_subscription(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        _active(sqlite_engine, c, "victim@example.org")
        outbox_before = len(_rows(sqlite_engine, outbox))
        mallory = TestClient(c.app, base_url="https://testserver")
        members.signup(mallory, "mallory", email="victim@example.org")
        assert "Subscribe victim@example.org" in mallory.get("/settings").text  # no state, no link shown
        assert mallory.get("/settings/subscription", follow_redirects=False).status_code == 404
        r = _subscribe(mallory, "victim@example.org")
        assert r.status_code == 200 and "Check your inbox" in r.text  # the owner of the address must click
        assert len(_rows(sqlite_engine, outbox)) == outbox_before + 1
        assert _sub(sqlite_engine, "victim@example.org").user_id is None
        # a member subscribing another address never links it to their account
        members.signup(members.another(c), "eve")
        eve = TestClient(c.app, base_url="https://testserver")
        members.login(eve, "eve")
        _subscribe(eve, "other@example.org")
        _confirm(eve, _confirm_token(sqlite_engine, "other@example.org"))
        assert _sub(sqlite_engine, "other@example.org").user_id is None


# --- markup and privacy -------------------------------------------------------------------------------------


def test_hostile_preferences_and_topics_never_become_markup(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        found = _active(sqlite_engine, c, "ada@example.org")
        topics_text = "\n".join(XSS_CORPUS)
        r = _save(
            c,
            found,
            _prefs(topics=topics_text, authors="\n".join(XSS_CORPUS[:4]), exclude="\n".join(XSS_CORPUS[4:])),
        )
        assert r.status_code == 200, r.text[:300]
        page = c.get(_manage(found)).text
        assert_no_markup_from_data(page, "/subscription")
        assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
        feed = c.get(_feed(found))
        assert feed.status_code == 200 and "<script" not in feed.text
        assert feedparser.parse(feed.content).bozo == 0
        data = c.get("/api/subscription", params={"t": _manage(found).split("t=")[1]})
        assert "<" not in data.text and XSS_CORPUS[0] in [t["query"] for t in data.json()["topics"]]
        # a hostile saved search in the confirmation mail and on the confirm page
        for n, payload in enumerate(XSS_CORPUS):
            _subscribe(c, f"x{n}@example.org", topic=payload)
            mail = _rows(sqlite_engine, outbox, kind="confirm", to_addr=f"x{n}@example.org")[-1]
            assert_no_markup_from_data(mail["html_body"], f"confirm mail {n}")
            assert "<script>alert" not in mail["html_body"]
            token = _confirm_token(sqlite_engine, f"x{n}@example.org")
            assert_no_markup_from_data(c.get("/subscribe/confirm", params={"t": token}).text, "confirm page")
        r = _subscribe(c, XSS_CORPUS[1])
        assert r.status_code == 400 and "<script>alert" not in r.text


def test_json_never_carries_another_subscribers_email(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        ada = _active(sqlite_engine, c, "ada@example.org", topic="sparse attention")
        _active(sqlite_engine, c, "bob@example.org", topic="benchmarks")
        r = c.get("/api/subscription", params={"t": _manage(ada).split("t=")[1]})
        assert r.status_code == 200
        assert "bob@" not in r.text and "benchmarks" not in r.text
        assert r.json()["email"] == "ada@example.org"
        for path in ("/api/daily_papers", "/api/papers/search?q=sparse", f"/api/papers/{A}"):
            body = c.get(path).text
            assert "ada@" not in body and "bob@" not in body, path
        # the unsubscribe and feed tokens are not manage tokens
        for other in (_unsub(ada), _feed(ada)):
            assert c.get("/api/subscription", params={"t": other.split("t=")[1]}).status_code == 400


# --- the store, on both backends ----------------------------------------------------------------------------


def test_store_round_trip(engine: Engine) -> None:
    with engine.begin() as conn:
        made = store.insert_subscription(conn, email="ada@example.org", now=NOW)
        other = store.insert_subscription(conn, email="bob@example.org", now=NOW)
        assert made.status == "pending" and made.categories == () and made.token_version == 1
        assert store.add_topic(conn, made.id, "kv cache", source="search", categories=["cs.CL"], now=NOW)
        assert not store.add_topic(conn, made.id, "kv cache", source="topic", now=NOW)
        store.add_topic(conn, made.id, "speculative decoding", source="topic", now=NOW)
        conn.execute(
            sa.update(topics).where(topics.c.query == "kv cache").values(vector=b"\x00" * 8, model="m")
        )
        assert store.active_subscriptions(conn) == []
        store.set_status(conn, made.id, "active", NOW)
        store.update_preferences(
            conn,
            made.id,
            cadence="weekly",
            send_hour=6,
            weekly_day=2,
            timezone="Asia/Tokyo",
            max_papers=3,
            categories=["cs.CL"],
            authors=["Ada Lovelace"],
            exclude=["medical"],
        )
        [active] = store.active_subscriptions(conn)
        assert active.email == "ada@example.org" and active.confirmed_at == NOW
        assert (active.cadence, active.timezone, active.categories, active.authors, active.exclude) == (
            "weekly",
            "Asia/Tokyo",
            ("cs.CL",),
            ("Ada Lovelace",),
            ("medical",),
        )
        assert [(t.query, t.source, t.categories) for t in active.topics] == [
            ("kv cache", "search", ("cs.CL",)),
            ("speculative decoding", "topic", ()),
        ]
        store.replace_topics(conn, made.id, ["kv cache", "new one"], NOW)
        kept = store.get(conn, made.id)
        assert kept is not None
        assert [(t.query, t.vector is not None) for t in kept.topics] == [
            ("kv cache", True),
            ("new one", False),
        ]
        assert store.remove_topic(conn, made.id, kept.topics[1].id)
        assert store.count_topics(conn, made.id) == 1

        cid = store.insert_confirmation(
            conn,
            subscription_id=made.id,
            token_hash="a" * 64,
            now=NOW,
            expires_at=NOW + timedelta(days=7),
            payload={"topic": "x", "categories": []},
        )
        found = store.find_confirmation(conn, "a" * 64)
        assert found is not None and found.id == cid and found.payload["topic"] == "x"
        assert store.confirmations_sent_since(conn, made.id, NOW - timedelta(hours=6)) == [NOW]
        assert store.confirmations_sent_since(conn, made.id, NOW + timedelta(seconds=1)) == []
        assert store.use_confirmation(conn, cid, NOW)
        assert not store.use_confirmation(conn, cid, NOW)

        assert store.bump_token_version(conn, made.id) == 2
        store.link_user(conn, made.id, _user(conn))
        assert store.get_by_user(conn, _user(conn)) is not None

        for n, sub_id in enumerate((made.id, made.id, other.id)):
            outbox_store.enqueue(
                conn,
                kind="digest",
                to_addr="x@example.org",
                subject="s",
                text_body="t",
                html_body=None,
                headers={},
                message_id=f"<m{n}@x>",
                now=NOW,
                subscription_id=sub_id,
            )
        assert store.cancel_pending_outbox(conn, made.id) == 2
        store.set_status(conn, made.id, "unsubscribed", NOW)
        assert store.active_subscriptions(conn) == []
        gone = store.get_by_email(conn, "ada@example.org")
        assert gone is not None and gone.unsubscribed_at == NOW


def test_claim_subscription_makes_finds_and_locks_one_row(engine: Engine) -> None:
    with engine.begin() as conn:
        assert store.claim_subscription(conn, email="gone@example.org", now=NOW, create=False) is None
        made = store.claim_subscription(conn, email="ada@example.org", now=NOW, create=True)
        assert made is not None and made.status == "pending"
        again = store.claim_subscription(
            conn, email="ada@example.org", now=NOW + timedelta(days=1), create=True
        )
        assert again == made  # the same row, not a new one, its creation date kept
    assert len(_rows(engine, subscriptions)) == 1


def test_requests_at_once_for_one_address_never_pass_the_cap(engine: Engine) -> None:
    """Eight subscribe requests for one address in the same instant, each in its own transaction: the row
    lock makes them count one after the other, so exactly three mails are queued (SQLite and PostgreSQL)."""
    mailing = subs.Mailing("Lab", "https://papers.example.org", make_environment())
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            start.wait()
            with transaction(engine) as conn:
                subs.subscribe(conn, mailing, email="ada@example.org", now=NOW)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(_rows(engine, outbox, to_addr="ada@example.org")) == subs.MAX_CONFIRMATIONS
    assert len(_rows(engine, confirmations)) == subs.MAX_CONFIRMATIONS


def test_the_one_click_link_resubscribes_only_an_address_that_left(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        ada = _active(sqlite_engine, c, "ada@example.org")
        _subscribe(c, "pending@example.org")
        pending = _sub(sqlite_engine, "pending@example.org")
        csrf = members.csrf(c, "/subscribe")
        back = "/unsubscribe/resubscribe?" + _unsub(ada).split("?")[1]
        # active: nothing to undo
        assert c.post(back, data={"csrf_token": csrf}).status_code == 200
        assert _sub(sqlite_engine, "ada@example.org") == ada
        # pending (never confirmed): the link starts nothing
        r = c.post("/unsubscribe/resubscribe?" + _unsub(pending).split("?")[1], data={"csrf_token": csrf})
        assert r.status_code == 200 and "Nothing changed" in r.text
        assert _sub(sqlite_engine, "pending@example.org").status == "pending"
        # left, then suppressed (it bounced): no mail, so no resubscribing
        c.post(_unsub(ada), data={"List-Unsubscribe": "One-Click"})
        with sqlite_engine.begin() as conn:
            outbox_store.suppress(conn, "ada@example.org", "550 no such user", NOW)
        r = c.post(back, data={"csrf_token": csrf})
        assert r.status_code == 400 and "ada@example.org" not in r.text
        assert _sub(sqlite_engine, "ada@example.org").status == "unsubscribed"
        # the undo takes the unsubscribe token only
        manage_token = _manage(ada).split("t=")[1]
        r = c.post("/unsubscribe/resubscribe", params={"t": manage_token}, data={"csrf_token": csrf})
        assert r.status_code == 400


def _user(conn: Any) -> int:
    from paperboy.db.schema import users

    found = conn.execute(sa.select(users.c.id).where(users.c.username == "ada")).scalar()
    if found is None:
        found = conn.execute(
            sa.insert(users)
            .values(
                username="ada",
                username_key="ada",
                email="ada@example.org",
                password_hash="x",
                is_admin=False,
                created_at=NOW,
            )
            .returning(users.c.id)
        ).scalar_one()
    return int(found)


def test_link_builders_make_tokens_for_their_purpose() -> None:
    found = Subscription(id=7, email="a@example.org", status="active", created_at=NOW, token_version=3)
    unsub = subs.unsubscribe_url("https://hub.example/", KEY, found)
    assert unsub.startswith("https://hub.example/unsubscribe?t=")
    token = parse_qs(urlsplit(unsub).query)["t"][0]
    claims = signing.verify(KEY, "unsubscribe", token, NOW + timedelta(days=3650))
    assert (claims.subscription_id, claims.version, claims.expires) == (7, 3, None)  # never expires
    with pytest.raises(signing.BadToken):
        signing.verify(b"another key" * 3, "unsubscribe", token, NOW)  # a new secret key revokes it
    manage = parse_qs(urlsplit(subs.manage_url("https://hub.example", KEY, found, NOW)).query)["t"][0]
    assert signing.verify(KEY, "manage", manage, NOW).expires is not None
    feed = parse_qs(urlsplit(subs.feed_url("https://hub.example", KEY, found, NOW)).query)["t"][0]
    assert signing.verify(KEY, "feed", feed, NOW + timedelta(days=3650)).expires is None
