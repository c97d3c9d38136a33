"""The XSS corpus (test_security.XSS_CORPUS) in mail: hostile paper titles, abstracts and author names, a
subscriber's hostile topics and followed authors, and every member-supplied value of the other mails'
templates.

The HTML part of every mail carries no script, no event-handler attribute and no `javascript:` URL (the same
checker as the pages: `test_security.assert_no_markup_from_data`); the text part is plain text: the hostile
strings appear as typed, never as HTML entities, and no markup is added around them. Digests go through the
real planner into the outbox and out through `build_message`, as the sender sends them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import members
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from jinja2 import meta
from searchkit import HashEmbedder
from sqlalchemy.engine import Engine
from test_security import XSS_CORPUS, assert_no_markup_from_data

from paperboy.db.schema import outbox
from paperboy.digest.plan import Context, plan_due
from paperboy.digest.send import build_message
from paperboy.models import Featuring, Paper, Record, Submitter
from paperboy.store import subscriptions as sub_store
from paperboy.store.outbox import OutboxMessage
from paperboy.store.papers import upsert_records
from paperboy.templating import make_environment
from paperboy.web.app import create_app
from paperboy.web.security import RateLimits

KEY = b"mail-secret-key-".ljust(32, b"k")
SITE_URL = "https://papers.example.org"
CTX = Context(site_name="Lab Papers", public_url=SITE_URL, sender="Lab Papers <papers@example.org>", key=KEY)
FRIDAY = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 09:00 in New York: a daily digest at 8 is due
THURSDAY = datetime(2026, 11, 26, 16, tzinfo=UTC)
CORPUS = " ".join(XSS_CORPUS)
# what the text part of a mail must not hold: entities (an escaped rendering) or our own HTML (the wrong
# template)
ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-f]+);", re.IGNORECASE)


def _hostile_papers() -> list[Record]:
    trending = Paper(
        arxiv_id="2611.00001",
        title=f"Trending {XSS_CORPUS[0]} results {XSS_CORPUS[3]}",
        abstract=f"Sparse attention. {CORPUS}",
        authors=tuple(f"Author {p}" for p in XSS_CORPUS),
        categories=("cs.CL",),
        primary_category="cs.CL",
        published_at=THURSDAY - timedelta(days=3),
    )
    fresh = Paper(
        arxiv_id="2611.00002",
        title=f"KV cache eviction {XSS_CORPUS[2]}",
        abstract=f"KV cache eviction for long contexts. {CORPUS}",
        authors=(f"Author {XSS_CORPUS[0]}", f"Ada {XSS_CORPUS[5]}"),
        categories=("cs.CL",),
        primary_category="cs.CL",
        published_at=THURSDAY,
    )
    by_author = Paper(
        arxiv_id="2611.00003",
        title=f"Graph networks {XSS_CORPUS[6]}",
        abstract=f"Molecules. {XSS_CORPUS[7]}",
        authors=(f"Author {XSS_CORPUS[1]}",),
        categories=("cs.CL",),
        primary_category="cs.CL",
        published_at=THURSDAY + timedelta(hours=1),
    )
    featured = Featuring(
        "2611.00001", date(2026, 11, 26), "huggingface", THURSDAY, Submitter("hf"), upvotes=80
    )
    return [Record(trending, featured), Record(fresh), Record(by_author)]


def _parts(msg: EmailMessage) -> dict[str, str]:
    """The mail's parts by content type, decoded (as a mail client shows them)."""
    out = {}
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            out[part.get_content_type()] = part.get_content()
    return out


def assert_mail_inert(msg: EmailMessage, where: str, hostile: list[str]) -> dict[str, str]:
    parts = _parts(msg)
    assert set(parts) == {"text/plain", "text/html"}, (where, set(parts))
    html, text = parts["text/html"], parts["text/plain"]
    assert_no_markup_from_data(html, where)  # parsed: no event handler, no javascript: in any attribute
    for tag in ("<script", "<img", "<svg", "<iframe", "<style"):
        assert tag not in html.lower(), (where, tag)
    # plain text: the hostile strings as typed, never escaped, and no markup of ours
    for value in hostile:
        assert value in text, (where, value)
    assert not ENTITY.search(text), (where, ENTITY.search(text))
    ours = re.search(
        r"<!doctype|<(div|p|h1|h2|hr|body|table)\b|<a href=\"https?:|\sstyle=", text, re.IGNORECASE
    )
    assert not ours, (where, ours)
    return parts


