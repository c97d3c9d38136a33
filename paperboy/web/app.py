"""create_app: the composition root of the web app. Nothing here runs at import time."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import anyio.to_thread
from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from paperboy import __version__, accounts
from paperboy.db import BACKGROUND_CONNECTIONS
from paperboy.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PaperboyError,
    RateLimited,
    SourceError,
    Unauthorized,
)
from paperboy.models import Paper
from paperboy.recommend.feed import PoolCache
from paperboy.templating import make_environment
from paperboy.web import (
    account,
    admin,
    api,
    authors,
    caching,
    citations,
    claims,
    collections,
    comments,
    comments_api,
    feed,
    feeds,
    follows,
    health,
    metrics,
    pages,
    profiles,
    security,
    submit,
    subscriptions,
    votes,
)
from paperboy.web.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from paperboy.web.deps import Site
from paperboy.web.input_check import RESPONSES as INPUT_REFUSED
from paperboy.web.input_check import InputCheck
from paperboy.web.page_cache import PageCache
from paperboy.web.security import Limiter, RateLimits

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SWAGGER_UI = "swagger-ui-5.35.0"
SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paperboy API</title>
<link rel="stylesheet" href="{ui}/swagger-ui.css"><link rel="icon" href="{ui}/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="{ui}/swagger-ui-bundle.js"></script><script src="/static/swagger-init.js"></script>
</body></html>
"""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def _referer_path(request: Request) -> str:
    """Where a refused form was sent from, as a path on this site (for "sign in, then come back")."""
    referer = request.headers.get("referer", "")
    base = str(request.base_url)
    path = "/" + referer[len(base) :] if referer.startswith(base) else "/papers"
    return security.safe_next(path)


