"""Walking the app's routes, also those inside included routers (FastAPI nests them since 0.16x)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _walk(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def all_routes(app: Any) -> Iterator[Any]:
    """Every route of `app`, flattened."""
    yield from _walk(app.router.routes)
