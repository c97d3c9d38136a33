"""Security rules that hold across the whole app, checked by walking it rather than route by route:

- every state-changing route refuses a request without the CSRF token (403) and changes nothing;
- security headers (CSP without inline script, nosniff, Referrer-Policy, frame denial) on every response;
- no page carries inline script or event-handler attributes;
- `next=` only ever leads to a path on this site;
- a corpus of XSS payloads in every upstream and member-supplied field never becomes markup on any page,
  in any feed, or in any JSON response (JSON writes `<`, `>`, `&` as escapes);
- no API response carries an email, a password hash, a session or a token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any

import members
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from routes import all_routes
from sqlalchemy.engine import Engine
from webhub import LATEST, NOW, A, B

from paperboy import accounts
from paperboy.community import claims as claim_ops
from paperboy.community import comments as comment_ops
from paperboy.db.schema import metadata
from paperboy.models import Featuring, Paper, Record, Submitter
from paperboy.store import users as user_store
from paperboy.store.papers import upsert_records
from paperboy.web.app import create_app
from paperboy.web.deps import Site
from paperboy.web.security import RateLimits

XSS_CORPUS = (
    "<script>alert(1)</script>",
    '"><script>alert(2)</script>',
    "<img src=x onerror=alert(3)>",
    "<svg onload=alert(4)>",
    "javascript:alert(5)",
    '\'><a href="javascript:alert(6)">x</a>',
    "<iframe src=javascript:alert(7)></iframe>",
    "{{ 7*7 }}<style>body{display:none}</style>",
)
X = "2503.09999"  # the paper whose every field is a payload


def _payload(n: int) -> str:
    return XSS_CORPUS[n % len(XSS_CORPUS)]


def _hostile_record() -> Record:
    paper = Paper(
        arxiv_id=X,
        title=f"Hostile {_payload(0)} title {_payload(3)}",
        abstract=" ".join(XSS_CORPUS) + " sparse attention words",
        authors=tuple(f"Author {p}" for p in XSS_CORPUS),
        categories=("cs.LG",),
        primary_category="cs.LG",
        published_at=datetime(2025, 3, 5, 6, tzinfo=NOW.tzinfo),
        comments=_payload(1),
        journal_ref=_payload(2),
        doi=_payload(5),
        license="javascript:alert(8)",
        github_repo="javascript:alert(9)",
        project_page="javascript:alert(10)",
        ai_summary=_payload(6),
        ai_keywords=(_payload(0), _payload(2)),
    )
    submitter = Submitter(_payload(1), _payload(0), "javascript:alert(11)")
    featuring = Featuring(
        X,
        LATEST,
        "huggingface",
        NOW,
        submitter,
        upvotes=3,
        thumbnail="javascript:alert(12)",
        organization=_payload(3),
    )
    return Record(paper, featuring)


@pytest.fixture
def hub(sqlite_engine: Engine) -> Iterator[tuple[TestClient, TestClient]]:
    """(an admin's browser, a member's browser) over the webhub papers plus one hostile paper, with a
    hostile comment, a claim and a hostile API token name."""
    with members.client(sqlite_engine, rate_limits=RateLimits(signup="100 per minute")) as admin:
        with sqlite_engine.begin() as conn:
            upsert_records(conn, [_hostile_record()], NOW)
        members.signup(admin, "root-admin")
        member = members.another(admin)
        members.signup(member, "bob")
        with sqlite_engine.begin() as conn:
            bob = user_store.get_user_by_name(conn, "bob")
            assert bob is not None
            for payload in XSS_CORPUS:
                comment_ops.post(conn, bob, X, payload, NOW)
            claim_ops.claim_authorship(conn, bob, X, f"Author {XSS_CORPUS[0]}", NOW)
            accounts.create_token(conn, bob, _payload(1), NOW)
        yield admin, member


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of inline <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script" and not dict(attrs).get("src")
        if self._in_script:
            self.inline_scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_scripts[-1] += data


def assert_no_markup_from_data(html: str, where: str) -> None:
    parser = _Tags()
    parser.feed(html)
    assert not parser.inline_scripts, f"{where}: inline <script>"
    for tag, attrs in parser.tags:
        assert tag not in ("iframe", "object", "embed", "style"), f"{where}: <{tag}> came out"
        for name, value in attrs:
            assert not name.startswith("on"), f"{where}: <{tag} {name}=…> event handler"
            if name in ("href", "src", "action", "formaction", "xlink:href") and value:
                assert not value.strip().lower().startswith(("javascript:", "data:text")), (
                    f"{where}: <{tag} {name}={value!r}>"
                )
        if tag == "script":
            assert dict(attrs).get("src", "").startswith("/static/"), f"{where}: script from elsewhere"


def _pages(c: TestClient) -> list[str]:
    return [
        "/papers",
        f"/papers/date/{LATEST.isoformat()}",
        "/papers/week/2025-W10",
        "/papers/month/2025-03",
        "/papers/trending",
        f"/papers/{X}",
        f"/papers/{A}",
        "/papers?q=sparse+attention",
        "/papers?q=" + XSS_CORPUS[0],
        "/about",
        "/signup",
        "/login",
        "/settings",
        "/papers/submit",
        "/u/bob",
        "/u/root-admin",
        "/admin",
        "/nothing-here",
        "/papers/date/2025-13-01",
    ]


def test_no_page_carries_markup_from_data_or_inline_script(hub: tuple[TestClient, TestClient]) -> None:
    admin, member = hub
    for browser in (admin, member, TestClient(admin.app, base_url="https://testserver")):
        for path in _pages(browser):
            r = browser.get(path)
            assert r.status_code in (200, 303, 400, 403, 404), (path, r.status_code)
            if "html" in r.headers.get("content-type", ""):
                assert_no_markup_from_data(r.text, path)
                assert "<script>alert" not in r.text, path


def test_feeds_carry_no_markup_from_data(hub: tuple[TestClient, TestClient]) -> None:
    admin, _ = hub
    for path in (
        "/papers/feed.atom",
        f"/papers/date/{LATEST.isoformat()}/feed.atom",
        "/papers/trending/feed.atom",
        "/u/bob/feed.atom",
        "/papers/feed.atom?q=sparse",
    ):
        r = admin.get(path)
        assert r.status_code == 200, path
        assert "<script" not in r.text and "<img" not in r.text and "<svg" not in r.text, path
        assert re.search(r"""(href|src)=["']\s*javascript:""", r.text, re.IGNORECASE) is None, path
        assert 'type="html"' not in r.text, path  # every text construct is plain text: readers show it as is
        assert re.search(r"<[a-z]+[^>]*\son\w+=", r.text) is None, path


