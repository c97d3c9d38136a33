"""Author pages (issue 11, point 1): every author name links to /authors/{name}; the page lists that
person's papers newest first from the paper_authors index (filled on write and by migration 0009, on SQLite
and PostgreSQL), with a JSON twin, an Atom feed and Follow (a POST with CSRF: a follows row, which the
digest's composition then follows)."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import feedparser
import members
import numpy as np
import pytest
import sqlalchemy as sa
import webhub
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import NOW, A, B

from paperboy.db import MIGRATIONS_DIR, upgrade
from paperboy.db.schema import follows, paper_authors
from paperboy.digest import followed as digest_followed
from paperboy.digest.compose import Pool, compose
from paperboy.digest.render import Links, render
from paperboy.digest.schedule import Due
from paperboy.models import Featuring, Paper, Record, StoredPaper
from paperboy.store import authors as author_store
from paperboy.store import subscriptions as sub_store
from paperboy.store import users as user_store
from paperboy.store.papers import upsert_records
from paperboy.templating import make_environment

ODD = "2503.07777"
SLASHED = "AC/DC Researcher"
UNICODE = 'Zoë O\'Brien-Łukasz "Q" 山田'


def _odd_record() -> Record:
    paper = Paper(
        arxiv_id=ODD,
        title="Names That Need Escaping",
        abstract="Slashes, quotes and letters beyond ASCII.",
        authors=(SLASHED, UNICODE, "Ada  Lovelace"),
        published_at=datetime(2025, 3, 5, 8, tzinfo=UTC),
    )
    return Record(paper, Featuring(ODD, date(2025, 3, 5), "huggingface", None, None, upvotes=2))


def _client(engine: Engine) -> TestClient:
    c = members.client(engine)
    with engine.begin() as conn:
        upsert_records(conn, [_odd_record()], NOW)
    return c


def _path(name: str) -> str:
    return "/authors/" + quote(name, safe="")


# --- the store and the migration ------------------------------------------------------------------------


def _rows(engine: Engine, arxiv_id: str) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        stmt = (
            sa.select(paper_authors.c.position, paper_authors.c.name, paper_authors.c.name_key)
            .where(paper_authors.c.arxiv_id == arxiv_id)
            .order_by(paper_authors.c.position)
        )
        return [tuple(r) for r in conn.execute(stmt)]  # type: ignore[misc]


def test_author_rows_follow_every_paper_write(engine: Engine) -> None:
    webhub.load(engine)
    assert _rows(engine, B) == [(0, "Solo Author", "solo author")]
    assert len(_rows(engine, A)) == len(webhub.A_AUTHORS)
    with engine.connect() as conn:
        assert author_store.count_papers_by(conn, "F. ILLER") == webhub.MANY
        assert author_store.count_papers_by(conn, "  ada   lovelace ") == 1
        assert author_store.count_papers_by(conn, "Ada") == 0  # an exact name, not a substring
    # A new version with other authors replaces the rows; a name listed twice counts once.
    changed = Paper(
        arxiv_id=B,
        title="A Single-Author Note on Benchmarks",
        abstract="v2",
        authors=("Solo Author", "New Person", "solo  AUTHOR"),
        version=2,
    )
    with engine.begin() as conn:
        upsert_records(conn, [Record(changed)], NOW)
    assert [r[1] for r in _rows(engine, B)] == ["Solo Author", "New Person"]
    with engine.connect() as conn:
        assert author_store.paper_ids_by(conn, "new person", 0, 10) == [B]


def test_migration_0009_fills_the_table_for_papers_already_stored(engine: Engine) -> None:
    webhub.load(engine)
    before = _rows(engine, A)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008")
        with engine.connect() as conn:
            assert not sa.inspect(conn).has_table("paper_authors")
        upgrade(engine)
    assert _rows(engine, A) == before
    with engine.connect() as conn:
        assert author_store.count_papers_by(conn, "f. iller") == webhub.MANY
        first = author_store.paper_ids_by(conn, "F. Iller", 0, 3)
    assert first == _fillers_newest_first()[:3]


def _fillers_newest_first() -> list[str]:
    fillers = [r.paper for r in webhub.records() if r.paper.authors == ("F. Iller",)]
    return [p.arxiv_id for p in sorted(fillers, key=lambda p: (p.published_at, p.arxiv_id), reverse=True)]


def test_an_authors_papers_are_an_index_range_not_a_scan(sqlite_engine: Engine) -> None:
    webhub.load(sqlite_engine)
    with sqlite_engine.connect() as conn:
        key = author_store.author_key("F. Iller")
        plan = " ".join(
            str(r[-1])
            for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT arxiv_id FROM paper_authors WHERE name_key = ? "
                "ORDER BY paper_date DESC, arxiv_id DESC LIMIT 50",
                (key,),
            )
        )
    assert "ix_paper_authors_name_key" in plan and "TEMP B-TREE" not in plan, plan


# --- the page, its twins, its links ---------------------------------------------------------------------


def test_author_page_lists_their_papers_newest_first_in_pages(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        page = c.get("/authors/F.%20Iller")
        assert page.status_code == 200
        ids = re.findall(r'href="/papers/(2502\.\d+)"', page.text)
        ids = list(dict.fromkeys(ids))
        assert ids == _fillers_newest_first()[:50]
        assert "55 papers in this hub" in page.text
        assert 'href="/authors/F.%20Iller?p=2"' in page.text
        assert (
            'type="application/atom+xml"' in page.text and 'href="/authors/F.%20Iller/feed.atom"' in page.text
        )
        second = c.get("/authors/F.%20Iller?p=2")
        assert len(set(re.findall(r'href="/papers/(2502\.\d+)"', second.text))) == 5
        assert c.get("/authors/F.%20Iller?p=3").status_code == 404
        # case-insensitive, spaces collapsed
        assert c.get("/authors/f.%20%20ILLER").status_code == 200


def test_unknown_and_absurd_names(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        missing = c.get("/authors/Nobody%20Here")
        assert missing.status_code == 404
        assert "No paper in this hub has an author named" in missing.text
        assert c.get("/api/authors/Nobody%20Here").status_code == 404
        long = "x" * 5000
        assert c.get(f"/authors/{long}").status_code == 400
        assert c.get(f"/api/authors/{long}").status_code == 400
        assert c.get(f"/authors/{long}/feed.atom").status_code == 400
        assert c.get("/authors/").status_code == 404


@pytest.mark.parametrize("name", [SLASHED, UNICODE, "Ada Lovelace"])
def test_names_with_slashes_quotes_and_unicode_work_everywhere(sqlite_engine: Engine, name: str) -> None:
    with _client(sqlite_engine) as c:
        paper = c.get(f"/papers/{ODD}").text
        assert f'href="{_path(name)}"' in paper
        page = c.get(_path(name))
        assert page.status_code == 200, page.text[:300]
        assert f'href="/papers/{ODD}"' in page.text
        api = c.get("/api" + _path(name))
        assert api.status_code == 200
        body = api.json()
        assert ODD in [i["paper"]["id"] for i in body["papers"]] and body["numPapers"] >= 1
        feed = c.get(_path(name) + "/feed.atom")
        assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(feed.content)
        assert ODD in [e.link.rsplit("/", 1)[-1] for e in parsed.entries]


def test_every_author_name_on_pages_links_to_its_author_page(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        for path in (
            "/papers",
            "/papers/date/2025-03-05",
            "/papers/trending",
            "/papers?q=sparse",
            "/authors/Solo%20Author",
        ):
            text = c.get(path).text
            assert 'href="/authors/Ada%20Lovelace"' in text or 'href="/authors/Solo%20Author"' in text, path
        paper = c.get(f"/papers/{A}").text
        for name in webhub.A_AUTHORS:
            assert f'href="{_path(name)}"' in paper
        feed = c.get("/papers/feed.atom").text
        assert "<uri>https://papers.example.org/authors/Ada%20Lovelace</uri>" in feed
        api = c.get("/api/authors/ada%20lovelace").json()
        assert api["name"] in ("Ada Lovelace",) and {i["paper"]["id"] for i in api["papers"]} == {A, ODD}


def test_the_digest_mail_links_author_names() -> None:
    item = StoredPaper(Paper(arxiv_id=A, title="T", abstract="x", authors=(SLASHED, "B", "C", "D")))
    from paperboy.models import Subscription

    sub = Subscription(1, "ada@example.org", "active", NOW)
    digest = compose(sub, Pool([item], [], np.zeros((0, 4), dtype=np.float32)))
    due = Due("day:2025-03-06", date(2025, 3, 6), NOW, NOW, "daily")
    links = Links("Lab", "https://papers.example.org", "https://u", "https://m", "https://f", "a@b.org")
    mail = render(make_environment(), digest, due, links)
    assert 'href="https://papers.example.org/authors/AC%2FDC%20Researcher"' in mail.html
    assert "and 1 more" in mail.html


# --- follow -------------------------------------------------------------------------------------------------


def _member_with_digest(engine: Engine, c: TestClient, username: str) -> int:
    members.signup(c, username)
    with engine.begin() as conn:
        user = user_store.get_user_by_name(conn, username)
        assert user is not None
        sub = sub_store.insert_subscription(conn, email=user.email, now=NOW)
        sub_store.set_status(conn, sub.id, "active", NOW)
        sub_store.link_user(conn, sub.id, user.id)
        return sub.id


def _post(c: TestClient, path: str, **data: Any) -> Any:
    token = members.csrf(c, "/settings")
    return c.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _followed(engine: Engine) -> list[tuple[str, str, str, bool]]:
    with engine.connect() as conn:
        stmt = sa.select(follows.c.kind, follows.c.target_key, follows.c.target_name, follows.c.in_digest)
        return [tuple(r) for r in conn.execute(stmt)]  # type: ignore[misc]


def test_follow_from_the_author_page_and_the_digest_includes_their_new_papers(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        sub_id = _member_with_digest(sqlite_engine, c, "ada")
        page = c.get(_path(SLASHED)).text
        assert 'action="/following/follow"' in page and f'name="name" value="{SLASHED}"' in page
        done = _post(c, _path(SLASHED) + "/follow")  # the author page's own path still works
        assert done.status_code == 303 and done.headers["location"] == _path(SLASHED)
        _post(c, _path(SLASHED) + "/follow")  # twice changes nothing
        assert _followed(sqlite_engine) == [("author", "ac/dc researcher", SLASHED, True)]
        assert "✓ Following" in c.get(_path(SLASHED)).text
        with sqlite_engine.connect() as conn:
            sub = sub_store.get(conn, sub_id)
        assert sub is not None and sub.authors == ()  # a follow, not an entry of the subscription's own list

        # The digest composed for this subscription has a "New from" section with the author's new paper.
        fresh = StoredPaper(
            Paper(arxiv_id="2503.09999", title="Fresh", abstract="New.", authors=("X", SLASHED))
        )
        other = StoredPaper(Paper(arxiv_id="2503.09998", title="Other", abstract="New.", authors=("Y",)))
        pool = Pool([], [fresh, other], np.zeros((2, 4), dtype=np.float32))
        due = Due("day:2025-03-06", date(2025, 3, 6), NOW, NOW, "daily")
        followed = digest_followed.gather(sqlite_engine, [(sub, due)])[sub.id]
        digest = compose(sub, pool, (), followed)
        assert [(s.kind, s.title, [i.paper.arxiv_id for i in s.items]) for s in digest.sections] == [
            ("author", SLASHED, ["2503.09999"])
        ]

        # Unfollowing also takes the name off the subscription's own list: the author leaves the digest.
        with sqlite_engine.begin() as conn:
            sub_store.set_authors(conn, sub_id, ["ac/dc  researcher", "Someone Else"])
        gone = _post(c, _path(SLASHED) + "/unfollow")
        assert gone.status_code == 303
        with sqlite_engine.connect() as conn:
            after = sub_store.get(conn, sub_id)
        assert after is not None and after.authors == ("Someone Else",)
        assert _followed(sqlite_engine) == []
        assert digest_followed.gather(sqlite_engine, [(after, due)]) == {}
        assert compose(after, pool).sections == ()


def test_follow_needs_a_member_and_a_csrf_token_but_no_digest(sqlite_engine: Engine) -> None:
    with _client(sqlite_engine) as c:
        visitor = c.post(
            _path("Ada Lovelace") + "/follow",
            data={"csrf_token": members.csrf(c, "/login")},
            follow_redirects=False,
        )
        assert visitor.status_code == 303 and visitor.headers["location"].startswith("/login")
        assert "Sign in to follow Ada Lovelace" in c.get(_path("Ada Lovelace")).text
        members.signup(c, "bob")
        forged = c.post(_path("Ada Lovelace") + "/follow", follow_redirects=False)
        assert forged.status_code == 403
        assert _followed(sqlite_engine) == []
        assert _post(c, _path("Nobody At All") + "/follow").status_code == 404
        done = _post(c, _path("ada lovelace") + "/follow")  # any case: the name as papers spell it is kept
        assert done.status_code == 303
        assert _followed(sqlite_engine) == [("author", "ada lovelace", "Ada Lovelace", True)]
        assert "✓ Following" in c.get(_path("Ada Lovelace")).text
