"""A real server for the tests that speak HTTP on the wire: `create_app` over the test's engine (SQLite or
PostgreSQL, with the webhub's papers) under uvicorn on a free loopback port, and what members do done the
way a browser or a bot does it: the sign-up form, the CSRF token read from a page, an API token made on
/settings. Requests go out through httpx with nothing but the headers and body a test gives them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import members
import webhub
from browserkit import free_port, serving
from sqlalchemy.engine import Engine

from paperboy.web.app import create_app
from paperboy.web.deps import Site
from paperboy.web.security import RateLimits

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
_TOKEN = re.compile(r"pb_[A-Za-z0-9_-]{20,}")
ROOMY = RateLimits(
    signin="1000 per minute",
    signup="1000 per minute",
    vote="1000 per minute",
    comment="1000 per minute",
    submit="1000 per minute",
    claim="1000 per minute",
    subscribe="1000 per minute",
)


@dataclass
class Live:
    url: str

    def request(
        self,
        method: str,
        path: str,
        *,
        session: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """One request from a fresh client: the session cookie only when `session` is given."""
        sent = dict(headers or {})
        if session is not None:
            sent["cookie"] = f"pb_session={session}"
        return httpx.request(method, self.url + path, headers=sent, follow_redirects=False, timeout=60, **kw)

    def csrf(self, session: str | None = None, path: str = "/settings") -> str:
        """The token the forms on `path` carry for this session (the public one without a session)."""
        page = self.request("GET", path if session else "/signup", session=session)
        found = _CSRF.search(page.text)
        assert found, f"no csrf_token on {path} ({page.status_code})"
        return found.group(1)

    def signup(self, username: str, password: str = members.PASSWORD) -> str:
        """A new member through the sign-up form; their session cookie's value."""
        r = self.request(
            "POST",
            "/signup",
            data={
                "username": username,
                "email": f"{username}@example.org",
                "password": password,
                "csrf_token": self.csrf(),
            },
        )
        assert r.status_code == 303, r.text[:300]
        return r.cookies["pb_session"]

    def make_token(self, session: str, name: str = "bot") -> str:
        """A new API token of the session's member, made on /settings as a member does."""
        r = self.request(
            "POST", "/settings/tokens", session=session, data={"name": name, "csrf_token": self.csrf(session)}
        )
        assert r.status_code == 200, r.text[:300]
        found = _TOKEN.search(r.text)
        assert found, "no token on the page"
        return found.group(0)


@contextmanager
def live(engine: Engine, *, loaded: bool = True, **kwargs: Any) -> Iterator[Live]:
    """The app over `engine` served by uvicorn until the block ends (`kwargs` go to create_app)."""
    if loaded:
        webhub.load(engine)
    port = free_port()
    kwargs.setdefault("rate_limits", ROOMY)
    app = create_app(
        engine,
        site=Site(name="Lab Papers", public_url=f"http://127.0.0.1:{port}", trending_days=7),
        clock=lambda: webhub.NOW,
        hasher=members.FAST_HASHER,
        **kwargs,
    )
    with serving(app, port) as url:
        yield Live(url)
