"""Hugging Face's organization (slug and full name) and `discussionId` survive the ingest, the store (SQLite
and PostgreSQL) and the API, as upstream gives them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.jobs import ingest_hf_file
from paperboy.models import Featuring, Paper, Record
from paperboy.sources.huggingface import parse_item
from paperboy.store.papers import get_paper, upsert_records
from paperboy.web.app import create_app

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "hf_daily_papers_small.json"
NOW = datetime(2026, 8, 12, 18, 0, tzinfo=UTC)
A = "2608.00101"
GOOGLE = {
    "_id": "5e6aca39878b8b2bf9806447",
    "name": "google",
    "fullname": "Google",
    "avatar": "https://x/y.png",
}


def _item(**paper: object) -> dict[str, object]:
    return {
        "paper": {"id": "2608.19880", "title": "EnvHarness", "summary": "s", "upvotes": 3, **paper},
        "publishedAt": "2026-08-19T20:00:00.000Z",
        "organization": GOOGLE,
    }


def test_the_source_keeps_the_slug_the_full_name_and_the_discussion_id() -> None:
    record = parse_item(_item(discussionId="6a87afc589e517cbfd75dbe0", organization=GOOGLE))
    f = record.featuring
    assert f is not None
    assert (f.organization, f.organization_name, f.discussion_id) == (
        "Google",
        "google",
        "6a87afc589e517cbfd75dbe0",
    )
    odd = parse_item({**_item(discussionId="<script>"), "organization": {"name": "acme"}}).featuring
    assert odd is not None and (odd.organization, odd.organization_name, odd.discussion_id) == (
        "acme",
        "acme",
        None,
    )


def test_the_store_round_trips_them_and_a_later_listing_without_them_keeps_them(engine: Engine) -> None:
    ingest_hf_file(engine, FIXTURE, lambda: NOW)
    with engine.connect() as conn:
        stored = get_paper(conn, A)
    assert stored is not None and stored.featuring is not None
    f = stored.featuring
    assert (f.organization, f.organization_name, f.discussion_id) == (
        "Acme AI",
        "acme",
        "7ad45e34df1061992960f67f",
    )
    bare = Record(
        Paper(arxiv_id=A, title=stored.paper.title, abstract=stored.paper.abstract),
        Featuring(A, f.day, "huggingface", f.submitted_at, upvotes=1),
    )
    with engine.begin() as conn:
        upsert_records(conn, [bare], NOW)
        again = get_paper(conn, A)
    assert again is not None and again.featuring is not None
    assert (again.featuring.organization_name, again.featuring.discussion_id) == (
        "acme",
        "7ad45e34df1061992960f67f",
    )


def test_the_api_answers_them_in_hugging_faces_shape(engine: Engine) -> None:
    ingest_hf_file(engine, FIXTURE, lambda: NOW)
    c = TestClient(create_app(engine, clock=lambda: NOW))
    paper = c.get(f"/api/papers/{A}").json()
    assert paper["organization"] == {"name": "acme", "fullname": "Acme AI"}
    assert paper["discussionId"] == "7ad45e34df1061992960f67f"
    item = next(
        i for i in c.get("/api/daily_papers", params={"date": "2026-08-03"}).json() if i["paper"]["id"] == A
    )
    assert item["organization"] == {"name": "acme", "fullname": "Acme AI"}
    assert item["paper"]["discussionId"] == "7ad45e34df1061992960f67f"
    assert date.fromisoformat(item["publishedAt"][:10]) == date(2026, 8, 3)
