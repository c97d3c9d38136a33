"""Helpers for the community tests: the webhub app served as HTTPS (so Secure cookies travel), members made
through the real sign-up form, and the CSRF token read from a page the way a browser's form carries it."""

from __future__ import annotations

import re
from typing import Any

import webhub
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from paperboy.models import Paper
from paperboy.web.app import create_app
from paperboy.web.security import RateLimits

PASSWORD = "correct horse battery staple"
# argon2id still, with small costs: the suite signs up hundreds of members.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def app(
    engine: Engine,
    *,
    loaded: bool = True,
    rate_limits: RateLimits | None = None,
    fetch_paper: Any = None,
) -> Any:
    if loaded:
        webhub.load(engine)
    return create_app(
        engine,
        site=webhub.SITE,
        clock=lambda: webhub.NOW,
        hasher=FAST_HASHER,
        rate_limits=rate_limits,
        fetch_paper=fetch_paper,
    )


def client(engine: Engine, **kwargs: Any) -> TestClient:
    return TestClient(app(engine, **kwargs), base_url="https://testserver")


def another(c: TestClient) -> TestClient:
    """A second browser on the same app (its own cookies)."""
    return TestClient(c.app, base_url="https://testserver")


def csrf(c: TestClient, path: str = "/login") -> str:
    """The token the forms on `path` carry for this browser."""
    page = c.get(path)
    found = _CSRF.search(page.text)
    assert found, f"no csrf_token on {path} ({page.status_code})"
    return found.group(1)


def signup(c: TestClient, username: str, email: str | None = None, password: str = PASSWORD) -> Any:
    token = csrf(c, "/signup") if "pb_session" not in c.cookies else csrf(c, "/settings")
    response = c.post(
        "/signup",
        data={
            "username": username,
            "email": email or f"{username}@example.org",
            "password": password,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return response


def login(c: TestClient, username: str, password: str = PASSWORD) -> Any:
    response = c.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf(c)},
        follow_redirects=False,
    )
    return response


def paper(arxiv_id: str, title: str = "A Submitted Paper", **kw: Any) -> Paper:
    return Paper(arxiv_id=arxiv_id, title=title, abstract="An abstract.", authors=("Ada Lovelace",), **kw)
