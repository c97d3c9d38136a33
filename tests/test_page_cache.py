"""PAPERBOY_PAGE_CACHE_SECONDS (paperboy/web/page_cache.py): anonymous public answers kept in memory.

Unit tests drive PageCache around a small Starlette app with a fake clock (what is stored, for how long,
one rendering for concurrent misses); the last tests run the real app over the webhub's SQLite file: an
anonymous reader sees a vote only after the cache expires, the member at once, and 304s still work.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import members
import pytest
import webhub
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from paperboy.db import make_engine, upgrade
from paperboy.web.app import create_app
from paperboy.web.page_cache import PageCache


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def counting_app() -> tuple[Starlette, dict[str, int]]:
    calls: dict[str, int] = {}

    async def page(request: Request) -> PlainTextResponse:
        path = request.url.path
        calls[path] = calls.get(path, 0) + 1
        await asyncio.sleep(0.05)
        status = 404 if path.endswith("/missing") else 200
        response = PlainTextResponse(f"{path} #{calls[path]} {request.headers.get('hx-request', '')}", status)
        if path.endswith("/cookie"):
            response.set_cookie("x", "1")
        return response

    routes = [Route("/papers/{rest:path}", page), Route("/settings", page), Route("/papers", page)]
    return Starlette(routes=routes), calls


@pytest.fixture
def cached() -> tuple[TestClient, dict[str, int], Clock, PageCache]:
    app, calls = counting_app()
    clock = Clock()
    cache = PageCache(app, seconds=10, clock=clock)
    return TestClient(cache), calls, clock, cache


def test_an_anonymous_public_page_is_rendered_once_per_period(
    cached: tuple[TestClient, dict[str, int], Clock, PageCache],
) -> None:
    client, calls, clock, cache = cached
    first = client.get("/papers/trending")
    assert client.get("/papers/trending").text == first.text == "/papers/trending #1 "
    assert client.get("/papers/trending").headers["content-type"] == first.headers["content-type"]
    assert calls["/papers/trending"] == 1 and cache.hits == 2
    clock.t += 10.5
    assert client.get("/papers/trending").text == "/papers/trending #2 "
    assert client.get("/papers/trending?p=2").text == "/papers/trending #3 "  # the query is part of the key


def test_members_tokens_private_paths_errors_and_cookies_always_reach_the_app(
    cached: tuple[TestClient, dict[str, int], Clock, PageCache],
) -> None:
    client, calls, _, cache = cached
    for _ in range(2):
        client.get("/papers/x", headers={"cookie": "pb_session=abc"})
        client.get("/papers/y", headers={"authorization": "Bearer t"})
        client.get("/settings")
        client.get("/papers/missing")
        client.get("/papers/cookie")
        client.cookies.clear()
    assert calls == {
        "/papers/x": 2,
        "/papers/y": 2,
        "/settings": 2,
        "/papers/missing": 2,
        "/papers/cookie": 2,
    }
    assert cache.hits == 0


def test_htmx_fragments_are_kept_apart_from_pages(
    cached: tuple[TestClient, dict[str, int], Clock, PageCache],
) -> None:
    client, _, _, _ = cached
    page = client.get("/papers").text
    fragment = client.get("/papers", headers={"hx-request": "true"}).text
    assert page == "/papers #1 " and fragment == "/papers #2 true"
    assert client.get("/papers", headers={"hx-request": "true"}).text == fragment


def test_concurrent_misses_wait_for_one_rendering() -> None:
    app, calls = counting_app()
    cache = PageCache(app, seconds=10)

    async def crowd() -> list[str]:
        transport = httpx.ASGITransport(app=cache)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            answers = await asyncio.gather(*(c.get("/papers/date/2025-03-05") for _ in range(20)))
        return [a.text for a in answers]

    texts = asyncio.run(crowd())
    assert set(texts) == {"/papers/date/2025-03-05 #1 "}
    assert calls["/papers/date/2025-03-05"] == 1


def test_the_oldest_entries_go_when_full() -> None:
    app, calls = counting_app()
    client = TestClient(PageCache(app, seconds=10, max_entries=2))
    for path in ("/papers/a", "/papers/b", "/papers/c", "/papers/a"):
        client.get(path)
    assert calls["/papers/a"] == 2  # pushed out by c


def test_on_the_real_app_anonymous_readers_see_a_vote_once_the_copy_expires(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    upgrade(engine)
    webhub.load(engine)

    def app(seconds: float) -> TestClient:
        return TestClient(
            create_app(
                engine,
                site=webhub.SITE,
                clock=lambda: webhub.NOW,
                hasher=members.FAST_HASHER,
                page_cache_seconds=seconds,
            ),
            base_url="https://testserver",
        )

    cached, fresh = app(3600), app(0)
    path = f"/api/papers/{webhub.A}"
    before = cached.get(path)
    assert before.status_code == 200 and before.headers["cache-control"].startswith("public")
    member = TestClient(fresh.app, base_url="https://testserver")
    members.signup(member, "ada")
    token = members.csrf(member, "/settings")
    voted = member.post(f"/papers/{webhub.A}/upvote", data={"csrf_token": token}, follow_redirects=False)
    assert voted.status_code == 303
    upvotes = before.json()["upvotes"]
    assert fresh.get(path).json()["upvotes"] == upvotes + 1  # without the cache: at once
    again = cached.get(path)
    assert again.json()["upvotes"] == upvotes and again.headers["etag"] == before.headers["etag"]
    assert cached.get(path, headers={"if-none-match": before.headers["etag"]}).status_code == 304
    # a member on the caching app always reaches the database
    member_cached = TestClient(cached.app, base_url="https://testserver")
    members.login(member_cached, "ada")
    assert member_cached.get(path).json()["upvotes"] == upvotes + 1