def _row(engine: Engine, **where: str) -> OutboxMessage:
    stmt = sa.select(outbox)
    for name, value in where.items():
        stmt = stmt.where(outbox.c[name] == value)
    with engine.connect() as conn:
        r = conn.execute(stmt).mappings().one()
    return OutboxMessage(
        id=r["id"],
        kind=r["kind"],
        to_addr=r["to_addr"],
        message_id=r["message_id"],
        subject=r["subject"],
        text_body=r["text_body"],
        html_body=r["html_body"],
        status=r["status"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        created_at=r["created_at"],
        headers=dict(r["headers"] or {}),
    )


def test_a_digest_of_hostile_papers_topics_and_authors_is_inert(sqlite_engine: Engine) -> None:
    """Planned for real (trending, a topic section, an author section), read back from the outbox and built
    into the MIME message the sender sends."""
    with sqlite_engine.begin() as conn:
        upsert_records(conn, _hostile_papers(), FRIDAY - timedelta(days=1))
        sub = sub_store.insert_subscription(conn, email="ada@example.org", now=FRIDAY - timedelta(days=10))
        sub_store.set_status(conn, sub.id, "active", FRIDAY - timedelta(days=10))
        sub_store.update_preferences(
            conn,
            sub.id,
            cadence="daily",
            send_hour=8,
            weekly_day=0,
            timezone="America/New_York",
            max_papers=10,
            categories=[],
            authors=[f"Author {XSS_CORPUS[1]}"],
            exclude=[],
        )
        sub_store.add_topic(
            conn, sub.id, f"KV cache {XSS_CORPUS[2]}", source="topic", now=FRIDAY - timedelta(days=10)
        )
    report = plan_due(sqlite_engine, FRIDAY, CTX, make_environment(), embedder=HashEmbedder())
    assert report.mails == 1, report
    row = _row(sqlite_engine, kind="digest")
    parts = assert_mail_inert(
        build_message(row, CTX.sender),
        "digest",
        [
            f"Trending {XSS_CORPUS[0]} results {XSS_CORPUS[3]}",  # a title
            f"KV cache eviction {XSS_CORPUS[2]}",  # a title in the topic's section
            f"In your topics: KV cache {XSS_CORPUS[2]}",  # the subscriber's topic
            f"New from Author {XSS_CORPUS[1]}",  # the followed author
            f"Author {XSS_CORPUS[0]}",  # an author line
        ],
    )
    html = parts["text/html"]
    assert "Trending &lt;script&gt;alert(1)&lt;/script&gt; results" in html  # shown, as text
    assert all(h.startswith(("https://", "mailto:")) for h in re.findall(r'href="([^"]*)"', html))


def test_a_confirmation_mail_for_a_hostile_topic_is_inert(sqlite_engine: Engine) -> None:
    """Through the real subscribe form, by a signed-in member (so the mail names the account too)."""
    app = create_app(
        sqlite_engine,
        site=members.webhub.SITE,
        clock=lambda: members.webhub.NOW,
        hasher=members.FAST_HASHER,
        secret_key=KEY,
        rate_limits=RateLimits(subscribe="100 per hour", signup="100 per hour"),
    )
    with TestClient(app, base_url="https://testserver") as c:
        members.signup(c, "ada")
        topic = XSS_CORPUS[1] + " " + XSS_CORPUS[2]
        r = c.post(
            "/subscribe",
            data={"email": "ada@example.org", "topic": topic, "csrf_token": members.csrf(c, "/subscribe")},
        )
        assert r.status_code == 200, r.text
        assert_no_markup_from_data(r.text, "the subscribe page")
    row = _row(sqlite_engine, kind="confirm")
    assert_mail_inert(build_message(row, "Lab <papers@example.org>"), "confirmation", [topic, "ada"])


# --- every other mail template, every member-supplied value hostile ----------------------------------------

URLISH = re.compile(
    r"(^|_)(link|url)$"
)  # links we make (our public URL, urlencoded tokens): not member input


def _mail_templates() -> list[str]:
    env = make_environment()
    names = env.list_templates(filter_func=lambda n: n.startswith("email/") and n.endswith(".html"))
    return sorted(n for n in names if not n.startswith(("email/_", "email/digest")))  # digests: above


@pytest.mark.parametrize("name", _mail_templates())
def test_every_mail_template_renders_hostile_values_inert(name: str) -> None:
    """Each of the mail's variables (found by Jinja's own parser) set to a payload, in every branch the
    template has (`mail == "..."`); its text twin checked to be plain."""
    env = make_environment()
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    text_name = name.removesuffix(".html") + ".txt"
    text_source = env.loader.get_source(env, text_name)[0]  # type: ignore[union-attr]
    variables = meta.find_undeclared_variables(env.parse(source)) | meta.find_undeclared_variables(
        env.parse(text_source)
    )
    branches = set(re.findall(r"""\b(\w+) == ["'](\w+)["']""", source + text_source))
    cases: list[dict[str, str]] = [{}]
    for var, value in sorted(branches):
        cases.append({var: value})
    for n, case in enumerate(cases):
        hostile = XSS_CORPUS[n % len(XSS_CORPUS)]
        context: dict[str, object] = {}
        for var in variables:
            context[var] = f"{SITE_URL}/x?t=abc" if URLISH.search(var) else hostile
        context["site"] = {"name": hostile}
        context["categories"] = [hostile, "cs.LG"]
        context.update(case)
        html = env.get_template(name).render(**context)
        text = env.get_template(text_name).render(**context)
        where = f"{name} {case}"
        assert_no_markup_from_data(html, where)
        assert "<script" not in html.lower(), where
        assert hostile in text, where  # the site's name at least: as typed
        assert not ENTITY.search(text), (where, ENTITY.search(text))
