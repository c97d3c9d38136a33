"""A small hub for the page, feed and browser tests: hand-made records with every field a page shows.

Days (2025): Mon Feb 3 … Fri Feb 28 hold MANY filler papers (for paging), Mon Mar 3 holds the withdrawn
old-style paper, Wed Mar 5 holds the three headline papers. Tue Mar 4 is an empty weekday, Sat Mar 1 an
empty weekend day; "now" is Thu Mar 6, noon UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.models import Featuring, Paper, Record, Submitter
from paperboy.store.papers import upsert_records
from paperboy.web.app import create_app
from paperboy.web.deps import Site

NOW = datetime(2025, 3, 6, 12, 0, tzinfo=UTC)
SITE = Site(name="Lab Papers", public_url="https://papers.example.org", trending_days=7)

LATEST = date(2025, 3, 5)  # Wednesday
OLDER = date(2025, 3, 3)  # Monday
EMPTY_WEEKDAY = date(2025, 3, 4)  # Tuesday
WEEKEND = date(2025, 3, 1)  # Saturday
MANY = 55  # filler papers in February: more than one page of 50

XSS = "<script>alert(1)</script>"
A = "2503.01234"
B = "2503.04321"
C = "2503.05555"
OLD = "hep-th/9901001"

A_AUTHORS = (
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
)
A_ABSTRACT = (
    "We show that attention runs in $O(n \\log n)$ time when keys are sparse, improving on \\(n^2\\). "
    f"Odd inputs such as {XSS} and <b>tags</b> are only text here. " + "More words follow. " * 30
)


def _at(d: date, hour: int = 9) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)


def records() -> list[Record]:
    a = Paper(
        arxiv_id=A,
        title="Sparse Attention in $O(n \\log n)$ Time",
        abstract=A_ABSTRACT,
        authors=A_AUTHORS,
        categories=("cs.LG", "cs.AI", "stat.ML"),
        primary_category="cs.LG",
        version=2,
        published_at=_at(date(2025, 3, 1)),
        updated_at=_at(date(2025, 3, 4)),
        comments="12 pages, 3 figures",
        journal_ref="J. Sparse Res. 1 (2025) 1-12",
        doi="10.1234/sparse.2025",
        license="http://creativecommons.org/licenses/by/4.0/",
        github_repo="https://github.com/example/sparse-attention",
        github_stars=1234,
        project_page="https://sparse.example.org",
        ai_summary="Sparse keys make attention near-linear.",
        ai_keywords=("sparse attention", "complexity"),
    )
    b = Paper(
        arxiv_id=B,
        title="A Single-Author Note on Benchmarks",
        abstract="One author, no code, a short abstract.",
        authors=("Solo Author",),
        categories=("cs.CL",),
        primary_category="cs.CL",
        published_at=_at(date(2025, 3, 4)),
        github_repo="javascript:alert(1)",  # never becomes a link
    )
    c = Paper(
        arxiv_id=C,
        title="Quiet Results",
        abstract="Nobody has voted for this one yet.",
        authors=("Q. Uiet", "R. Esult"),
        published_at=_at(date(2025, 3, 2)),
    )
    old = Paper(
        arxiv_id=OLD,
        title="An Old-Style Identifier from 1999",
        abstract="Strings and branes.",
        authors=("E. Witten",),
        categories=("hep-th",),
        primary_category="hep-th",
        version=3,
        published_at=datetime(1999, 1, 1, tzinfo=UTC),
        withdrawn=True,
        comments="This paper has been withdrawn by the author.",
    )
    submitter = Submitter("ada", "Ada Lovelace", "/avatars/ada.svg")
    out = [
        Record(a, Featuring(A, LATEST, "huggingface", _at(LATEST, 8), submitter, upvotes=42, num_comments=3)),
        Record(b, Featuring(B, LATEST, "huggingface", _at(LATEST, 9), None, upvotes=5, num_comments=0)),
        Record(c, Featuring(C, LATEST, "huggingface", _at(LATEST, 10), None, upvotes=0, num_comments=1)),
        Record(old, Featuring(OLD, OLDER, "huggingface", _at(OLDER), None, upvotes=1)),
    ]
    for n in range(MANY):
        day = date(2025, 2, 3) + timedelta(days=(n % 20) // 5 * 7 + n % 5)  # weekdays of Feb 3-28
        pid = f"2502.{10000 + n}"
        paper = Paper(
            arxiv_id=pid,
            title=f"Filler Paper Number {n:02d}",
            abstract=f"Filler abstract {n}.",
            authors=("F. Iller",),
            published_at=_at(day),
        )
        out.append(Record(paper, Featuring(pid, day, "huggingface", _at(day), None, upvotes=n)))
    return out


def load(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert_records(conn, records(), NOW)


def client(engine: Engine, *, loaded: bool = True) -> TestClient:
    if loaded:
        load(engine)
    return TestClient(create_app(engine, site=SITE, clock=lambda: NOW))
