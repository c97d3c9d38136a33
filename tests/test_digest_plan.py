"""Planning and sending digests over a real SQLite file and a real SMTP server (aiosmtpd): what is due is
planned once per period (run it as often as you like, across a DST change), the outbox row is written with
the run, an empty digest sends nothing, and the mail that arrives carries its content, the RFC 8058 headers
and a one-click unsubscribe link that works with no cookies."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import browserkit
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from searchkit import HashEmbedder
from sqlalchemy.engine import Engine
from test_mail_wire import assert_plain_headers, raw_field, unfolded
from test_security import assert_no_markup_from_data

from paperboy import signing
from paperboy.db.schema import digest_runs, outbox, subscriptions
from paperboy.digest.plan import Context, plan_due, preview
from paperboy.digest.run import digest_round
from paperboy.mailer import SmtpMailer
from paperboy.models import Featuring, Paper, Record, Submitter
from paperboy.store import subscriptions as sub_store
from paperboy.store.papers import upsert_records
from paperboy.templating import make_environment
from paperboy.web.app import create_app
from paperboy.web.deps import Site

KEY = b"k" * 32
SITE_URL = "https://papers.example.org"
CTX = Context(site_name="Lab Papers", public_url=SITE_URL, sender="Lab Papers <papers@example.org>", key=KEY)
ENV = make_environment()
FRIDAY = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 09:00 in New York, 15:00 in Berlin
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _paper(
    n: int, title: str, published: datetime, authors: tuple[str, ...] = ("A. Nyone",), cats=("cs.CL",)
) -> Paper:
    return Paper(
        arxiv_id=f"2611.{n:05d}",
        title=title,
        abstract=f"{title}. We study this carefully and report results. " * 3,
        authors=authors,
        categories=cats,
        primary_category=cats[0],
        published_at=published,
    )


def _load(engine: Engine) -> None:
    thursday = datetime(2026, 11, 26, 16, tzinfo=UTC)
    records = [
        Record(
            _paper(1, f"Trending results {XSS}", thursday - timedelta(days=5)),
            Featuring("2611.00001", date(2026, 11, 26), "huggingface", thursday, Submitter("hf"), upvotes=80),
        ),
        Record(_paper(2, "KV cache eviction for long contexts", thursday)),
        Record(_paper(3, "Speculative decoding with draft models", thursday + timedelta(hours=2))),
        Record(_paper(4, "Speculative decoding for medical reports", thursday + timedelta(hours=3))),
        Record(
            _paper(5, "Graph networks for molecules", thursday, authors=("Ada Lovelace",), cats=("q-bio.BM",))
        ),
        Record(_paper(6, "An old KV cache paper", thursday - timedelta(days=30))),
    ]
    with engine.begin() as conn:
        upsert_records(conn, records, FRIDAY - timedelta(days=1))


def _subscribe(
    engine: Engine,
    address: str,
    *,
    tz: str = "America/New_York",
    hour: int = 8,
    cadence: str = "daily",
    topics=(),
    authors=(),
    exclude=(),
) -> int:
    with engine.begin() as conn:
        sub = sub_store.insert_subscription(conn, email=address, now=FRIDAY - timedelta(days=10))
        sub_store.set_status(conn, sub.id, "active", FRIDAY - timedelta(days=10))
        sub_store.update_preferences(
            conn,
            sub.id,
            cadence=cadence,
            send_hour=hour,
            weekly_day=0,
            timezone=tz,
            max_papers=10,
            categories=[],
            authors=list(authors),
            exclude=list(exclude),
        )
        for q in topics:
            sub_store.add_topic(conn, sub.id, q, source="topic", now=FRIDAY - timedelta(days=10))
        return sub.id


def _count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


class _Inbox:
    """`raw`: every message's bytes as received (headers are checked there, as a mail client reads them);
    `messages`: the same parsed, for reading the bodies."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.original_content)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, _Inbox]]:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=browserkit.free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", inbox
    finally:
        controller.stop()


