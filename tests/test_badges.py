"""'#1 Paper of the day / week / month' (issue 11, point 9): the paper a period's list shows first (default
order: most upvoted) carries the badge on its card and page, and in the paper's JSON; others do not. The
badge agrees with the list pages, ties and members' votes included, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import members
import webhub
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from webhub import LATEST, NOW, A, B, C

from paperboy.models import Featuring, Paper, Record, StoredPaper
from paperboy.periods import day_period, month_period, week_period_of
from paperboy.store import papers as store
from paperboy.store.papers import upsert_records
from paperboy.web import badges

_CARD = re.compile(r'<li class="card">.*?</li>', re.DOTALL)


def _cards(html: str) -> dict[str, str]:
    """Each card's HTML by the paper id it links to."""
    out = {}
    for card in _CARD.findall(html):
        found = re.search(r'href="/papers/([^"#]+)"', card)
        assert found
        out[found.group(1)] = card
    return out


def _first_card(html: str) -> str:
    return next(iter(_cards(html)))


def test_the_top_paper_of_its_day_week_and_month_has_the_badges_and_others_do_not(
    sqlite_engine: Engine,
) -> None:
    with webhub.client(sqlite_engine) as c:
        day = c.get(f"/papers/date/{LATEST}").text
        cards = _cards(day)
        assert _first_card(day) == A
        assert "#1 Paper of the month" in cards[A]  # the widest it earned, on the card
        assert "#1 Paper of" not in cards[B] and "#1 Paper of" not in cards[C]

        page = c.get(f"/papers/{A}").text
        for kind in ("day", "week", "month"):
            assert f"#1 Paper of the {kind}</a>" in page
        assert 'href="/papers/date/2025-03-05"' in page and 'href="/papers/week/2025-W10"' in page
        assert "#1 Paper of" not in c.get(f"/papers/{B}").text

        api = c.get(f"/api/papers/{A}").json()
        assert [(b["kind"], b["period"], b["rank"]) for b in api["badges"]] == [
            ("day", "2025-03-05", 1),
            ("week", "2025-W10", 1),
            ("month", "2025-03", 1),
        ]
        assert "badges" not in c.get(f"/api/papers/{B}").json()


def test_a_day_leader_that_is_not_the_weeks_gets_only_the_day_badge(sqlite_engine: Engine) -> None:
    """February's fillers: each day's most upvoted leads its day, only the best of a week leads the week."""
    with webhub.client(sqlite_engine) as c:
        for d in ("2025-02-03", "2025-02-04", "2025-02-10", "2025-02-28"):
            html = c.get(f"/papers/date/{d}").text
            top = _first_card(html)
            week = week_period_of(date.fromisoformat(d)).label
            week_top = _first_card(c.get(f"/papers/week/{week}").text)
            month_top = _first_card(c.get("/papers/month/2025-02").text)
            card = _cards(html)[top]
            assert "#1 Paper of" in card
            page = c.get(f"/papers/{top}").text
            assert ("#1 Paper of the week</a>" in page) == (top == week_top)
            assert ("#1 Paper of the month</a>" in page) == (top == month_top)
            for other, html_card in _cards(html).items():
                if other != top:
                    assert "#1 Paper of" not in html_card


def _tied(engine: Engine) -> None:
    """Two papers with the same upstream votes on one day: the later listed one comes first."""
    day = date(2025, 4, 1)
    recs = []
    for n, hour in ((1, 8), (2, 9)):
        pid = f"2504.0000{n}"
        paper = Paper(arxiv_id=pid, title=f"Tied {n}", abstract="x", authors=("T. Ied",))
        recs.append(
            Record(
                paper,
                Featuring(pid, day, "huggingface", datetime(2025, 4, 1, hour, tzinfo=UTC), None, upvotes=3),
            )
        )
    with engine.begin() as conn:
        upsert_records(conn, recs, NOW)


def test_the_badge_agrees_with_the_list_on_ties_and_follows_members_votes(engine: Engine) -> None:
    _tied(engine)
    with engine.connect() as conn:
        items = store.featured(conn, store.FeaturedQuery(date(2025, 4, 1), date(2025, 4, 1)))
        got = badges.badges_for(conn, items)
    assert set(got) == {"2504.00002"}  # the later listed one, as the page orders ties
    assert [b.kind for b in got["2504.00002"]] == ["day", "week", "month"]

    app = members.app(engine, loaded=False)
    with TestClient(app, base_url="https://testserver") as c:
        assert _first_card(c.get("/papers/date/2025-04-01").text) == "2504.00002"
        members.signup(c, "ada")
        token = members.csrf(c, "/settings")
        c.post("/papers/2504.00001/upvote", data={"csrf_token": token}, follow_redirects=False)
        html = c.get("/papers/date/2025-04-01").text
        assert _first_card(html) == "2504.00001"
        assert "#1 Paper of the day" in _cards(html)["2504.00001"]
        assert "#1 Paper of" not in _cards(html)["2504.00002"]
        assert [b["kind"] for b in c.get("/api/papers/2504.00001").json()["badges"]] == [
            "day",
            "week",
            "month",
        ]


def test_leaders_look_only_at_the_periods_shown(engine: Engine) -> None:
    webhub.load(engine)
    with engine.connect() as conn:
        a = store.get_paper(conn, A)
        assert a is not None
        top = badges.leaders(
            conn, [day_period(LATEST), week_period_of(LATEST), month_period(date(2024, 1, 1))]
        )
        never = badges.badges_for(conn, [StoredPaper(a.paper)])  # never featured: no badge
    assert top == {day_period(LATEST): A, week_period_of(LATEST): A}
    assert never == {}
