"""What route functions receive: a connection, the clock and the site configuration, all from app.state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import Request
from jinja2 import Environment
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from paperboy.search.hybrid import Searcher


@dataclass(frozen=True)
class Site:
    """What pages need to know about this hub (built from Settings in create_app)."""

    name: str
    public_url: str
    trending_days: int


def engine(request: Request) -> Engine:
    return request.app.state.engine


def conn(request: Request) -> Iterator[Connection]:
    """A read connection for one request. Writes (later issues) open their own transaction."""
    with request.app.state.engine.connect() as c:
        yield c


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