def test_a_due_digest_is_planned_once_with_its_outbox_row(sqlite_engine: Engine) -> None:
    _load(sqlite_engine)
    sub_id = _subscribe(
        sqlite_engine,
        "ada@example.org",
        topics=("KV cache", "speculative decoding -medical"),
        authors=("Ada Lovelace",),
    )
    report = plan_due(sqlite_engine, FRIDAY, CTX, ENV, embedder=HashEmbedder())
    assert (report.due, report.planned, report.mails, report.empty) == (1, 1, 1, 0)
    with sqlite_engine.connect() as conn:
        run = conn.execute(sa.select(digest_runs)).mappings().one()
        row = conn.execute(sa.select(outbox)).mappings().one()
    assert run["subscription_id"] == sub_id and run["period"] == "day:2026-11-27" and run["papers"] == 4
    assert row["run_id"] == run["id"] and row["status"] == "pending" and row["to_addr"] == "ada@example.org"
    assert row["message_id"] == f"<digest.{run['id']}.{sub_id}@papers.example.org>"
    text = row["text_body"]
    assert (
        text.index("Trending") < text.index("In your topics: KV cache") < text.index("New from Ada Lovelace")
    )
    assert "KV cache eviction for long contexts" in text and "Speculative decoding with draft models" in text
    assert "Speculative decoding for medical reports" not in text  # left out by the topic's -medical
    assert "An old KV cache paper" not in text  # not new in the window
    assert "https://arxiv.org/abs/2611.00002" in text and f"{SITE_URL}/papers/2611.00002" in text
    # the planner again, at once and an hour later: the period is planned already
    again = plan_due(sqlite_engine, FRIDAY + timedelta(hours=1), CTX, ENV, embedder=HashEmbedder())
    assert (again.due, again.already) == (0, 1)
    assert _count(sqlite_engine, digest_runs) == 1 and _count(sqlite_engine, outbox) == 1


def test_an_empty_digest_records_its_run_and_sends_nothing(sqlite_engine: Engine) -> None:
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "quiet@example.org", exclude=("results",), topics=("quantum gravity",))
    with sqlite_engine.begin() as conn:
        conn.execute(sa.update(subscriptions).values(categories=["hep-th"]))
    report = plan_due(sqlite_engine, FRIDAY, CTX, ENV)
    assert (report.planned, report.mails, report.empty) == (1, 0, 1)
    assert _count(sqlite_engine, outbox) == 0


def test_nobody_is_due_before_their_hour_or_at_the_weekend(sqlite_engine: Engine) -> None:
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "ny@example.org", hour=10)  # 10:00 New York = 15:00 UTC
    _subscribe(sqlite_engine, "auckland@example.org", tz="Pacific/Auckland")  # Saturday 03:00 there already
    assert plan_due(sqlite_engine, FRIDAY, CTX, ENV).due == 0
    assert plan_due(sqlite_engine, FRIDAY + timedelta(hours=1), CTX, ENV).due == 1


def test_dry_run_writes_nothing_and_counts_what_it_would(sqlite_engine: Engine) -> None:
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "ada@example.org", topics=("KV cache",))
    _subscribe(sqlite_engine, "bob@example.org", topics=("KV cache",))
    _subscribe(sqlite_engine, "quiet@example.org", topics=("quantum gravity",))
    with sqlite_engine.begin() as conn:  # nothing in hep-th this week: an empty digest
        conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.email == "quiet@example.org")
            .values(categories=["hep-th"])
        )
    report = plan_due(sqlite_engine, FRIDAY, CTX, ENV, dry_run=True, batch=2)  # two batches
    assert (report.due, report.planned, report.mails, report.empty) == (3, 3, 2, 1)
    assert len(report.previews) == 3 and sum(mail is not None for _, mail in report.previews) == 2
    assert _count(sqlite_engine, digest_runs) == 0 and _count(sqlite_engine, outbox) == 0
    real = plan_due(sqlite_engine, FRIDAY, CTX, ENV, batch=2)
    assert (real.due, real.planned, real.mails, real.empty) == (3, 3, 2, 1)  # what the dry run said


