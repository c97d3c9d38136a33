"""create_app: the composition root of the web app. Nothing here runs at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from paperboy import __version__
from paperboy.errors import InvalidInput, NotFound, PaperboyError
from paperboy.templating import make_environment
from paperboy.web import api, feeds, pages
from paperboy.web.deps import Site

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SWAGGER_UI = "swagger-ui-5.35.0"


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


def create_app(
    engine: Engine,
    *,
    site: Site | None = None,
    clock: Callable[[], datetime] = _utcnow,
    searcher: Searcher | None = None,
) -> FastAPI:
    """The app over `engine` (already migrated). `clock` is the one source of "now" for every request.

    `searcher` (hybrid BM25 + vector search over persisted indexes) is built by `paperboy serve`; without
    one, search falls back to a plain keyword scan of the database and "Similar papers" stays empty.
    """
    app = FastAPI(
        title="paperboy",
        version=__version__,
        description=(
            "A self-hosted Daily Papers hub. The `/api/daily_papers`, `/api/papers/{id}`, `/api/papers` and "
            "`/api/papers/search` routes speak Hugging Face's dialect, so `huggingface_hub` "
            "(`HF_ENDPOINT=<this server>`) and bots written for huggingface.co work unchanged."
        ),
        docs_url=None,  # served below from vendored Swagger UI: no CDN at run time
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.clock = clock
    app.state.site = site or Site(name="paperboy", public_url="http://localhost:8000", trending_days=7)
    app.state.templates = make_environment()
    app.state.searcher = searcher

    def error_response(request: Request, status: int, message: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        html = pages.render_error(request, status, message)
        return HTMLResponse(html, status_code=status)

    @app.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound) -> Response:
        return error_response(request, 404, str(exc))

    @app.exception_handler(InvalidInput)
    def _invalid(request: Request, exc: InvalidInput) -> Response:
        return error_response(request, 400, str(exc))

    @app.exception_handler(PaperboyError)
    def _other(request: Request, exc: PaperboyError) -> Response:
        return error_response(request, 500, str(exc))

    @app.exception_handler(RequestValidationError)
    def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        return error_response(request, exc.status_code, message)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="paperboy API",
            swagger_js_url=f"/static/vendor/{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"/static/vendor/{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=f"/static/vendor/{SWAGGER_UI}/favicon-32x32.png",
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(pages.router)
    return app
