"""What the server says about the connection, on the wire: whose address a request comes from (proxy headers
are believed only from the proxies `paperboy serve` is told of), HSTS on an https hub, and the security
headers on every answer, a crash's 500 included (no traceback in it)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from browserkit import free_port, serving
from fastapi import FastAPI
from servekit import Served, exchange, serve
from sqlalchemy.engine import Engine

from paperboy.web.app import create_app
from paperboy.web.deps import Site

_CSRF = re.compile(rb'name="csrf_token" value="([0-9a-f]{64})"')
SIGNIN_LIMIT = {"PAPERBOY_RATE_SIGNIN": "3 per 5 minutes"}


def _public_token(server: Served) -> str:
    status, _, page = exchange(
        server.host, server.port, b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    found = _CSRF.search(page)
    assert status == 200 and found, status
    return found.group(1).decode()


def _sign_in(server: Served, token: str, username: str, forwarded_for: str) -> int:
    """One failed sign-in (no such member), sent as if through a proxy that names `forwarded_for`."""
    form = f"username={username}&password=wrong&csrf_token={token}".encode()
    request = (
        "POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Forwarded-For: {forwarded_for}\r\nX-Forwarded-Proto: https\r\nContent-Length: {len(form)}\r\n\r\n"
    ).encode() + form
    status, _, _ = exchange(server.host, server.port, request, timeout=30)
    return status


def test_by_default_forwarded_addresses_are_not_believed(tmp_path: Path) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: anyone on this machine (or a
    local proxy that passes the header on) could then pick a fresh address for every guess."""
    with serve(tmp_path, env=SIGNIN_LIMIT) as server:
        token = _public_token(server)
        statuses = [_sign_in(server, token, f"nobody{i}", f"203.0.113.{i}") for i in range(5)]
    assert statuses == [400, 400, 400, 429, 429]  # one address: the one that connected


def test_a_named_proxy_s_forwarded_addresses_are_each_their_own(tmp_path: Path) -> None:
    with serve(tmp_path, "--forwarded-allow-ips", "127.0.0.1", env=SIGNIN_LIMIT) as server:
        token = _public_token(server)
        statuses = [_sign_in(server, token, f"nobody{i}", f"203.0.113.{i}") for i in range(6)]
        assert statuses == [400] * 6  # six visitors behind the proxy, one try each
        # one visitor's tries still count, under their own address, whatever the proxy's other clients do
        again = [_sign_in(server, token, f"other{i}", "198.51.100.7") for i in range(4)]
    assert again == [400, 400, 400, 429]


def test_the_proxies_setting_is_checked(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "paperboy", "serve", "--no-sync", "--forwarded-allow-ips", "proxy.internal"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PAPERBOY_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode != 0
    assert (
        "proxy.internal" in out.stderr and "not an IP address" in out.stderr and "Traceback" not in out.stderr
    )


# --- HSTS and the headers on a crash ------------------------------------------------------------------------

BASELINE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def _crashing_app(engine: Engine, public_url: str) -> FastAPI:
    """The real app plus two routes that fail as a bug would."""
    app = create_app(engine, site=Site(name="Lab Papers", public_url=public_url, trending_days=7))

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("secret internals: /srv/paperboy/db password=hunter2")

    @app.get("/api/crash")
    def api_crash() -> None:
        raise RuntimeError("secret internals: /srv/paperboy/db password=hunter2")

    return app


@contextmanager
def _served(app: FastAPI) -> Iterator[str]:
    with serving(app, free_port()) as url:
        yield url


def _has_security_headers(response: httpx.Response) -> None:
    for name, value in BASELINE.items():
        assert response.headers.get(name) == value, (response.status_code, name, dict(response.headers))
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")


def test_an_https_hub_sends_hsts_and_a_crash_still_carries_every_header(sqlite_engine: Engine) -> None:
    with _served(_crashing_app(sqlite_engine, "https://papers.example.org")) as url:
        page = httpx.get(url + "/papers", timeout=30)
        html = httpx.get(url + "/crash", timeout=30)
        api = httpx.get(url + "/api/crash", timeout=30)
        missing = httpx.post(url + "/api/papers/2401.00001/comments", content=b"x" * 300_000, timeout=30)
    assert page.status_code == 200
    for response in (page, html, api, missing):
        _has_security_headers(response)
        hsts = response.headers.get("strict-transport-security", "")
        assert "includeSubDomains" in hsts, (response.status_code, hsts)
        assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 365 * 24 * 3600  # type: ignore[union-attr]
    assert html.status_code == 500 and html.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in html.text and "Lab Papers" in html.text  # the site's own error page
    assert api.status_code == 500 and json.loads(api.text)["error"].startswith("Something went wrong")
    assert missing.status_code == 413
    for response in (html, api):
        assert "hunter2" not in response.text and "Traceback" not in response.text
        assert response.headers["cache-control"] == "no-store"


def test_a_plain_http_hub_sends_no_hsts(sqlite_engine: Engine) -> None:
    with _served(_crashing_app(sqlite_engine, "http://localhost:8000")) as url:
        for path in ("/papers", "/crash", "/api/crash"):
            response = httpx.get(url + path, timeout=30)
            assert "strict-transport-security" not in response.headers, path
            _has_security_headers(response)


def test_a_crash_inside_the_error_page_still_answers_with_the_headers(sqlite_engine: Engine) -> None:
    app = _crashing_app(sqlite_engine, "https://papers.example.org")
    app.state.templates = None  # every page, the error page included, now fails
    with _served(app) as url:
        response = httpx.get(url + "/papers", timeout=30)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    _has_security_headers(response)
    assert "strict-transport-security" in response.headers