class GuardedApp(FastAPI):
    """FastAPI with two guards outside its whole middleware stack, Starlette's ServerErrorMiddleware included:
    SecurityHeaders (so that a crash's 500 carries the headers too), then BodyLimit (so that a body over the
    cap is refused before anything routes, authenticates or parses it)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def build_middleware_stack(self) -> ASGIApp:
        inner = BodyLimit(super().build_middleware_stack(), self.max_body_bytes)
        guarded = security.SecurityHeaders(inner, public_url=self.state.site.public_url)
        return metrics.RequestMetrics(guarded, self.state.metrics, lambda: self.routes)  # counts every answer


def request_slots(engine: Engine, threads: int) -> int:
    """How many requests may hold a connection at once: `threads`, or fewer when the engine's pool is smaller
    than `pool_size_for(threads)` (the background loops keep their share)."""
    size = getattr(engine.pool, "size", None)
    if not callable(size):  # a pool without a fixed size (SQLite in memory, NullPool)
        return threads
    return max(1, min(threads, size() - BACKGROUND_CONNECTIONS))


def create_app(
    engine: Engine,
    *,
    site: Site | None = None,
    clock: Callable[[], datetime] = _utcnow,
    searcher: Searcher | None = None,
    secret_key: bytes | None = None,
    rate_limits: RateLimits | None = None,
    hasher: PasswordHasher | None = None,
    fetch_paper: Callable[[str], Paper | None] | None = None,
    threads: int = 8,
    page_cache_seconds: float = 0.0,
    rate_limit_storage: str = "memory://",
    setup_code: str | None = None,
    signup_verify_email: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    metrics_token: str | None = None,
) -> FastAPI:
    """The app over `engine` (already migrated). `clock` is the one source of "now" for every request.

    `searcher` (hybrid BM25 + vector search over persisted indexes) is built by `paperboy serve`; without
    one, search falls back to a plain keyword scan of the database and "Similar papers" stays empty.
    `threads` is how many requests are worked on at once (the worker threads; each holds one connection, so
    the engine's pool must hold at least that many: `paperboy.db.pool_size_for`).
    `metrics_token`: when given, /metrics answers only `Authorization: Bearer <it>` (web/metrics.py).
    `page_cache_seconds` > 0 keeps anonymous public answers in memory that long (`web/page_cache.py`).
    `max_body_bytes`: the largest request body taken; bigger ones get 413 unread (`web/body_limit.py`).
    `secret_key` signs CSRF tokens (random per process when not given: forms open across a restart then
    need a reload). `fetch_paper(arxiv_id)` looks a submitted paper up on arXiv; without it only papers
    already stored can be submitted.
    `rate_limit_storage`: where rate limits are counted (`memory://`, or a `redis://…` URL several servers
    share). `setup_code`: what the first sign-up (which makes the admin) must give, when `paperboy serve`
    listens where others can reach it; None: no code. `signup_verify_email`: sign-up mails a link that makes
    the account (web/account.py).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Route functions are sync and run on anyio's worker threads: as many as requests may hold a
        # connection (deps.conn), so that a request with a connection never waits for a thread.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = GuardedApp(
        lifespan=lifespan,
        title="paperboy",
        version=__version__,
        description=(
            "A self-hosted Daily Papers hub. The `/api/daily_papers`, `/api/papers/{id}`, `/api/papers` and "
            "`/api/papers/search` routes speak Hugging Face's dialect, so `huggingface_hub` "
            "(`HF_ENDPOINT=<this server>`) and bots written for huggingface.co work unchanged."
        ),
        docs_url=None,  # served below from vendored Swagger UI: no CDN at run time
        default_response_class=security.SafeJSONResponse,
        redoc_url=None,
        responses=INPUT_REFUSED,  # any operation may refuse crafted input with a 400
    )
    app.max_body_bytes = max_body_bytes
    app.state.engine = engine
    app.state.db_slots = asyncio.Semaphore(request_slots(engine, threads))
    app.state.clock = clock
    app.state.site = site or Site(name="paperboy", public_url="http://localhost:8000", trending_days=7)
    app.state.templates = make_environment()
    app.state.searcher = searcher
    app.state.secret_key = secret_key or secrets.token_bytes(32)
    app.state.limiter = Limiter(rate_limits or RateLimits(), rate_limit_storage)
    app.state.setup_code = setup_code
    app.state.signup_verify_email = signup_verify_email
    app.state.hasher = hasher or accounts.new_hasher()
    app.state.fetch_paper = fetch_paper
    app.state.feed_pool = PoolCache()  # the recent papers every member's "For you" ranks (recommend/feed.py)
    app.state.metrics = metrics.Metrics(token=metrics_token)

    def error_response(request: Request, status: int, message: str) -> Response:
        if _wants_json(request):
            return security.SafeJSONResponse({"error": message}, status_code=status)
        html = pages.render_error(request, status, message)
        return HTMLResponse(html, status_code=status)

    @app.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound) -> Response:
        return error_response(request, 404, str(exc))

    @app.exception_handler(InvalidInput)
    def _invalid(request: Request, exc: InvalidInput) -> Response:
        return error_response(request, 400, str(exc))

    @app.exception_handler(Unauthorized)
    def _unauthorized(request: Request, exc: Unauthorized) -> Response:
        # credentials were sent (a client, not a browser to send to /login): a 401 saying so, on pages too
        if _wants_json(request) or "authorization" in request.headers:
            response = error_response(request, 401, str(exc))
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        back = request.url.path if request.method == "GET" else _referer_path(request)
        target = "/login?next=" + quote(back, safe="/")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, exc: Forbidden) -> Response:
        return error_response(request, 403, str(exc))

    @app.exception_handler(Conflict)
    def _conflict(request: Request, exc: Conflict) -> Response:
        return error_response(request, 409, str(exc))

    @app.exception_handler(RateLimited)
    def _rate_limited(request: Request, exc: RateLimited) -> Response:
        response = error_response(request, 429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(SourceError)
    def _upstream(request: Request, exc: SourceError) -> Response:
        return error_response(request, 502, str(exc))  # an upstream (arXiv) failed, not this server

    @app.exception_handler(PaperboyError)
    def _other(request: Request, exc: PaperboyError) -> Response:
        return error_response(request, 500, str(exc))

    @app.exception_handler(Exception)
    def _crash(request: Request, exc: Exception) -> Response:
        # Starlette's ServerErrorMiddleware calls this, then re-raises: the traceback goes to the log, never
        # into the answer.
        response = error_response(
            request, 500, "Something went wrong on this server; it has been logged. Try again in a moment."
        )
        response.headers["Cache-Control"] = "no-store"  # outside HttpCaching: say it here
        return response

    @app.exception_handler(RequestValidationError)
    def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        response = error_response(request, exc.status_code, message)
        response.headers.update(exc.headers or {})  # Allow on a 405, Connection: close on a 413
        return response

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        # FastAPI's own page starts Swagger UI from an inline <script>, which our CSP forbids: same page,
        # started from a static file instead.
        return HTMLResponse(SWAGGER_PAGE.format(ui=f"/static/vendor/{SWAGGER_UI}"))

    if page_cache_seconds > 0:  # innermost: replayed answers still get validators and 304s from HttpCaching
        app.add_middleware(PageCache, seconds=page_cache_seconds)
    app.add_middleware(caching.HttpCaching)  # inside HeadAsGet: HEAD gets the GET's ETag and 304s
    app.add_middleware(security.HeadAsGet)
    app.add_middleware(InputCheck, respond=error_response)  # 400 for what no route can take (input_check.py)
    # SecurityHeaders and BodyLimit wrap all of these and ServerErrorMiddleware too: GuardedApp
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)  # /healthz, /readyz: no session, CSRF or rate limit
    app.include_router(metrics.router)  # /metrics: the same, behind PAPERBOY_METRICS_TOKEN when set
    # before api.router, whose GET /api/papers/{paper_id:path} would take /api/papers/{id}/comments
    # issue 14: before api.router and pages.router, whose /api/papers/{id} and /papers/{id} would take
    # /api/papers/for-you, /papers/for-you and /papers/{id}.bib
    for module in (feed, follows, collections, citations):
        app.include_router(module.api_router)
        app.include_router(module.write_router)
        app.include_router(module.router)
    app.include_router(comments_api.router)
    app.include_router(api.router)
    app.include_router(account.router)
    app.include_router(admin.api_router)
    app.include_router(admin.router)
    app.include_router(comments.router)
    app.include_router(submit.api_router)
    app.include_router(submit.router)
    app.include_router(claims.router)
    app.include_router(authors.api_router)
    app.include_router(authors.write_router)
    app.include_router(authors.router)
    app.include_router(profiles.api_router)
    app.include_router(profiles.router)
    app.include_router(votes.api_router)
    app.include_router(votes.router)
    app.include_router(feeds.router)
    app.include_router(subscriptions.api_router)
    app.include_router(subscriptions.oneclick_router)
    app.include_router(subscriptions.router)
    app.include_router(pages.router)
    return app
