"""Input that cannot crash (issue 12): lone surrogates, NUL and other C0 control characters, bytes that are
not UTF-8, integers beyond 64 bits and JSON too deep to parse are a 400 naming the field, at every entry
point — JSON bodies, forms, query strings, path parameters — and nothing is stored; on the command line a
usage error, no traceback; in an ingested file they are scrubbed and the import goes on.

On the wire (uvicorn, raw bytes through httpx), on SQLite and PostgreSQL. Before, a `"\\ud800"` comment was
a 500 on both, NUL was stored on SQLite and a 500 on PostgreSQL, and `?p=99999999999999999999` a 404.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
import webhub
from livehub import Live, live
from pydantic import BaseModel
from routes import all_routes
from sqlalchemy.engine import Engine

from paperboy.db.schema import metadata, papers

A = webhub.A
SURROGATE_JSON = b'"\\ud800"'  # a lone surrogate, as JSON writes it
BAD_UTF8 = "%ED%A0%80"  # the surrogate's UTF-8-like bytes: no text


@pytest.fixture
def hub(engine: Engine) -> Iterator[tuple[Live, Engine, dict[str, str]]]:
    """The hub served, with a member (session cookie, its CSRF token, an API token) and one comment."""
    with live(engine) as h:
        session = h.signup("ada")
        token = h.make_token(session, "bot")
        made = h.request(
            "POST",
            f"/api/papers/{A}/comments",
            headers={"authorization": f"Bearer {token}"},
            json={"body": "ok"},
        )
        assert made.status_code == 201, made.text
        yield (
            h,
            engine,
            {"session": session, "csrf": h.csrf(session), "token": token, "comment": made.json()["id"]},
        )


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(sa.select(table)).all()), key=repr)
            for name, table in metadata.tables.items()
            if name not in ("sessions",)
        }


def _message(r: httpx.Response) -> str:
    """The error's message: `error` of the JSON under /api/, the error page's message elsewhere."""
    if r.headers["content-type"].startswith("application/json"):
        return str(r.json()["error"])
    found = re.search(r'<p class="error-message">(.*?)</p>', r.text, re.S)
    assert found, r.text[:300]
    return html.unescape(found.group(1))


def _refused(r: httpx.Response, field: str) -> None:
    """A 400 whose message starts with the field's name (`q: …`, `body.parent_id: …`, `path: …`)."""
    assert r.status_code == 400, (r.status_code, r.text[:300])
    message = _message(r)
    assert message.startswith(f"{field}: ") or message.startswith(f"{field}."), (field, message)


# --- JSON bodies --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"body": ' + SURROGATE_JSON + b"}",
        b'{"body": "a\\u0000b"}',
        b'{"body": "bell \\u0007"}',
        b'{"body": "fine", "parent_id": 18446744073709551616}',
        b'{"body": "fine", "parent_id": ' + b"9" * 5000 + b"}",
        b'{"body": "fine", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=["surrogate", "nul", "bell", "parent-2**64", "5000-digits", "deep"],
)
def test_crafted_json_comment_is_400_naming_body_and_stores_nothing(
    hub: tuple[Live, Engine, dict[str, str]], raw: bytes
) -> None:
    h, engine, c = hub
    before = _snapshot(engine)
    auth = {"authorization": f"Bearer {c['token']}", "content-type": "application/json"}
    r = h.request("POST", f"/api/papers/{A}/comments", headers=auth, content=raw)
    _refused(r, "body")
    r = h.request("PATCH", f"/api/comments/{c['comment']}", headers=auth, content=raw)
    _refused(r, "body")
    # the same from a signed-in browser (session cookie and its CSRF header)
    browser = {"x-csrf-token": c["csrf"], "content-type": "application/json"}
    r = h.request("POST", f"/api/papers/{A}/comments", session=c["session"], headers=browser, content=raw)
    _refused(r, "body")
    assert _snapshot(engine) == before