def _json_paths() -> list[str]:
    return [
        f"/api/daily_papers?date={LATEST.isoformat()}",
        "/api/daily_papers",
        f"/api/papers/{X}",
        "/api/papers",
        "/api/papers/search?q=sparse",
        "/api/trending",
        f"/api/papers/{X}/comments",
        "/api/users/bob",
        "/api/admin",
    ]


def test_json_never_carries_markup_or_secrets(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    admin, member = hub
    for browser in (admin, member):
        for path in _json_paths():
            r = browser.get(path)
            if path == "/api/admin" and browser is member:
                assert r.status_code == 403
                continue
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
            text = r.text
            assert "<" not in text and ">" not in text, f"{path}: raw angle brackets in JSON"
            decoded = json.dumps(r.json())
            for secret_word in ("@example.org", "argon2", "password", "pb_session", "token_hash", '"email"'):
                assert secret_word not in decoded, f"{path}: {secret_word}"
    # the hostile strings are still there as data, escaped
    title = admin.get(f"/api/papers/{X}").json()["title"]
    assert XSS_CORPUS[0] in title


# --- CSRF on every write -----------------------------------------------------------------------------------


SAMPLE = {
    "arxiv_id": A,
    "arxiv_id:path": A,
    "comment_id": "1",
    "claim_id": "1",
    "token_id": "1",
    "user_id": "2",
    "username": "bob",
    "name:path": "Ada Lovelace",  # /authors/{name}/follow
    "kind": "author",  # DELETE /api/follows/{kind}/{name}
    "collection_id": "1",  # /collections/{collection_id}/…
}
EXEMPT = {"/unsubscribe"}  # RFC 8058 one-click: the signed token in the URL is the authority (issue 5)


def _writes(app: Any) -> list[tuple[str, str]]:
    out = []
    for route in all_routes(app):
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or ()):
            if method in ("GET", "HEAD", "OPTIONS") or path in EXEMPT:
                continue
            filled = re.sub(r"\{([^}]+)\}", lambda m: SAMPLE[m.group(1)], path)
            out.append((method, filled))
    return out


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
            for name, table in metadata.tables.items()
        }