def test_across_a_dst_change_one_digest_per_local_weekday(sqlite_engine: Engine) -> None:
    """New York leaves DST on Sun Nov 1 2026; the planner runs every 15 minutes for ten days."""
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "daily@example.org", hour=8)
    _subscribe(sqlite_engine, "weekly@example.org", hour=8, cadence="weekly", tz="Europe/Berlin")
    start = datetime(2026, 10, 28, 4, 0, tzinfo=UTC)  # midnight in New York
    t = start
    while t < start + timedelta(days=10):
        plan_due(sqlite_engine, t, CTX, ENV)
        t += timedelta(minutes=15)
    with sqlite_engine.connect() as conn:
        rows = conn.execute(
            sa.select(subscriptions.c.email, digest_runs.c.period, digest_runs.c.planned_at).join(
                subscriptions, subscriptions.c.id == digest_runs.c.subscription_id
            )
        ).all()
    daily = sorted(p for e, p, _ in rows if e == "daily@example.org")
    assert daily == [
        f"day:{d}"
        for d in (
            "2026-10-28",
            "2026-10-29",
            "2026-10-30",
            "2026-11-02",
            "2026-11-03",
            "2026-11-04",
            "2026-11-05",
            "2026-11-06",
        )
    ]
    ny = ZoneInfo("America/New_York")
    for e, _, planned_at in rows:
        if e == "daily@example.org":
            local = planned_at.astimezone(ny)
            assert (local.hour, local.minute) == (
                8,
                0,
            )  # on the hour in local time, before and after the change
    weekly = sorted(p for e, p, _ in rows if e == "weekly@example.org")
    assert weekly == ["week:2026-W44", "week:2026-W45"]


def test_preview_renders_without_writing(sqlite_engine: Engine) -> None:
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "ada@example.org", topics=("KV cache",))
    with sqlite_engine.connect() as conn:
        sub = sub_store.get_by_email(conn, "ada@example.org")
    assert sub is not None
    period, mail = preview(sqlite_engine, sub, FRIDAY, CTX, ENV)
    assert period is not None and mail is not None and "KV cache eviction" in mail.text
    assert _count(sqlite_engine, digest_runs) == 0


def test_the_mail_that_arrives(sqlite_engine: Engine, smtp: tuple[str, _Inbox]) -> None:
    url, inbox = smtp
    _load(sqlite_engine)
    sub_id = _subscribe(sqlite_engine, "ada@example.org", topics=("KV cache",))
    with SmtpMailer(url) as mailer:
        result = digest_round(sqlite_engine, FRIDAY, CTX, ENV, mailer, lambda: FRIDAY, rate=100)
        assert result.send is not None and result.send.sent == 1
        again = digest_round(sqlite_engine, FRIDAY, CTX, ENV, mailer, lambda: FRIDAY, rate=100)
        assert again.send is not None and again.send.sent == 0  # once per period
    (msg,) = inbox.messages
    (raw,) = inbox.raw
    # the headers as a mail client reads them: the bytes on the wire, plain ASCII, nothing RFC 2047-encoded
    assert_plain_headers(raw)
    assert raw_field(raw, "To") == b"To: ada@example.org\r\n"
    assert raw_field(raw, "From") == b"From: Lab Papers <papers@example.org>\r\n"
    assert raw_field(raw, "Subject").startswith(b"Subject: Lab Papers: ")
    assert re.fullmatch(
        rb"Message-ID: <digest\.\d+\.\d+@papers\.example\.org>\r\n", raw_field(raw, "Message-ID")
    )
    assert raw_field(raw, "List-Unsubscribe-Post") == b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    assert raw_field(raw, "List-Id") == b"List-Id: Lab Papers digest <digest.papers.example.org>\r\n"
    unsubscribe = raw_field(raw, "List-Unsubscribe")
    assert re.fullmatch(
        rb"List-Unsubscribe: <https://papers\.example\.org/unsubscribe\?t=[A-Za-z0-9_.\-]+>,\r\n"
        rb" <mailto:papers@example\.org\?subject=unsubscribe>\r\n",
        unsubscribe,
    ), unsubscribe
    links = re.findall(r"<([^>]+)>", unfolded(unsubscribe))
    assert links[0].startswith(f"{SITE_URL}/unsubscribe?t=") and links[1].startswith(
        "mailto:papers@example.org"
    )
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "KV cache eviction for long contexts" in html and "KV cache eviction for long contexts" in text
    assert_no_markup_from_data(html, "digest html")
    assert "&lt;script&gt;" in html  # the hostile title is text in the mail
    assert not re.search(r"<img\b", html)  # no images at all: readable with images off

    # RFC 8058: the header's link, POSTed with the one-click body and no cookies, unsubscribes at once
    app = create_app(
        sqlite_engine, site=Site("Lab Papers", SITE_URL, 7), clock=lambda: FRIDAY, secret_key=KEY
    )
    client = TestClient(app, base_url=SITE_URL)
    path = links[0][len(SITE_URL) :]
    page = client.get(path)
    assert page.status_code == 200
    with sqlite_engine.connect() as conn:
        assert (
            conn.execute(sa.select(subscriptions.c.status).where(subscriptions.c.id == sub_id)).scalar_one()
            == "active"
        )
    client = TestClient(app, base_url=SITE_URL)  # a mail client's POST: no cookies at all
    assert not client.cookies
    r = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    with sqlite_engine.connect() as conn:
        assert (
            conn.execute(sa.select(subscriptions.c.status).where(subscriptions.c.id == sub_id)).scalar_one()
            == "unsubscribed"
        )
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert 400 <= client.post(tampered, content=b"List-Unsubscribe=One-Click").status_code < 500


