"""The "For you" feed, end to end through the web app on SQLite and PostgreSQL: papers ranked for a member
from what they upvote, save and follow, each card saying why; "Not interested" and "Less like this" change
the next ranking at once (forms with and without htmx, and the API); the JSON twin and the private Atom
feed; a member with no history sees trending with a prompt; the digest's "For you" section. Vectors are made
here: three clusters of papers in 16 dimensions ("kv cache", "robot grasping", "protein folding"), written to
the embeddings table of a real index's model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import feedparser
import members
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy import accounts
from paperboy.db.schema import feed_feedback, follows, votes
from paperboy.digest.plan import Context, plan_due
from paperboy.models import Featuring, Paper, Record
from paperboy.search.hybrid import Searcher
from paperboy.search.vector import VectorIndex
from paperboy.store import embeddings as store_embeddings
from paperboy.store import subscriptions as sub_store
from paperboy.store import users as user_store
from paperboy.store.papers import upsert_records
from paperboy.templating import make_environment
from paperboy.web.app import create_app
from paperboy.web.deps import Site
from paperboy.web.security import RateLimits

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODEL = "test/clusters-16"
DIM = 16
SITE = Site(name="Lab Papers", public_url="https://papers.example.org", trending_days=7)
CLUSTERS = {"kv": "KV Cache", "robot": "Robot Grasping", "protein": "Protein Folding"}
PER_CLUSTER = 12


def _pid(cluster: int, n: int) -> str:
    return f"2611.{cluster + 1}{n:04d}"


def _corpus() -> tuple[list[Record], dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    centres = np.eye(DIM, dtype=np.float32)[:3] * 3.0
    records: list[Record] = []
    vectors: dict[str, np.ndarray] = {}
    for c, (key, topic) in enumerate(CLUSTERS.items()):
        for n in range(PER_CLUSTER):
            pid = _pid(c, n)
            day = date(2026, 11, 19) - timedelta(days=n)
            authors = (
                f"{topic.split()[0]} Author{n}",
                "Shared Coauthor" if n % 4 == 0 else f"Other {key}{n}",
            )
            paper = Paper(
                arxiv_id=pid,
                title=f"{topic} study number {n}",
                abstract=f"We study {topic.lower()} in setting {n}.",
                authors=authors,
                categories=("cs.LG",),
                primary_category="cs.LG",
                published_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
            )
            upvotes = 50 if key == "protein" else n  # protein papers are the hub's trending ones
            records.append(
                Record(paper, Featuring(pid, day, "huggingface", paper.published_at, None, upvotes))
            )
            v = centres[c] + rng.normal(0, 0.6, DIM).astype(np.float32)
            vectors[pid] = (v / np.linalg.norm(v)).astype(np.float32)
    return records, vectors


def _load(engine: Engine) -> None:
    records, vectors = _corpus()
    with engine.begin() as conn:
        upsert_records(conn, records, NOW)
        rows = [(pid, v.astype("<f4").tobytes(), "h") for pid, v in vectors.items()]
        store_embeddings.save(conn, MODEL, DIM, rows, NOW)


@pytest.fixture
def hub(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    _load(engine)
    index = VectorIndex.create(tmp_path / "vectors.usearch", DIM, MODEL)
    app = create_app(
        engine,
        site=SITE,
        clock=lambda: NOW,
        hasher=members.FAST_HASHER,
        rate_limits=RateLimits(signup="1000 per minute", vote="1000 per minute"),
        searcher=Searcher(None, index),
        secret_key=b"k" * 32,
    )
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def _csrf(c: TestClient) -> str:
    return members.csrf(c, "/papers/for-you")


def _upvote(c: TestClient, pid: str) -> None:
    r = c.post(f"/papers/{pid}/upvote", data={"csrf_token": _csrf(c), "next": "/"}, follow_redirects=False)
    assert r.status_code == 303


def _feed(c: TestClient) -> list[dict[str, object]]:
    r = c.get("/api/papers/for-you", params={"limit": 30})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _ids(items: list[dict[str, object]]) -> list[str]:
    return [i["paper"]["id"] for i in items]  # type: ignore[index]


def _token(engine: Engine, username: str) -> str:
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, username)
        assert user is not None
        return accounts.create_token(conn, user, "feed", NOW).secret


def test_signed_out_is_sent_to_sign_in_and_the_api_wants_a_token(hub: TestClient) -> None:
    r = hub.get("/papers/for-you", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = hub.get("/api/papers/for-you")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


def test_a_new_member_sees_trending_with_a_prompt(hub: TestClient) -> None:
    members.signup(hub, "newbie")
    page = hub.get("/papers/for-you")
    assert page.status_code == 200
    assert "Make this feed yours" in page.text
    body = hub.get("/api/papers/for-you", params={"limit": 12}).json()
    assert body["personal"] is False
    assert {i["reason"]["kind"] for i in body["items"]} == {"trending"}
    assert all(pid.startswith("2611.3") for pid in _ids(body["items"]))  # the protein papers have the upvotes


def test_upvotes_rank_similar_papers_first_and_each_card_says_why(hub: TestClient) -> None:
    members.signup(hub, "ada")
    for n in (1, 2, 3):
        _upvote(hub, _pid(0, n))  # three kv-cache papers
    items = _feed(hub)
    top = _ids(items)[:8]
    assert all(pid.startswith("2611.1") for pid in top), top  # more kv-cache papers, not trending protein
    assert not {_pid(0, n) for n in (1, 2, 3)} & set(_ids(items))  # what they upvoted is not suggested again
    reason = items[0]["reason"]
    assert reason["kind"] in ("similar", "author")  # type: ignore[index]
    assert reason["text"]  # type: ignore[index]
    page = hub.get("/papers/for-you").text
    assert 'class="card-why"' in page
    assert "KV Cache study number" in page.split('class="card-why"')[1][:300]  # names the paper it is like
    assert "Make this feed yours" not in page


def test_not_interested_and_less_like_this_change_the_next_ranking(hub: TestClient, engine: Engine) -> None:
    members.signup(hub, "ada")
    _upvote(hub, _pid(0, 1))
    _upvote(hub, _pid(1, 1))  # kv cache and robots, equally
    first = _ids(_feed(hub))
    top = first[0]
    token = _csrf(hub)
    r = hub.post(
        f"/papers/{top}/not-interested",
        data={"csrf_token": token, "next": "/papers/for-you"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/papers/for-you"
    second = _ids(_feed(hub))
    assert top not in second  # gone at once

    robots = [p for p in second if p.startswith("2611.2")]
    robot_ranks = [second.index(p) for p in robots[:5]]
    # htmx: the card is swapped for a line with Undo
    r = hub.post(
        f"/papers/{robots[0]}/less-like-this",
        data={"csrf_token": token, "next": "/papers/for-you"},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "Undo" in r.text and "feedback/undo" in r.text
    third = _ids(_feed(hub))
    assert robots[0] not in third
    after = [third.index(p) for p in robots[1:5]]
    assert sum(after) / len(after) > sum(robot_ranks[1:]) / len(robot_ranks[1:])  # robot papers moved down
    kv_top = [p for p in third[:6]]
    assert all(p.startswith("2611.1") for p in kv_top), kv_top

    r = hub.post(f"/papers/{top}/feedback/undo", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and top in r.text and "Not interested" in r.text  # the card is back
    assert top in _ids(_feed(hub))
    with engine.connect() as conn:
        kinds = dict(conn.execute(sa.select(feed_feedback.c.arxiv_id, feed_feedback.c.kind)).all())
    assert kinds == {robots[0]: "less"}


def test_feedback_forms_need_the_csrf_token_and_a_real_paper(hub: TestClient, engine: Engine) -> None:
    members.signup(hub, "ada")
    r = hub.post(f"/papers/{_pid(0, 1)}/not-interested", data={"next": "/"}, follow_redirects=False)
    assert r.status_code == 403
    r = hub.post("/papers/2611.99999/not-interested", data={"csrf_token": _csrf(hub)}, follow_redirects=False)
    assert r.status_code == 404
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(feed_feedback)).scalar_one() == 0


def test_the_api_takes_feedback_with_a_token(hub: TestClient, engine: Engine) -> None:
    members.signup(hub, "ada")
    _upvote(hub, _pid(0, 1))
    secret = _token(engine, "ada")
    bot = TestClient(hub.app, base_url="https://testserver")
    auth = {"Authorization": f"Bearer {secret}"}
    top = _ids(bot.get("/api/papers/for-you", headers=auth).json()["items"])[0]
    r = bot.put(f"/api/papers/{top}/feedback", json={"kind": "hide"}, headers=auth)
    assert r.status_code == 200 and r.json() == {"id": top, "kind": "hide"}
    assert top not in _ids(bot.get("/api/papers/for-you", headers=auth).json()["items"])
    assert bot.put(f"/api/papers/{top}/feedback", json={"kind": "never"}, headers=auth).status_code == 400
    assert bot.put(f"/api/papers/{top}/feedback", json={"kind": "hide"}).status_code == 401
    assert bot.delete(f"/api/papers/{top}/feedback", headers=auth).json() == {"id": top, "kind": None}
    assert top in _ids(bot.get("/api/papers/for-you", headers=auth).json()["items"])


def test_a_followed_author_ranks_first_and_is_named(hub: TestClient, engine: Engine) -> None:
    members.signup(hub, "ada")
    _upvote(hub, _pid(0, 1))
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, "ada")
        assert user is not None
        conn.execute(
            sa.insert(follows).values(
                user_id=user.id,
                kind="author",
                target_key="robot author5",
                target_name="Robot Author5",
                in_digest=True,
                created_at=NOW,
            )
        )
    items = _feed(hub)
    assert items[0]["paper"]["id"] == _pid(1, 5)  # type: ignore[index]
    assert items[0]["reason"]["kind"] == "author"  # type: ignore[index]
    assert "Robot Author5" in items[0]["reason"]["text"]  # type: ignore[index]


def test_the_private_atom_feed_needs_its_signed_address(hub: TestClient) -> None:
    members.signup(hub, "ada")
    _upvote(hub, _pid(0, 1))
    page = hub.get("/papers/for-you").text
    start = page.index('type="application/atom+xml"')
    href = page[page.index('href="', start) + 6 : page.index('"', page.index('href="', start) + 6)]
    url = urlparse(href.replace("&amp;", "&"))
    assert url.path == "/papers/for-you/feed.atom" and parse_qs(url.query)["t"]
    reader = TestClient(hub.app, base_url="https://testserver")  # a feed reader: no cookie
    r = reader.get(url.path + "?" + url.query)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    assert "no-store" in r.headers["cache-control"]
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo and parsed.feed.title.startswith("For ada")
    assert parsed.entries and parsed.entries[0].link.startswith("https://papers.example.org/papers/2611.1")
    assert reader.get(url.path).status_code == 400
    token = parse_qs(url.query)["t"][0]
    assert reader.get(url.path, params={"t": token[:-2] + "xx"}).status_code == 400


def test_the_digest_of_a_member_has_a_for_you_section_that_says_why(hub: TestClient, engine: Engine) -> None:
    members.signup(hub, "ada", email="ada@example.org")
    for n in (8, 9):  # older kv-cache papers, before the digest's week
        _upvote(hub, _pid(0, n))
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, "ada")
        assert user is not None
        sub = sub_store.insert_subscription(conn, email="ada@example.org", now=NOW)
        sub_store.set_status(conn, sub.id, "active", NOW)
        sub_store.update_preferences(
            conn,
            sub.id,
            cadence="weekly",
            send_hour=8,
            weekly_day=0,
            timezone="UTC",
            max_papers=8,
            categories=[],
            authors=[],
            exclude=[],
        )
        sub_store.link_user(conn, sub.id, user.id)
    monday = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    ctx = Context(
        site_name="Lab Papers", public_url=SITE.public_url, sender="p <p@example.org>", key=b"k" * 32
    )
    report = plan_due(engine, monday, replace(ctx, model=MODEL), make_environment(), dry_run=True)
    ((_, mail),) = report.previews
    assert mail is not None
    text = mail.text
    assert "For you" in text and text.index("Trending") < text.index("For you")
    section = text[text.index("For you") :]
    assert "KV Cache study number" in section
    assert "KV Cache study number 8" in section or "KV Cache study number 9" in section  # the why names one
    assert "(Like" in section or "(By" in section
    # a member who upvoted nothing gets no such section: the other sections already hold what is trending
    with engine.begin() as conn:
        conn.execute(sa.delete(votes))
    again = plan_due(engine, monday, replace(ctx, model=MODEL), make_environment(), dry_run=True)
    ((_, other),) = again.previews
    assert other is not None and "For you" not in other.text


def test_a_shared_author_is_named_as_the_paper_prints_it(hub: TestClient) -> None:
    members.signup(hub, "ada")
    _upvote(hub, _pid(0, 4))  # by "KV Author4" and "Shared Coauthor"
    items = _feed(hub)
    by_author = [i for i in items if i["reason"]["kind"] == "author"]  # type: ignore[index]
    assert by_author, [i["reason"] for i in items]  # type: ignore[index]
    texts = [str(i["reason"]["text"]) for i in by_author]  # type: ignore[index]
    assert all("Shared Coauthor" in t and "KV Cache study number 4" in t for t in texts), texts
    coauthored = {_pid(c, n) for c in range(3) for n in (0, 4, 8)} - {_pid(0, 4)}  # the seed is not shown
    assert {i["paper"]["id"] for i in by_author} <= coauthored  # type: ignore[index]


def test_the_feed_exports_as_bibtex_the_papers_it_shows(hub: TestClient) -> None:
    import bibtexparser

    members.signup(hub, "ada")
    _upvote(hub, _pid(0, 1))
    page = hub.get("/papers/for-you").text
    assert 'href="/papers/for-you?format=bib"' in page
    shown = _ids(_feed(hub))[:30]
    r = hub.get("/papers/for-you", params={"format": "bib"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-bibtex")
    assert "attachment" in r.headers["content-disposition"]
    library = bibtexparser.parse_string(r.text)
    assert [e.fields_dict["eprint"].value for e in library.entries] == shown
    assert hub.get("/papers/for-you", params={"format": "docx"}).status_code == 400


def test_no_cache_keeps_a_members_feed() -> None:
    """The private Atom feed is fetched without a cookie, like a public feed: neither a proxy nor the page
    cache may keep it (its address is its only key), nor the page or its JSON."""
    from paperboy.web import caching

    for path in ("/papers/for-you/feed.atom", "/papers/for-you", "/api/papers/for-you"):
        assert caching.policy(path, anonymous=True) == caching.NO_STORE, path
    assert caching.policy("/papers/trending/feed.atom", anonymous=True) == caching.PUBLIC_FEED