def test_every_write_route_refuses_a_missing_or_foreign_csrf_token(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    admin, member = hub
    writes = _writes(admin.app)
    assert len(writes) >= 15, writes  # the walk finds the routes (a walk that finds none proves nothing)
    foreign = members.csrf(member, "/settings")
    before = _snapshot(sqlite_engine)
    form = {"body": "hi", "arxiv": B, "username": "x", "password": "y" * 10, "name": "n", "day": "2025-03-05"}
    for method, path in writes:
        for data in (form, {**form, "csrf_token": foreign}, {**form, "csrf_token": "f" * 64}):
            r = admin.request(method, path, data=data, follow_redirects=False)
            assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
        r = admin.request(method, path, json={"body": "hi", "arxiv": B}, follow_redirects=False)
        assert r.status_code == 403, (method, path, "json", r.status_code)
    assert _snapshot(sqlite_engine) == before


def test_api_writes_are_judged_by_the_token_without_a_cookie_and_by_csrf_with_one(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    """Under /api/, no session cookie: no token or a bad one is a 401 with `WWW-Authenticate: Bearer`, on
    every write alike (upvote, submit, comments: no 403 "form expired" for a script). With the cookie, a
    junk `Authorization` header is a 401 too, with or without the CSRF token: the header alone decides
    (tests/test_authority.py). Nothing changes either way."""
    admin, _ = hub
    writes = [(m, p) for m, p in _writes(admin.app) if p.startswith("/api/")]
    assert len(writes) >= 5, writes
    script = TestClient(admin.app, base_url="https://testserver")  # no cookies at all
    before = _snapshot(sqlite_engine)
    body = {"body": "hi", "arxiv": B}
    for method, path in writes:
        for headers in ({}, {"Authorization": "Bearer pb_junk"}, {"Authorization": "Basic YTpi"}):
            for kwargs in ({"json": body}, {"data": body}):
                r = script.request(method, path, headers=headers, follow_redirects=False, **kwargs)
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text[:200])
                assert r.headers["www-authenticate"] == "Bearer", (method, path)
                assert "error" in r.json()
        r = admin.request(method, path, headers={"Authorization": "Bearer pb_junk"}, json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (method, path)
        r = admin.request(
            method,
            path,
            headers={"Authorization": "Bearer pb_junk", "X-CSRF-Token": members.csrf(admin, "/settings")},
            json=body,
        )
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (method, path)
    assert _snapshot(sqlite_engine) == before


def test_session_cookies_are_httponly_samesite_and_secure_over_https(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine) as c:
        r = members.signup(c, "ada")
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("pb_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    site = Site(name="Lab", public_url="http://localhost:8000", trending_days=7)
    plain_app = create_app(sqlite_engine, site=site, clock=lambda: NOW, hasher=members.FAST_HASHER)
    plain = TestClient(plain_app, base_url="http://testserver")
    token = members.csrf(plain, "/signup")
    r = plain.post(
        "/signup",
        data={"username": "bob", "email": "b@example.org", "password": members.PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("pb_session="))
    assert "HttpOnly" in cookie and "Secure" not in cookie  # a plain-http hub (localhost) still signs in


def test_sign_in_rotates_the_session_id_and_sign_out_ends_it_on_the_server(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine) as c:
        members.signup(c, "ada")
        first = c.cookies["pb_session"]
        r = members.login(c, "ada")
        assert r.status_code == 303
        second = c.cookies["pb_session"]
        assert second != first
        stolen = members.another(c)
        stolen.cookies.set("pb_session", first)
        assert stolen.get("/settings", follow_redirects=False).status_code == 303  # the old id is dead
        stolen.cookies.set("pb_session", second)
        assert stolen.get("/settings").status_code == 200
        c.post("/logout", data={"csrf_token": members.csrf(c, "/settings")})
        assert stolen.get("/settings", follow_redirects=False).status_code == 303  # ended on the server


# --- headers ------------------------------------------------------------------------------------------------


def test_security_headers_on_every_kind_of_response(hub: tuple[TestClient, TestClient]) -> None:
    admin, _ = hub
    visitor = TestClient(admin.app, base_url="https://testserver")
    responses = [
        admin.get("/papers"),
        admin.get(f"/api/papers/{A}"),
        admin.get("/api/papers/2501.99999"),
        admin.get("/papers/feed.atom"),
        admin.get("/static/app.css"),
        admin.get("/docs"),
        admin.get("/openapi.json"),
        admin.get("/nowhere"),
        visitor.get("/settings", follow_redirects=False),
        admin.post("/logout", follow_redirects=False),  # 403: no token
    ]
    for r in responses:
        where = f"{r.request.method} {r.request.url.path} → {r.status_code}"
        csp = r.headers.get("content-security-policy", "")
        script_src = re.search(r"script-src ([^;]+)", csp)
        assert script_src and "unsafe-inline" not in script_src.group(1) and "unsafe-eval" not in csp, where
        assert "frame-ancestors 'none'" in csp, where
        assert r.headers.get("x-content-type-options") == "nosniff", where
        assert r.headers.get("referrer-policy"), where
        assert r.headers.get("x-frame-options") == "DENY", where


def test_swagger_ui_starts_without_inline_script(hub: tuple[TestClient, TestClient]) -> None:
    admin, _ = hub
    page = admin.get("/docs").text
    assert_no_markup_from_data(page, "/docs")
    assert admin.get("/static/swagger-init.js").status_code == 200


# --- next= --------------------------------------------------------------------------------------------------

HOSTILE_NEXT = (
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "javascript:alert(1)",
    "http:/evil.example",
    "/%0d%0aSet-Cookie:x=1",
    " //evil.example",
)


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_next_only_leads_to_paths_on_this_site(sqlite_engine: Engine, target: str) -> None:
    with members.client(sqlite_engine, loaded=False) as c:
        token = members.csrf(c, "/signup")
        r = c.post(
            "/signup",
            data={
                "username": "ada",
                "email": "a@example.org",
                "password": members.PASSWORD,
                "csrf_token": token,
                "next": target,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert "evil" not in location and "\n" not in location, location
        c.post("/logout", data={"csrf_token": members.csrf(c, "/settings")})
        r = c.post(
            "/login",
            data={
                "username": "ada",
                "password": members.PASSWORD,
                "csrf_token": members.csrf(c),
                "next": target,
            },
            follow_redirects=False,
        )
        assert r.headers["location"] == (target if target.startswith("/%") else "/papers")
        page = c.get("/login", params={"next": target})
        assert f'value="{target}"' not in page.text or target.startswith("/%")


def test_a_good_next_is_followed(sqlite_engine: Engine) -> None:
    with members.client(sqlite_engine) as c:
        members.signup(c, "ada")
        c.post("/logout", data={"csrf_token": members.csrf(c, "/settings")})
        r = c.post(
            "/login",
            data={
                "username": "ada",
                "password": members.PASSWORD,
                "csrf_token": members.csrf(c),
                "next": f"/papers/{A}#comments",
            },
            follow_redirects=False,
        )
        assert r.headers["location"] == f"/papers/{A}#comments"


def test_the_day_list_still_renders_with_hostile_data_on_it(hub: tuple[TestClient, TestClient]) -> None:
    admin, _ = hub
    page = admin.get(f"/papers/date/{date(2025, 3, 5).isoformat()}").text
    assert "Hostile &lt;script&gt;" in page


def test_head_answers_like_get_without_a_body_and_changes_nothing(
    hub: tuple[TestClient, TestClient], sqlite_engine: Engine
) -> None:
    admin, _ = hub
    before = _snapshot(sqlite_engine)
    for path in ("/papers", f"/papers/{A}", "/api/daily_papers", "/u/bob", "/nowhere", "/logout"):
        got, head = admin.get(path, follow_redirects=False), admin.head(path, follow_redirects=False)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        assert head.headers.get("content-security-policy"), path
    assert _snapshot(sqlite_engine) == before