def test_an_unsubscribe_between_planning_and_sending_sends_nothing(
    sqlite_engine: Engine, smtp: tuple[str, _Inbox]
) -> None:
    url, inbox = smtp
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "ada@example.org", topics=("KV cache",))
    _subscribe(sqlite_engine, "bob@example.org", topics=("KV cache",))
    assert plan_due(sqlite_engine, FRIDAY, CTX, ENV).mails == 2
    with sqlite_engine.begin() as conn:
        conn.execute(
            sa.update(subscriptions)
            .where(subscriptions.c.email == "bob@example.org")
            .values(status="unsubscribed")
        )
    with SmtpMailer(url) as mailer:
        result = digest_round(sqlite_engine, FRIDAY, CTX, ENV, mailer, lambda: FRIDAY, rate=100)
    assert result.send is not None and (result.send.sent, result.send.cancelled) == (1, 1)
    assert [m["To"] for m in inbox.messages] == ["ada@example.org"]


def _sent_mail(engine: Engine, url: str, inbox: _Inbox, as_of: datetime, now: datetime) -> bytes:
    with SmtpMailer(url) as mailer:
        result = digest_round(engine, as_of, CTX, ENV, mailer, lambda: now, rate=100)
    assert result.send is not None and result.send.sent >= 1
    return inbox.raw[-1]


def _status(engine: Engine, sub_id: int) -> str:
    with engine.connect() as conn:
        stmt = sa.select(subscriptions.c.status).where(subscriptions.c.id == sub_id)
        return str(conn.execute(stmt).scalar_one())


