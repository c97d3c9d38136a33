"""HTTP caching for anonymous readers (paperboy/web/caching.py), checked on the wire: the real app under
uvicorn on loopback over the webhub's SQLite file, asked with plain HTTP clients (httpx, and a raw socket).

Anonymous reads of list pages, paper pages, feeds and the read API are `public` with a strong ETag and
`Vary: Cookie, Authorization`, and a matching `If-None-Match` gets a 304 with no body; whatever a member (by
cookie or token) sees is `private`; nothing that sets a cookie, no error and no redirect is cacheable; a vote
changes the ETag that anonymous readers revalidate against. Anonymous pages set no cookie (the public CSRF
token), and a form posted from another site without a session is refused by origin instead.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import members
import pytest
import webhub
from browserkit import free_port, serving
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from paperboy.db import make_engine, upgrade
from paperboy.web.app import create_app
from paperboy.web.caching import HttpCaching, matches
from paperboy.web.deps import Site
from paperboy.web.security import RateLimits

A, OLD = webhub.A, webhub.OLD
DAY = webhub.LATEST.isoformat()  # 2025-03-05, ISO week 2025-W10
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
_STRONG_ETAG = re.compile(r'^"[0-9a-f]{32}"$')

PAGES = [
    "/papers",
    f"/papers/date/{DAY}",
    "/papers/week/2025-W10",
    "/papers/month/2025-03",
    "/papers/trending",
    "/papers?q=attention",
    f"/papers/{A}",
    f"/papers/{OLD}",
    "/about",
]
FEEDS = [
    "/papers/feed.atom",
    f"/papers/date/{DAY}/feed.atom",
    "/papers/week/2025-W10/feed.atom",
    "/papers/month/2025-03/feed.atom",
    "/papers/trending/feed.atom",
    "/papers/feed.atom?q=attention",
]
API = [
    "/api/daily_papers",
    f"/api/daily_papers?date={DAY}",
    "/api/daily_papers?week=2025-W10&sort=trending",
    f"/api/papers/{A}",
    "/api/papers/search?q=attention",
    "/api/papers",
    "/api/trending",
    f"/api/papers/{A}/comments",
    f"/api/papers/{A}/similar",
    "/openapi.json",
]
PUBLIC_READS = PAGES + FEEDS + API


@dataclass
class Hub:
    url: str
    session: str  # a member's pb_session cookie
    token: str  # the same member's API token

    def get(self, path: str, *, method: str = "GET", **headers: str) -> httpx.Response:
        """One request from a fresh client: no cookie unless `headers` carries one."""
        return httpx.request(method, self.url + path, headers=headers, follow_redirects=False, timeout=30)

    def as_member(self, path: str, method: str = "GET", **kw: Any) -> httpx.Response:
        headers = {"cookie": f"pb_session={self.session}", **kw.pop("headers", {})}
        return httpx.request(
            method, self.url + path, headers=headers, follow_redirects=False, timeout=30, **kw
        )

    def member_csrf(self) -> str:
        found = _CSRF.search(self.as_member("/settings").text)
        assert found
        return found.group(1)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('caching') / 'paperboy.sqlite3'}")
    upgrade(engine)
    webhub.load(engine)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        engine,
        site=Site(name="Lab Papers", public_url=base, trending_days=7),
        clock=lambda: webhub.NOW,
        hasher=members.FAST_HASHER,
        rate_limits=RateLimits(signup="100 per hour", vote="1000 per minute"),
    )
    with serving(app, port) as url:
        session = _sign_up(url)
        made = httpx.post(
            url + "/settings/tokens",
            data={"name": "bot", "csrf_token": _token_on(url, "/settings", session)},
            headers={"cookie": f"pb_session={session}"},
        )
        assert made.status_code == 200
        assert made.headers["cache-control"] == "no-store"  # the page that shows a new token once
        token = re.search(r"pb_[A-Za-z0-9_-]{20,}", made.text)
        assert token
        yield Hub(url, session, token.group(0))
    engine.dispose()


def _token_on(url: str, path: str, session: str | None = None) -> str:
    headers = {"cookie": f"pb_session={session}"} if session else {}
    found = _CSRF.search(httpx.get(url + path, headers=headers).text)
    assert found, path
    return found.group(1)


def _sign_up(url: str) -> str:
    page = httpx.get(url + "/signup")
    assert "set-cookie" not in page.headers
    found = _CSRF.search(page.text)
    assert found
    r = httpx.post(
        url + "/signup",
        data={"username": "ada", "email": "ada@example.org", "password": members.PASSWORD},
        headers={"x-csrf-token": found.group(1), "sec-fetch-site": "same-origin"},
    )
    assert r.status_code == 303, r.text[:300]
    # a response that sets a cookie is never cacheable by anyone
    assert r.headers["cache-control"] == "no-store"
    assert "etag" not in r.headers
    return r.cookies["pb_session"]


def _vary(r: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in r.headers.get("vary", "").split(",")}


def _max_age(cache_control: str) -> int:
    found = re.search(r"(?:^|,\s*)max-age=(\d+)", cache_control)
    assert found, cache_control
    return int(found.group(1))


# --- anonymous readers: public, validated, 304 -----------------------------------------------------------


@pytest.mark.parametrize("path", PUBLIC_READS)
def test_anonymous_reads_are_public_with_a_strong_etag_and_answer_304(hub: Hub, path: str) -> None:
    r = hub.get(path)
    assert r.status_code == 200, (path, r.text[:200])
    cc = r.headers["cache-control"]
    assert cc.startswith("public, ") and "stale-while-revalidate=" in cc, cc
    assert 60 <= _max_age(cc) <= (300 if path.split("?")[0].endswith(".atom") else 60)
    assert _STRONG_ETAG.match(r.headers["etag"]), r.headers["etag"]
    assert {"cookie", "authorization"} <= _vary(r)
    assert "set-cookie" not in r.headers
    assert "last-modified" not in r.headers  # no cheap time covers a list that changes with every vote
    etag = r.headers["etag"]

    assert hub.get(path).headers["etag"] == etag  # the same bytes, the same tag

    for sent in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        again = hub.get(path, **{"if-none-match": sent})
        assert again.status_code == 304, (path, sent)
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == cc
        assert _vary(again) == _vary(r)
        assert "content-type" not in again.headers

    other = hub.get(path, **{"if-none-match": '"0000"'})
    assert other.status_code == 200 and other.content == r.content

    head = hub.get(path, method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag and head.headers["cache-control"] == cc
    assert head.headers["content-length"] == r.headers["content-length"]
    head304 = hub.get(path, method="HEAD", **{"if-none-match": etag})
    assert head304.status_code == 304 and head304.headers["etag"] == etag


def test_a_304_on_the_wire_has_headers_and_no_body(hub: Hub) -> None:
    etag = hub.get("/papers").headers["etag"]
    host, port = hub.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        request = f"GET /papers HTTP/1.1\r\nHost: {host}\r\nIf-None-Match: {etag}\r\n\r\n"
        s.sendall(request.encode() * 2)  # two on one keep-alive connection: framing must be right
        data = b""
        while data.count(b"\r\n\r\n") < 2:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    first, second, rest = data.split(b"\r\n\r\n", 2)
    assert rest == b""  # nothing after the second header block: neither 304 carried a body
    for head in (first, second):
        lines = head.decode().lower().split("\r\n")
        assert lines[0] == "http/1.1 304 not modified"
        assert f"etag: {etag}" in lines
        assert not any(line.startswith(("content-length: 1", "transfer-encoding")) for line in lines)


def test_static_files_are_cached_long_when_their_url_names_their_version(hub: Hub) -> None:
    page = hub.get("/papers").text
    css = re.search(r'href="(/static/app\.css\?v=[0-9a-f]+)"', page)
    js = re.search(r'src="(/static/app\.js\?v=[0-9a-f]+)"', page)
    vendor = re.search(r'src="(/static/vendor/htmx-[0-9.]+\.min\.js)"', page)
    assert css and js and vendor
    for path in (css.group(1), js.group(1), vendor.group(1)):
        r = hub.get(path)
        assert r.status_code == 200
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable", path
        again = hub.get(path, **{"if-none-match": r.headers["etag"]})  # StaticFiles' own validators
        assert again.status_code == 304 and again.headers["cache-control"] == r.headers["cache-control"]
    plain = hub.get("/static/app.css")  # an unversioned URL: an hour, then revalidate
    assert plain.headers["cache-control"] == "public, max-age=3600"
    assert "last-modified" in plain.headers
    assert hub.get("/static/nothing.css").headers["cache-control"] == "no-store"


def test_a_vote_changes_what_anonymous_readers_revalidate_against(hub: Hub) -> None:
    paths = ["/papers", f"/papers/date/{DAY}", f"/papers/{A}", "/api/daily_papers", f"/api/papers/{A}"]
    before = {p: hub.get(p) for p in paths}
    for p, r in before.items():
        assert hub.get(p, **{"if-none-match": r.headers["etag"]}).status_code == 304, p

    voted = hub.as_member(
        f"/papers/{A}/upvote", "POST", data={"csrf_token": hub.member_csrf(), "next": "/papers"}
    )
    assert voted.status_code == 303 and voted.headers["cache-control"] == "no-store"

    try:
        for p, r in before.items():
            after = hub.get(p, **{"if-none-match": r.headers["etag"]})
            assert after.status_code == 200, p  # the old tag no longer matches: the new list is sent
            assert after.headers["etag"] != r.headers["etag"], p
            assert after.headers["cache-control"].startswith("public, ")
        upvotes = httpx.get(hub.url + f"/api/papers/{A}").json()["upvotes"]
        assert upvotes == before[f"/api/papers/{A}"].json()["upvotes"] + 1
    finally:  # take the vote back: the other tests read the same hub
        hub.as_member(f"/papers/{A}/upvote", "POST", data={"csrf_token": hub.member_csrf()})


# --- members, cookies, tokens: never shared ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/papers", f"/papers/{A}", "/papers/trending", "/api/daily_papers"])
def test_what_a_member_sees_is_private_and_still_revalidates(hub: Hub, path: str) -> None:
    r = hub.as_member(path)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-cache"
    assert {"cookie", "authorization"} <= _vary(r)
    assert _STRONG_ETAG.match(r.headers["etag"])
    again = hub.as_member(path, headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "private, no-cache"
    if path.startswith("/papers"):
        assert 'title="Your profile">ada</a>' in r.text  # the member's own page
        assert r.headers["etag"] != hub.get(path).headers["etag"]


@pytest.mark.parametrize("path", ["/api/daily_papers", f"/api/papers/{A}", f"/api/papers/{A}/comments"])
def test_api_reads_with_a_token_are_private(hub: Hub, path: str) -> None:
    r = hub.get(path, authorization=f"Bearer {hub.token}")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-cache"
    assert "authorization" in _vary(r)


def test_any_cookie_makes_a_response_private(hub: Hub) -> None:
    # Even a cookie this app never set: a shared cache cannot know what the answer depends on.
    r = hub.get("/papers", cookie="theme=dark")
    assert r.headers["cache-control"] == "private, no-cache"
    assert "set-cookie" not in r.headers


def test_pages_with_secrets_are_never_stored(hub: Hub) -> None:
    r = hub.as_member("/settings")  # the member's address and token names
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert "etag" not in r.headers
    assert hub.get("/subscription?t=made-up").headers["cache-control"] == "no-store"


def test_no_anonymous_page_sets_a_cookie(hub: Hub) -> None:
    for path in [*PUBLIC_READS, "/login", "/signup", "/subscribe"]:
        r = hub.get(path)
        assert r.status_code == 200, path
        assert "set-cookie" not in r.headers, path
    # the form pages carry a token but are private all the same
    assert hub.get("/login").headers["cache-control"] == "private, no-cache"


def test_errors_and_redirects_are_not_cacheable(hub: Hub) -> None:
    cases = {
        "/nowhere": 404,
        "/papers/not-an-id": 404,
        "/papers/date/2025-13-01": 400,
        "/api/papers/2501.99999": 404,
        "/api/daily_papers?date=yesterday": 400,
        "/papers/feed.atom?sort=sideways": 400,
        "/settings": 303,  # to /login
        "/": 302,
        "/papers/submit": 303,
    }
    for path, status in cases.items():
        for headers in ({}, {"if-none-match": "*"}):
            r = hub.get(path, **headers)
            assert r.status_code == status, (path, r.status_code)
            assert r.headers["cache-control"] == "no-store", path
            assert "etag" not in r.headers, path


def test_writes_are_never_cacheable(hub: Hub) -> None:
    r = hub.get("/login", method="POST")  # refused: no CSRF token
    assert r.status_code == 403 and r.headers["cache-control"] == "no-store"
    api = httpx.post(hub.url + f"/api/papers/{A}/upvote", headers={"authorization": f"Bearer {hub.token}"})
    assert api.status_code == 200 and api.headers["cache-control"] == "no-store"
    httpx.delete(hub.url + f"/api/papers/{A}/upvote", headers={"authorization": f"Bearer {hub.token}"})


# --- the public CSRF token: cacheable pages, forms checked by origin ----------------------------------------


def test_the_cached_pages_token_works_from_this_site_and_not_from_another(hub: Hub) -> None:
    token = _CSRF.search(hub.get("/papers").text)
    assert token
    public = token.group(1)
    assert public == _CSRF.search(hub.get(f"/papers/{A}").text).group(1)  # type: ignore[union-attr]
    form = {"username": "ada", "password": "wrong password", "csrf_token": public}
    same_site = [{"sec-fetch-site": "same-origin"}, {"origin": hub.url}, {}]
    for headers in same_site:
        r = httpx.post(hub.url + "/login", data=form, headers=headers)
        assert r.status_code == 400, (headers, r.status_code)  # the form's own answer: wrong password
    other_sites = [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
    ]
    for headers in other_sites:
        r = httpx.post(hub.url + "/login", data=form, headers=headers)
        assert r.status_code == 403, headers
    # an anonymous upvote from a cached page goes to sign-in, as before
    r = httpx.post(
        hub.url + f"/papers/{A}/upvote",
        data={"csrf_token": public},
        headers={"sec-fetch-site": "same-origin"},
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # a member's session still needs the member's own token: the public one is refused
    r = hub.as_member(f"/papers/{A}/upvote", "POST", data={"csrf_token": public})
    assert r.status_code == 403


# --- the middleware alone ----------------------------------------------------------------------------------


def _tiny_app() -> Any:
    def cookie_setter(_: Any) -> PlainTextResponse:
        r = PlainTextResponse("hello")
        r.set_cookie("x", "y")
        return r

    def stream(_: Any) -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b", b"c"]), media_type="text/plain")

    app = Starlette(routes=[Route("/papers", cookie_setter), Route("/api/papers", stream)])
    return HttpCaching(app)


def test_a_public_path_that_sets_a_cookie_is_not_stored() -> None:
    r = TestClient(_tiny_app()).get("/papers")
    assert r.headers["set-cookie"].startswith("x=y")
    assert r.headers["cache-control"] == "no-store" and "etag" not in r.headers


def test_a_streamed_body_passes_through_without_an_etag() -> None:
    r = TestClient(_tiny_app()).get("/api/papers", headers={"if-none-match": "*"})
    assert r.status_code == 200 and r.content == b"abc"
    assert "etag" not in r.headers


@pytest.mark.parametrize(
    ("sent", "expected"),
    [('"a"', True), ('W/"a"', True), ('"b", "a"', True), ('"b"', False), ("*", True), ('"a', False)],
)
def test_if_none_match_compares_weakly(sent: str, expected: bool) -> None:
    assert matches(sent, '"a"') is expected


def test_docs_say_what_a_proxy_may_cache() -> None:
    docs = Path(__file__).resolve().parents[1] / "docs"
    deploying = (docs / "deploying.md").read_text()
    assert "## What a proxy may cache" in deploying
    for needle in (
        "max-age=60",
        "Vary: Cookie, Authorization",
        "proxy_cache",
        "private, no-cache",
        "no-store",
    ):
        assert needle in deploying, needle
    assert "304" in (docs / "api.md").read_text() and "ETag" in (docs / "api.md").read_text()
