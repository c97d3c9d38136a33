"""What route functions receive: a connection, the clock, the site configuration and the viewer (from
app.state and the request's cookies)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
from argon2 import PasswordHasher
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from jinja2 import Environment
from sqlalchemy.engine import Connection

from paperboy import accounts
from paperboy.errors import Forbidden, Unauthorized
from paperboy.models import StoredPaper, User
from paperboy.store import collections as store_collections
from paperboy.store import votes as store_votes
from paperboy.web import badges, security
from paperboy.web.security import Limiter

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher


@dataclass(frozen=True)
class Site:
    """What pages need to know about this hub (built from Settings in create_app)."""

    name: str
    public_url: str
    trending_days: int


async def conn(request: Request) -> AsyncIterator[Connection]:
    """The request's one database connection, for everything it does: the viewer lookup, the page's reads,
    its writes (`paperboy.db.write(conn)`). Nothing in a request checks out a second one.

    At most `app.state.db_slots` requests hold a connection at a time (the pool is sized to that plus the
    background loops, `paperboy.db.pool_size_for`); the others wait here, holding neither a connection nor a
    worker thread, so a burst queues instead of starving the pool.

    A request that sends `Authorization` is judged by it here, before it reads anything (`viewer`: a 401
    unless it is a valid API token), on every route that touches the database, whether or not the route
    asks who is there.
    """
    slots: asyncio.Semaphore = request.app.state.db_slots
    async with slots:
        with anyio.CancelScope(shield=True):  # a client gone mid-checkout must not leak the connection
            c: Connection = await run_in_threadpool(request.app.state.engine.connect)
        try:
            if AUTHORIZATION in request.headers:
                await run_in_threadpool(viewer, request, c)
            yield c
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(c.close)


def now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def site(request: Request) -> Site:
    return request.app.state.site


def templates(request: Request) -> Environment:
    return request.app.state.templates


def searcher(request: Request) -> Searcher | None:
    """The hybrid searcher, when the app was built with one (see create_app)."""
    return request.app.state.searcher


AUTHORIZATION = "authorization"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the member (or None), and the CSRF token their forms carry."""

    user: User | None
    csrf: str
    session: str | None = None  # the session cookie's value, when signed in by it
    by_token: bool = False  # an API token (`Authorization: Bearer`) authenticated this request

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.is_admin


def _bearer_secret(header: str) -> str | None:
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def viewer(request: Request, conn: Connection = Depends(conn)) -> Viewer:
    """Who is asking: one authority per request. A request that sends `Authorization` is judged by it alone,
    cookies ignored: a valid `Bearer <token>` is the token's member (`by_token`: no CSRF token needed, as no
    other site's page can set the header), anything else is Unauthorized (a 401 with
    `WWW-Authenticate: Bearer` on every route, pages included). Without the header, the member behind the
    session cookie, or nobody. Reading it writes nothing (sessions expire by their date)."""
    cached = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    header = request.headers.get(AUTHORIZATION)
    if header is not None:
        secret = _bearer_secret(header)
        found = accounts.token_user(conn, secret) if secret else None
        if found is None:
            raise Unauthorized(
                "Invalid or revoked API token."
                if secret
                else "The Authorization header must be `Bearer <token>` (an API token from /settings)."
            )
        seen = Viewer(found[0], security.csrf_token(request), None, by_token=True)
    else:
        token = request.cookies.get(security.SESSION_COOKIE)
        user = accounts.session_user(conn, token, now(request)) if token else None
        seen = Viewer(user, security.csrf_token(request), token if user else None)
    request.state.viewer = seen
    return seen


async def require_csrf(request: Request, who: Viewer = Depends(viewer)) -> None:
    """Router dependency: a state-changing request without the right CSRF token is refused before it runs.

    Waived only for a request an API token authenticated (`who.by_token`: a bad `Authorization` never
    gets here, `viewer` refused it) and, under /api/, for one with neither the header nor the session
    cookie: it carries no one's authority (`api_member` answers 401)."""
    if security.csrf_waived(request, by_token=who.by_token):
        return
    security.check_csrf(request, await security.sent_csrf_token(request))


def member(who: Viewer = Depends(viewer)) -> User:
    """A signed-in member, or Unauthorized (pages send the visitor to /login)."""
    if who.user is None:
        raise Unauthorized("Sign in to do that.")
    return who.user


def admin(who: Viewer = Depends(viewer)) -> User:
    if who.user is None:
        raise Unauthorized("Sign in to do that.")
    if not who.user.is_admin:
        raise Forbidden("Only an admin can do that.")
    return who.user


class Pages:
    """Renders pages with the viewer (signed-in member, CSRF token) and the page's own path (`here`, where
    forms come back to) in every page's context. When the page shows papers (a StoredPaper or a list of them
    in its context), `voted` holds the ids among them that the member upvoted, so every upvote button is drawn
    pressed or not without each route asking; `saved`, those in any of the member's collections."""

    def __init__(self, env: Environment, seen: Viewer, here: str, conn: Connection) -> None:
        self.env = env
        self.viewer = seen
        self.here = here
        self._conn = conn

    @staticmethod
    def _shown(context: dict[str, Any]) -> list[StoredPaper]:
        shown: dict[str, StoredPaper] = {}
        for value in context.values():
            if isinstance(value, StoredPaper):
                shown.setdefault(value.paper.arxiv_id, value)
            elif isinstance(value, list) and value and isinstance(value[0], StoredPaper):
                for item in value:
                    shown.setdefault(item.paper.arxiv_id, item)
        return list(shown.values())

    def _voted(self, shown: list[StoredPaper]) -> set[str]:
        if self.viewer.user is None:
            return set()
        ids = [i.paper.arxiv_id for i in shown]
        if not ids:
            return set()
        return store_votes.voted_ids(self._conn, self.viewer.user.id, ids)

    def _saved(self, shown: list[StoredPaper]) -> set[str]:
        if self.viewer.user is None or not shown:
            return set()
        return store_collections.saved_ids(self._conn, self.viewer.user.id, [i.paper.arxiv_id for i in shown])

    def render(self, name: str, **context: Any) -> str:
        context.setdefault("here", self.here)
        shown = self._shown(context)
        context.setdefault("voted", self._voted(shown))
        context.setdefault("saved", self._saved(shown))  # "Save" buttons: papers in the member's collections
        # "#1 Paper of the day / week / month" on every card and paper page (web/badges.py)
        context.setdefault("top_badges", badges.badges_for(self._conn, shown))
        return self.env.get_template(name).render(viewer=self.viewer, **context)


def pages(request: Request, seen: Viewer = Depends(viewer), conn: Connection = Depends(conn)) -> Pages:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Pages(request.app.state.templates, seen, security.safe_next(here), conn)


# Declares the scheme in OpenAPI (Swagger UI's "Authorize" button); `viewer` reads the header itself.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A personal API token from /settings (or `paperboy token create NAME`).",
)


def api_member(who: Viewer = Depends(viewer), _declared: object = Depends(bearer)) -> User:
    """The member an API request acts for: the token's (`Authorization: Bearer <token>`; a bad one is a 401
    in `viewer`), else the signed-in browser's, whose writes `require_csrf` has checked. Nobody: a 401 with
    `WWW-Authenticate: Bearer`."""
    if who.user is None:
        raise Unauthorized("Send an API token: `Authorization: Bearer <token>` (make one on /settings).")
    return who.user


def hasher(request: Request) -> PasswordHasher:
    return request.app.state.hasher


def limiter(request: Request) -> Limiter:
    return request.app.state.limiter
