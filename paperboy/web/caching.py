"""HTTP caching: validators, `Cache-Control`, `Vary` and 304s, so that a reverse proxy or CDN takes the crowd.

A pure ASGI middleware (no BaseHTTPMiddleware: that one runs the app in a task and re-streams every body).
For each GET (HEAD arrives here as GET, see `security.HeadAsGet`, which sits outside this one):

- a 200 whose body comes in one piece (every page, feed and JSON answer) gets `ETag: "<blake2b of the
  body>"` (strong: the same bytes, the same tag), and an `If-None-Match` that matches it is answered
  `304 Not Modified` with no body, keeping `ETag`, `Cache-Control`, `Vary` (RFC 9110 §13.1.2, §15.4.5).
  No `Last-Modified`: a list changes with every vote, and no time that covers the whole body is at hand
  without another query; the ETag is the validator (and `If-None-Match` wins over `If-Modified-Since`).
- `Cache-Control` says who may keep it (see `policy`): `public` only for the read-only pages, feeds and API
  reads, only when the request carries no `Cookie` and no `Authorization` (nothing in the answer can then
  depend on who asks), and never when the answer sets a cookie. Everything else is `private, no-cache`
  (a browser keeps it and revalidates: 304s still save the bytes) or `no-store` (settings, admin, the
  subscription links whose URL is a secret, anything that sets a cookie).
- `Vary: Cookie, Authorization` on every dynamic answer: a shared cache never hands a member's page (or a
  token's JSON) to someone else, and a browser does not show the anonymous copy after sign-in.
- errors and redirects (any status but 200) are `no-store` unless the route said otherwise.
- /static: `StaticFiles` sends its own ETag, Last-Modified and 304s; this adds `Cache-Control`: a year and
  `immutable` for files whose URL names their version (vendor/*-X.Y.Z, `?v=<hash>` from
  `templating.static_urls`), an hour otherwise. Its bodies stream through untouched.

Anything else (a body in several pieces, a non-GET) passes through: POST answers get `no-store` when the route
set no `Cache-Control`. Cost per cached request: one blake2b over the body (~30 µs for 50 KB).
"""

from __future__ import annotations

import hashlib
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Anonymous pages and API reads. The lists change when votes and comments arrive, all morning long: a copy
# at most a minute old is what a reader of huggingface.co/papers sees too. A proxy may serve a stale copy
# for 5 more minutes while it fetches the new one in the background (the crowd never waits on the origin,
# and the origin renders each URL about once a minute however many ask), and for a day when the origin is
# down or restarting.
PUBLIC = "public, max-age=60, stale-while-revalidate=300, stale-if-error=86400"
# Atom feeds: what they list changes when a day's list is imported (a few times a day); readers poll every
# 15 to 60 minutes.
PUBLIC_FEED = "public, max-age=300, stale-while-revalidate=3600, stale-if-error=86400"
PRIVATE = "private, no-cache"
NO_STORE = "no-store"
STATIC = "public, max-age=3600"
IMMUTABLE = "public, max-age=31536000, immutable"
VARY = ("Cookie", "Authorization")

_FEED = re.compile(r"^/(papers(/.+)?|u/[^/]+)/feed\.atom$")
_PAGE = re.compile(r"^/(papers(/(?!submit$).+)?|about|docs|u/[^/]+)$")
_API = re.compile(r"^/(api/(daily_papers|trending|papers(/.+)?|users/[^/]+)|openapi\.json)$")
_SECRET = re.compile(
    r"^/(settings|admin|subscription|subscribe/confirm|unsubscribe|api/admin|api/subscription"
    r"|papers/for-you|api/papers/for-you)(/|$)"  # a member's own feed: its Atom address is its key
)
_VERSIONED = re.compile(r"^/static/vendor/|^/static/.*-\d+\.\d+\.\d+[^/]*$")


def policy(path: str, anonymous: bool) -> str:
    """The `Cache-Control` of a 200 to a GET of `path` (not under /static) that sets no cookie."""
    if _SECRET.match(path):
        return NO_STORE
    if not anonymous:
        return PRIVATE
    if _FEED.match(path):
        return PUBLIC_FEED
    if _PAGE.match(path) or _API.match(path):
        return PUBLIC
    return PRIVATE


def static_policy(path: str, query: bytes) -> str:
    if _VERSIONED.match(path) or re.search(rb"(^|&)v=[^&]", query):
        return IMMUTABLE
    return STATIC


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def matches(if_none_match: str, etag: str) -> bool:
    """`If-None-Match` against our tag, by weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag."""
    if if_none_match.strip() == "*":
        return True
    ours = _opaque(etag)
    return any(_opaque(tag) == ours for tag in if_none_match.split(","))


def _add_vary(headers: MutableHeaders) -> None:
    present = {v.strip().lower() for v in headers.get("vary", "").split(",") if v.strip()}
    if "*" in present:
        return
    missing = [v for v in VARY if v.lower() not in present]
    if missing:
        headers["vary"] = ", ".join([headers["vary"], *missing] if present else missing)


# What a 304 keeps of the 200's header fields (RFC 9110 §15.4.5), plus anything that is not about the body.
_DROPPED_ON_304 = frozenset({b"content-length", b"content-type", b"content-encoding", b"transfer-encoding"})


class HttpCaching:
    """See the module's docstring. Sits inside `HeadAsGet` (so HEAD gets the GET's ETag and 304s)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET":
            await self.app(scope, receive, _no_store_unless_set(send))
            return
        path: str = scope["path"]
        if path.startswith("/static/"):
            await self.app(scope, receive, _static(send, static_policy(path, scope.get("query_string", b""))))
            return

        request = Headers(scope=scope)
        anonymous = "cookie" not in request and "authorization" not in request
        if_none_match = request.get("if-none-match")
        start: Message | None = None
        parts: list[bytes] = []

        async def send_cached(message: Message) -> None:
            nonlocal start
            if start is None and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                status = message["status"]
                if status != 200:
                    headers.setdefault("cache-control", NO_STORE)
                    await send(message)
                    return
                if "set-cookie" in headers:
                    headers["cache-control"] = NO_STORE  # its body may hold what the cookie keys
                    await send(message)
                    return
                headers.setdefault("cache-control", policy(path, anonymous))
                _add_vary(headers)
                if "no-store" in headers["cache-control"]:
                    await send(message)
                    return
                start = message  # held until the body shows whether it comes in one piece
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            if not parts and not message.get("more_body", False):
                await _answer(send, start, message.get("body", b""), if_none_match)
                start = None
                return
            if message.get("more_body", False) and not parts:
                # a body in several pieces (a stream): no ETag, sent as it comes
                parts.append(b"")
                await send(start)
            await send(message)

        await self.app(scope, receive, send_cached)


async def _answer(send: Send, start: Message, body: bytes, if_none_match: str | None) -> None:
    headers = MutableHeaders(scope=start)
    etag = headers.get("etag") or etag_of(body)
    headers["etag"] = etag
    if if_none_match is not None and matches(if_none_match, etag):
        kept = [(k, v) for k, v in start["headers"] if k.lower() not in _DROPPED_ON_304]
        await send({"type": "http.response.start", "status": 304, "headers": kept})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _no_store_unless_set(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).setdefault("cache-control", NO_STORE)
        await send(message)

    return wrapped


def _static(send: Send, cache_control: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            if message["status"] in (200, 206, 304):
                headers.setdefault("cache-control", cache_control)
            else:
                headers.setdefault("cache-control", NO_STORE)
        await send(message)

    return wrapped
