"""What keeps writes honest: CSRF tokens, rate limits, security headers, safe `next=` targets.

CSRF: a signed-in member's token is HMAC-SHA256(secret key, the session cookie's value): a token seen before
sign-in is worthless after it, and one member's token is worthless to another. Visitors who are not signed in
all get one public token (HMAC of a fixed word) and no cookie, so that the pages they read are the same bytes
for everyone and a shared cache may keep them (web/caching.py); what protects their forms (sign-up, sign-in,
subscribe) from other sites is the browser's own word on where a request comes from: a POST that
`Sec-Fetch-Site` (or, without it, `Origin`) says comes from another site is refused, as Go's
`net/http.CrossOriginProtection` does. Every POST / PUT / PATCH / DELETE under the protected routers must
carry the token as the form field `csrf_token` or the header `X-CSRF-Token` (htmx sends it through
`hx-headers` on <body>). One authority per request (`deps.viewer`): a request that sends `Authorization`
is judged by it alone, cookies ignored: a valid `Bearer <token>` acts for the token's member on any route
and needs no CSRF token (a page of another site cannot set the header); any other value is a 401 with
`WWW-Authenticate: Bearer`, whatever cookie and CSRF token come with it. Under /api/, a write with neither
the header nor the session cookie carries no one's authority: `deps.api_member` answers 401.

Rate limits use the `limits` package over a storage named by a URL: this process's memory by default (the
counts reset when the server restarts), or a Redis server that several servers share
(PAPERBOY_RATE_LIMIT_STORAGE=redis://…), so that a limit holds across all of them. Every check is one
atomic step of the storage (a lock in memory, a Lua script in Redis): requests that arrive together never
pass a limit together. Sign-in counts only failures per account and per device (`Limiter.reserve`).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperboy.errors import Forbidden, RateLimited

SESSION_COOKIE = "pb_session"
ANON_COOKIE = "pb_csrf"  # no longer handed out (anonymous pages set no cookie); sign-in still deletes it
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_PUBLIC_BASIS = "anonymous"  # what the token of visitors who are not signed in is an HMAC of
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# No inline script anywhere (htmx's indicator <style> is switched off in base.html's htmx-config). Styles
# allow inline attributes because KaTeX positions glyphs with them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SafeJSONResponse(JSONResponse):
    """JSON with `<`, `>` and `&` written as `\\u003c`, `\\u003e`, `\\u0026` (they only occur inside strings,
    so clients decode the same text): no JSON body ever holds markup, even when sniffed or mis-served. The
    app's default response class."""

    def render(self, content: Any) -> bytes:
        raw = super().render(content)
        return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def is_https(request: Request, public_url: str) -> bool:
    return request.url.scheme == "https" or public_url.startswith("https://")


HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")  # one year; https sites only
CRASH_BODY = b"Internal Server Error"


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on every response, and HSTS when the public URL is https.

    `create_app` puts it outside everything else, Starlette's ServerErrorMiddleware included, so that a
    crash's 500 carries them too; should even that fail before a response started, it answers the 500 itself
    (plain text, no traceback) and lets the exception go on to the server's log."""

    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        self.headers = SECURITY_HEADERS + ((HSTS,) if public_url.lower().startswith("https://") else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-frame-options"]
                names = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in self.headers if k not in names)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(CRASH_BODY)).encode()),
                            (b"cache-control", b"no-store"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": CRASH_BODY})
            raise


class HeadAsGet:
    """Pure ASGI middleware: HEAD is answered as GET without the body (FastAPI routes declare GET only),
    so link checkers and `curl -I` see the real status and headers and, like GET, change nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def _sign(key: bytes, basis: str) -> str:
    return hmac.new(key, b"csrf:" + basis.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token this visitor's forms must send back: bound to the session cookie when there is one, else the
    public token (the same for every visitor, and no cookie: anonymous pages stay cacheable)."""
    key: bytes = request.app.state.secret_key
    return _sign(key, request.cookies.get(SESSION_COOKIE) or _PUBLIC_BASIS)


def _cross_site(request: Request) -> bool:
    """Whether the browser says this request was sent by another site's page: `Sec-Fetch-Site` when present
    (every current browser over HTTPS and on localhost), else an `Origin` other than this site's ("null"
    included). A request with neither header is not from a browser that could be tricked into sending it."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.lower() not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    public = urlsplit(request.app.state.site.public_url)
    own = {str(request.base_url).rstrip("/"), f"{public.scheme}://{public.netloc}"}
    return origin.rstrip("/") not in own


def set_session_csrf_basis(request: Request, session_token: str) -> str:
    """The token forms must send once `session_token` is the visitor's session (right after sign-in)."""
    return _sign(request.app.state.secret_key, session_token)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def sent_csrf_token(request: Request) -> str | None:
    """The CSRF token the request carries: the `X-CSRF-Token` header, else a form's `csrf_token` field."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.method not in SAFE_METHODS:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    return sent


def csrf_waived(request: Request, *, by_token: bool) -> bool:
    """Whether this request needs no CSRF token: a safe method; a request an API token authenticated
    (`by_token`, decided by `deps.viewer`: no other site's page can set `Authorization`, and a request
    that sends a bad one never gets this far); under /api/, a request with neither `Authorization` nor the
    session cookie (it carries no one's authority: `deps.api_member` answers 401). The dependency that
    applies it is `deps.require_csrf`, which knows who the request is."""
    if request.method in SAFE_METHODS or by_token:
        return True
    return (
        is_api(request) and "authorization" not in request.headers and not request.cookies.get(SESSION_COOKIE)
    )


def check_csrf(request: Request, sent: str | None) -> None:
    """Forbidden unless `sent` is the token of this request's session cookie (or the public token, for a
    same-site request without one)."""
    if not sent:
        raise Forbidden(
            "Missing CSRF token: this form expired or did not come from this site. Reload and retry."
        )
    basis = request.cookies.get(SESSION_COOKIE)
    if not basis and _cross_site(request):
        raise Forbidden("This form was sent from another site: open it on this site and retry.")
    if not hmac.compare_digest(sent, _sign(request.app.state.secret_key, basis or _PUBLIC_BASIS)):
        raise Forbidden(
            "Wrong CSRF token: this form expired or did not come from this site. Reload and retry."
        )


def safe_next(value: str | None, default: str = "/papers") -> str:
    """A `next=` target only when it is a path on this site (no scheme, no host, no `//` or `\\` tricks)."""
    if not value or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith(("//", "/\\")) or "\\" in value:
        return default
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy named (uvicorn's proxy headers)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class RateLimits:
    """How many of each action one key (an account, an address, a member) may take per window."""

    signin: str = "10 per 5 minutes"  # per address (attempts); per account and per device (failures)
    signup: str = "5 per hour"  # per IP
    vote: str = "60 per minute"  # per member
    comment: str = "10 per minute"  # per member
    submit: str = "20 per hour"  # per member
    claim: str = "20 per hour"  # per member
    collect: str = "120 per minute"  # per member: saves and collection changes
    subscribe: str = "10 per hour"  # per address (and at most 3 confirmation mails per email per 6 hours)
    signup_mail: str = "3 per 6 hours"  # sign-up mails to one email address (PAPERBOY_SIGNUP_VERIFY_EMAIL)

    def parsed(self) -> dict[str, RateLimitItem]:
        return {name: parse(getattr(self, name)) for name in self.__dataclass_fields__}


class Limiter:
    """The rate limits of one hub over a `limits` storage: `memory://` (this process), or e.g.
    `redis://host:6379/0`, which every server of the hub shares so that the limits hold across them.

    `hit(kind, keys)` counts one attempt against each key in turn, each with the moving-window limiter's own
    atomic hit (whose answer says whether it fitted), and raises RateLimited at the first key that refuses:
    the request is refused. `reserve(kind, key)` and `refund(kind, key)` count failures only (sign-in per
    account and per device): a try takes a slot before it runs, so that tries made at the same moment never
    run more than the limit allows, and gives it back when it succeeded. Those slots are a counter per key
    whose window starts at its first failure (`limits`' fixed window): at most the limit of failures per
    window, at worst twice the limit across the end of one window and the start of the next."""

    def __init__(self, limits: RateLimits, storage: str = "memory://") -> None:
        self._items = limits.parsed()
        made = storage_from_string(storage)
        if not isinstance(made, Storage):  # async+… storages: these limits are counted from sync routes
            raise ValueError(f"{storage!r} names an async storage; name a plain one (redis://…)")
        self._storage: Storage = made
        self._moving = MovingWindowRateLimiter(self._storage)
        # limits' memory storage locks each key but reads a counter back outside the lock: one lock for all
        # (a Redis storage runs each step as one Lua script, atomic on the server)
        self._lock: AbstractContextManager[Any] = (
            threading.Lock() if isinstance(self._storage, MemoryStorage) else nullcontext()
        )

    def hit(self, kind: str, keys: Iterable[str]) -> None:
        item = self._items[kind]
        for key in keys:
            if not key:
                continue
            with self._lock:
                fitted = self._moving.hit(item, kind, key)
            if not fitted:
                stats: Any = self._moving.get_window_stats(item, kind, key)
                raise _refused(kind, stats.reset_time)

    def window(self, kind: str) -> tuple[int, int]:
        """How many of `kind` one key may take, and in how many hours (at least 1), for pages to say."""
        item = self._items[kind]
        return item.amount, max(1, item.get_expiry() // 3600)

    def reserve(self, kind: str, key: str) -> None:
        """Take one of `key`'s slots for a try that may fail, or RateLimited when the failures (and the tries
        running now) fill the window. Give it back with `refund` when the try succeeded."""
        item = self._items[kind]
        name = item.key_for(kind, "failed", key)
        with self._lock:
            count = self._storage.incr(name, item.get_expiry())
            if count > item.amount:
                self._storage.incr(name, item.get_expiry(), amount=-1)
                raise _refused(kind, self._storage.get_expiry(name))

    def refund(self, kind: str, key: str) -> None:
        """The try `reserve` counted succeeded: it is not a failure."""
        item = self._items[kind]
        name = item.key_for(kind, "failed", key)
        with self._lock:
            if self._storage.get(name) > 0:  # 0: its window ended meanwhile, and the count with it
                self._storage.incr(name, item.get_expiry(), amount=-1)


def _refused(kind: str, reset_at: float) -> RateLimited:
    retry = max(1, int(reset_at - time.time()) + 1)
    return RateLimited(f"Too many {_KIND_WORDS.get(kind, kind)}; try again in {retry} s.", retry)


_KIND_WORDS = {
    "signin": "sign-in attempts",
    "signup": "sign-ups from this address",
    "vote": "upvotes",
    "comment": "comments",
    "submit": "submissions",
    "claim": "authorship claims",
    "collect": "changes to collections",
    "subscribe": "subscribe requests from this address",
    "signup_mail": "sign-up mails to this address",
}