def test_the_json_path_names_the_field(hub: tuple[Live, Engine, dict[str, str]]) -> None:
    h, _, c = hub
    auth = {"authorization": f"Bearer {c['token']}", "content-type": "application/json"}
    r = h.request(
        "POST",
        f"/api/papers/{A}/comments",
        headers=auth,
        content=b'{"body": "x", "parent_id": 18446744073709551616}',
    )
    assert r.json()["error"].startswith("body.parent_id: "), r.text
    r = h.request("POST", "/api/papers/submit", headers=auth, content=b'{"arxiv": "2503.0\\ud800"}')
    assert r.json()["error"].startswith("body.arxiv: "), r.text


# --- forms --------------------------------------------------------------------------------------------------


FORMS = [
    # (path, the form without its CSRF token, the field made bad, signed in)
    (f"/papers/{A}/comments", {"body": "a comment"}, "body", True),
    (f"/papers/{A}/comments", {"body": "a reply", "parent_id": "1"}, "parent_id", True),
    ("/settings/tokens", {"name": "a token"}, "name", True),
    ("/papers/submit", {"arxiv": "2503.07777"}, "arxiv", True),
    (
        "/signup",
        {"username": "grace", "email": "grace@example.org", "password": "lovelace-babbage-1843"},
        "username",
        False,
    ),
    (
        "/signup",
        {"username": "grace", "email": "grace@example.org", "password": "lovelace-babbage-1843"},
        "password",
        False,
    ),
    ("/login", {"username": "ada", "password": "whatever-it-is"}, "password", False),
]


@pytest.mark.parametrize("bad", ["%00", BAD_UTF8, "%01"], ids=["nul", "not-utf8", "control"])
@pytest.mark.parametrize(
    ("path", "form", "field", "signed_in"), FORMS, ids=[f"{p}:{f}" for p, _, f, _ in FORMS]
)
def test_crafted_form_field_is_400_and_stores_nothing(
    hub: tuple[Live, Engine, dict[str, str]],
    path: str,
    form: dict[str, str],
    field: str,
    signed_in: bool,
    bad: str,
) -> None:
    h, engine, c = hub
    before = _snapshot(engine)
    fields = {**form, "csrf_token": c["csrf"] if signed_in else h.csrf()}
    encoded = "&".join(
        f"{quote(k)}={quote(v)}{bad if k == field else ''}" for k, v in fields.items()
    ).encode()
    r = h.request(
        "POST",
        path,
        session=c["session"] if signed_in else None,
        headers={"content-type": "application/x-www-form-urlencoded"},
        content=encoded,
    )
    _refused(r, field)
    assert _snapshot(engine) == before


def test_a_multipart_form_is_checked_too(hub: tuple[Live, Engine, dict[str, str]]) -> None:
    h, engine, c = hub
    before = _snapshot(engine)
    r = h.request(
        "POST",
        "/settings/tokens",
        session=c["session"],
        files={"name": (None, b"tok\x00en"), "csrf_token": (None, c["csrf"].encode())},
    )
    _refused(r, "name")
    assert _snapshot(engine) == before


# --- query strings and paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ("/papers?q=a%00b", "q"),
        (f"/papers?q=a{BAD_UTF8}b", "q"),
        ("/papers?q=a%1Bb", "q"),
        ("/api/papers/search?q=a%00b", "q"),
        (f"/api/papers/search?q={BAD_UTF8}", "q"),
        ("/api/daily_papers?submitter=a%00b", "submitter"),
        ("/papers/feed.atom?q=%00", "q"),
        ("/papers?p=99999999999999999999", "p"),
        ("/papers/trending?p=99999999999999999999", "p"),
        (f"/papers/date/{webhub.LATEST}?p=99999999999999999999", "p"),
        ("/papers/week/2025-W10?p=1000001", "p"),
        ("/api/daily_papers?p=99999999999999999999", "p"),
        ("/api/daily_papers?limit=-99999999999999999999", "limit"),
        ("/api/papers/search?q=x&p=99999999999999999999", "p"),
        ("/authors/Ada%20Lovelace?p=99999999999999999999", "p"),
        ("/papers/2503.0%00", "path"),
        (f"/papers/{BAD_UTF8}", "path"),
        ("/u/a%00b", "path"),
        ("/api/users/a%00b", "path"),
        ("/api/papers/2503.0%00/comments", "path"),
        ("/static/app%00.css", "path"),
        ("/nowhere%00", "path"),
    ],
)
def test_crafted_query_or_path_is_400_naming_it(
    hub: tuple[Live, Engine, dict[str, str]], target: str, field: str
) -> None:
    h, engine, c = hub
    before = _snapshot(engine)
    for session in (None, c["session"]):
        _refused(h.request("GET", target, session=session), field)
        assert h.request("HEAD", target, session=session).status_code == 400
    assert _snapshot(engine) == before