def _one_click(engine: Engine, key: bytes, at: datetime, url: str) -> int:
    """A mail client's RFC 8058 POST to `url` (no cookies), to the hub running with `key` at `at`."""
    app = create_app(engine, site=Site("Lab Papers", SITE_URL, 7), clock=lambda: at, secret_key=key)
    client = TestClient(app, base_url=SITE_URL)
    r = client.post(
        url[len(SITE_URL) :],
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return r.status_code


def test_an_unsubscribe_link_never_expires_and_a_new_secret_key_revokes_it(
    sqlite_engine: Engine, smtp: tuple[str, _Inbox]
) -> None:
    url, inbox = smtp
    _load(sqlite_engine)
    ada = _subscribe(sqlite_engine, "ada@example.org", topics=("KV cache",))
    raw = _sent_mail(sqlite_engine, url, inbox, FRIDAY, FRIDAY)
    link = re.findall(r"<([^>]+)>", unfolded(raw_field(raw, "List-Unsubscribe")))[0]
    ten_years = FRIDAY + timedelta(days=3653)
    assert _one_click(sqlite_engine, b"a-new-secret-key-after-a-leak-000000", ten_years, link) == 400
    assert _status(sqlite_engine, ada) == "active"
    assert _one_click(sqlite_engine, KEY, ten_years, link) == 200  # ten years on, the same link still works
    assert _status(sqlite_engine, ada) == "unsubscribed"
    # a link made when unsubscribe links still carried a 90-day expiry works too
    bob = _subscribe(sqlite_engine, "bob@example.org")
    with sqlite_engine.connect() as conn:
        found = sub_store.get(conn, bob)
    assert found is not None
    old = signing.sign(KEY, "unsubscribe", bob, found.token_version, FRIDAY + timedelta(days=90))
    assert _one_click(sqlite_engine, KEY, ten_years, f"{SITE_URL}/unsubscribe?t={old}") == 200
    assert _status(sqlite_engine, bob) == "unsubscribed"


def test_a_replayed_digest_carries_links_that_count_from_when_it_is_sent(
    sqlite_engine: Engine, smtp: tuple[str, _Inbox]
) -> None:
    url, inbox = smtp
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "ada@example.org", topics=("KV cache",))
    sent_at = FRIDAY + timedelta(days=200)  # `digest send --as-of FRIDAY`, run 200 days later
    raw = _sent_mail(sqlite_engine, url, inbox, FRIDAY, sent_at)
    (msg,) = inbox.messages
    manage = re.search(
        r"https://papers\.example\.org/subscription\?t=[A-Za-z0-9_.\-]+",
        msg.get_body(("plain",)).get_content(),
    )
    assert manage is not None
    app = create_app(
        sqlite_engine,
        site=Site("Lab Papers", SITE_URL, 7),
        clock=lambda: sent_at + timedelta(days=1),
        secret_key=KEY,
    )
    page = TestClient(app, base_url=SITE_URL).get(manage.group(0)[len(SITE_URL) :])
    assert page.status_code == 200, page.text[:300]  # made at send time: good for 90 days from then
    assert b"List-Unsubscribe:" in raw


def test_a_non_ascii_site_name_and_host_go_out_as_valid_ascii_headers(
    sqlite_engine: Engine, smtp: tuple[str, _Inbox]
) -> None:
    url, inbox = smtp
    _load(sqlite_engine)
    _subscribe(sqlite_engine, "ada@example.org", topics=("KV cache",))
    ctx = Context(
        site_name="Łódź Papers",
        public_url="https://bücher.example",
        sender="Łódź Papers <papers@example.org>",
        key=KEY,
    )
    with SmtpMailer(url) as mailer:
        digest_round(sqlite_engine, FRIDAY, ctx, ENV, mailer, lambda: FRIDAY, rate=100)
    (raw,) = inbox.raw
    assert_plain_headers(raw)
    assert re.fullmatch(
        rb"List-Unsubscribe: <https://xn--bcher-kva\.example/unsubscribe\?t=[A-Za-z0-9_.\-]+>,\r\n"
        rb" <mailto:papers@example\.org\?subject=unsubscribe>\r\n",
        raw_field(raw, "List-Unsubscribe"),
    )
    list_id = unfolded(raw_field(raw, "List-Id"))
    assert list_id.endswith(" <digest.xn--bcher-kva.example>") and list_id.startswith("=?utf-8?")
    assert str(make_header(decode_header(list_id))) == "Łódź Papers digest <digest.xn--bcher-kva.example>"
    sender = unfolded(raw_field(raw, "From"))
    assert str(make_header(decode_header(sender))) == "Łódź Papers <papers@example.org>"
    assert re.fullmatch(
        rb"Message-ID: <digest\.\d+\.\d+@xn--bcher-kva\.example>\r\n", raw_field(raw, "Message-ID")
    )