# --- every route --------------------------------------------------------------------------------------------

SAMPLES = {
    "arxiv_id": A,
    "arxiv_id:path": A,
    "paper_id:path": A,
    "paper_id": A,
    "comment_id": "1",
    "claim_id": "1",
    "token_id": "1",
    "user_id": "1",
    "username": "ada",
    "name:path": "Ada Lovelace",
    "name": "Ada Lovelace",
    "day": str(webhub.LATEST),
    "week": "2025-W10",
    "month": "2025-03",
    "slug": "reading-list",  # a collection's
    "collection_id": "1",
    "kind": "author",  # what a follow names (DELETE /api/follows/{kind}/{name})
}
BAD = {"nul": ("a%00b", b'"a\\u0000b"'), "surrogate": (BAD_UTF8, SURROGATE_JSON)}


def _declared(route: Any) -> tuple[list[str], list[str], list[str]]:
    """A route's declared query, path and body (form fields, or a JSON model's fields) parameters, those
    of its dependencies included."""
    query: list[str] = []
    path: list[str] = []
    body: list[str] = []
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        query += [p.alias for p in dependant.query_params]
        path += [p.alias for p in dependant.path_params]
        for field in dependant.body_params:
            model = getattr(field.field_info, "annotation", None)
            if isinstance(model, type) and issubclass(model, BaseModel):
                body += list(model.model_fields)
            else:
                body.append(field.alias)
        stack.extend(dependant.dependencies)
    return sorted(set(query)), sorted(set(path)), sorted(set(body))


def _fill(path: str, bad_param: str | None = None, bad: str = "") -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        value = quote(SAMPLES[name], safe="/" if name.endswith(":path") else "")
        return value[:-1] + bad if name.split(":")[0] == bad_param else value

    return re.sub(r"\{([^}]+)\}", one, path)


def test_no_route_answers_500_to_nul_or_a_surrogate_in_any_parameter(
    hub: tuple[Live, Engine, dict[str, str]],
) -> None:
    """Generated from the route table: every declared query, path and body parameter of every route, sent
    NUL and a surrogate (as bytes that are no UTF-8, or JSON's escape), by a member's API token and by
    nobody: each is a 400 naming it, and the database is unchanged."""
    h, engine, c = hub
    from paperboy.web.app import create_app

    app = create_app(engine)
    before = _snapshot(engine)
    sent = 0
    with httpx.Client(timeout=60) as client:  # one connection, kept alive
        for route in all_routes(app):
            path = getattr(route, "path", "")
            methods = sorted(set(getattr(route, "methods", None) or ()) - {"HEAD", "OPTIONS"})
            query, path_params, body = _declared(route)
            for method in methods:
                for label, (in_url, in_json) in BAD.items():
                    cases: list[tuple[str, dict[str, Any], str]] = []
                    for name in query:
                        cases.append((f"{_fill(path)}?{quote(name)}=x{in_url}", {}, name))
                    for name in path_params:
                        cases.append((_fill(path, name, in_url), {}, "path"))
                    if method != "GET":
                        for name in [*body, "body", "arxiv"]:
                            form = f"{quote(name)}=x{in_url}".encode()
                            cases.append((_fill(path), {"content": form, "form": True}, name))
                            doc = b"{" + json.dumps(name).encode() + b": " + in_json + b"}"
                            cases.append((_fill(path), {"content": doc}, f"body.{name}"))
                    for target, kw, field in cases:
                        is_form = kw.pop("form", False)
                        ctype = "application/x-www-form-urlencoded" if is_form else "application/json"
                        for auth in ({}, {"authorization": f"Bearer {c['token']}"}):
                            headers = {**auth, "content-type": ctype} if "content" in kw else auth
                            r = client.request(method, h.url + target, headers=headers, **kw)
                            client.cookies.clear()
                            assert r.status_code == 400, (method, target, label, r.status_code, r.text[:200])
                            assert _message(r).startswith(f"{field}: "), (method, target, field, _message(r))
                            sent += 1
    assert sent > 300, sent  # the walk found the routes and their parameters
    assert _snapshot(engine) == before


# --- the command line ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg", [b"a\xffb", b"a\x01b", b"\xed\xa0\x80"], ids=["not-utf8", "control", "surrogate"]
)
def test_a_crafted_argument_is_a_usage_error_not_a_traceback(tmp_path: Path, arg: bytes) -> None:
    env = {"PAPERBOY_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "paperboy", "search", arg], capture_output=True, env=env, timeout=120
    )
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert "Invalid value for 'QUERY'" in err
    assert "Traceback" not in err


# --- ingested files -----------------------------------------------------------------------------------------


def test_an_ingested_file_with_crafted_text_is_scrubbed_not_fatal(engine: Engine, tmp_path: Path) -> None:
    """A snapshot line with a lone surrogate, NUL and controls in its text (JSON escapes), and a line with a
    byte that is not UTF-8: both stored, surrogates as U+FFFD, NUL and controls dropped, on both databases.
    The file's own name is not UTF-8 either: paths are left alone."""
    bad = {
        "id": "2501.00001",
        "title": "Sur\ud800rogate \x00NUL and \x07bell",
        "authors": ["Ada\x00 Lovelace", "Alan \udfffTuring"],
        "categories": ["cs.CL"],
        "comment": "12 pages\x0c",
        "summary": "Line one\x1b[31m\nline two\x00.",
        "listing_date": "2025-01-15",
        "doi": "10.1/x\x00y",
    }
    line = json.dumps(bad).encode()  # ensure_ascii: the surrogates travel as \ud800 escapes
    other = b'{"id": "2501.00002", "title": "Caf\xe9", "summary": "s", "listing_date": "2025-01-15"}'
    raw = line + b"\n" + other + b"\n"  # the second line holds a latin-1 byte
    path = tmp_path / b"dump\xff.jsonl".decode("utf-8", "surrogateescape")
    path.write_bytes(raw)
    env = {
        "PAPERBOY_DATA_DIR": str(tmp_path / "data"),
        "PAPERBOY_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
    }
    # a real process: the file name reaches it as the operating system's bytes
    done = subprocess.run(
        [sys.executable, "-m", "paperboy", "ingest", "snapshot", os.fsencode(path)],
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    with engine.connect() as conn:
        rows = {r.arxiv_id: r for r in conn.execute(sa.select(papers)).all()}
    first = rows["2501.00001"]
    assert first.title == "Sur\ufffdrogate NUL and bell"
    assert list(first.authors) == ["Ada Lovelace", "Alan \ufffdTuring"]
    assert first.abstract == "Line one[31m line two."
    assert first.doi == "10.1/xy"
    assert rows["2501.00002"].title == "Caf\ufffd"


# --- the checks themselves ----------------------------------------------------------------------------------


def test_textcheck_refuses_and_scrubs_what_it_says() -> None:
    from paperboy.textcheck import check_json, check_text, scrub

    for good in ["plain", "tab\tnewline\nreturn\r", "émoji 🎉", "\ufffd", "\x7f"]:
        assert check_text("f", good) == good
        assert scrub(good) is good
    for bad in ["\x00", "a\ud800", "\udfff", "\x1b", "\x0b"]:
        with pytest.raises(Exception, match=r"^f: "):
            check_text("f", bad)
    assert scrub("a\x00b\ud800c\x1f") == "ab\ufffdc"
    with pytest.raises(Exception, match=r"^body\.tags\[1\]: "):
        check_json({"tags": ["ok", "\x00"]})
    with pytest.raises(Exception, match=r"^body\.n: "):
        check_json({"n": 2**63})
    check_json({"n": 2**63 - 1, "m": -(2**63), "f": 1e308, "b": True, "z": None})
