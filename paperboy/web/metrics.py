"""`GET /metrics`: Prometheus' text format (prometheus-client), for a Prometheus server to scrape.

What it holds:
- `paperboy_http_requests_total{method, route, status}` and `paperboy_http_request_duration_seconds{method,
  route}` (a histogram), counted by `RequestMetrics`, the outermost ASGI layer, so that every answer is
  counted, a refused body's 413 and a crash's 500 included. `route` is the route's template
  (`/papers/{arxiv_id:path}`), `/static` for static files and `unmatched` for a path no route takes: never
  the raw path, so a crawler requesting a million URLs adds no series. A method outside the standard ones
  counts as `other`.
- Read from the database when scraped, and kept `cache_seconds` (5 s) so that a scrape storm costs one
  round of queries per process per period (concurrent scrapes wait for the one under way):
  `paperboy_queue_jobs{status}` and `paperboy_queue_failed_jobs{task}` (procrastinate's queue,
  PostgreSQL only; absent on SQLite), `paperboy_embedding_backlog` (papers waiting for a vector of the
  search's model; ~150 ms at 75k papers), `paperboy_outbox_due` (mails due), and per background loop
  `paperboy_background_loop_failures{loop}` (runs in a row that failed), `…_backlog{loop}` and
  `…_last_success_timestamp_seconds{loop}`; `paperboy_database_up` (0 when those queries failed, the
  request figures still served) and `paperboy_metrics_database_seconds` (what the last round cost).

Several processes (`paperboy web --workers N`): when PROMETHEUS_MULTIPROC_DIR is set, each process writes
its counters to files there (prometheus-client's multiprocess mode) and a scrape, whichever process answers
it, adds up every process's (MultiProcessCollector).

Who may read it: anyone who can reach it unless PAPERBOY_METRICS_TOKEN is set, then only requests with
`Authorization: Bearer <that token>` (others 401). It holds counts and route templates only (no path, no
member, no address). Like /healthz it needs no session, CSRF token or rate-limit slot, and is `no-store`.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

router = APIRouter(tags=["operations"])

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
NO_STORE = {"Cache-Control": "no-store"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # prometheus_client.CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class LoopFigures:
    name: str
    failures: int
    backlog: int | None
    last_success: float | None  # Unix time


@dataclass(frozen=True)
class DatabaseFigures:
    """What the database said at one scrape."""

    up: bool
    jobs: dict[str, int] = field(default_factory=dict)
    failed_by_task: dict[str, int] = field(default_factory=dict)
    embedding_backlog: int | None = None
    outbox_due: int | None = None
    loops: tuple[LoopFigures, ...] = ()
    seconds: float = 0.0


def read_database(engine: Engine, now: datetime, model: str | None) -> DatabaseFigures:
    """One round of the scrape-time queries; `up` False (and nothing else) when the database fails."""
    from paperboy.store import background, outbox, queue
    from paperboy.store import embeddings as embedding_store

    start = time.perf_counter()
    try:
        with engine.connect() as conn:
            jobs = queue.counts(conn)
            failed: dict[str, int] = {}
            for (task, status), n in queue.counts_by_task(conn).items():
                if status == "failed":
                    failed[task] = failed.get(task, 0) + n
            backlog = embedding_store.count_pending(conn, model) if model is not None else None
            due = outbox.count_due(conn, now)
            loops = tuple(
                LoopFigures(
                    s.name,
                    s.failures,
                    s.backlog,
                    s.last_success_at.timestamp() if s.last_success_at is not None else None,
                )
                for s in background.all_statuses(conn)
            )
    except Exception:  # a scrape must still answer: the request figures, and database_up 0
        return DatabaseFigures(up=False, seconds=time.perf_counter() - start)
    return DatabaseFigures(True, jobs, failed, backlog, due, loops, time.perf_counter() - start)


class CachedFigures:
    """`read_database` at most once per `seconds`; scrapes that arrive while it runs wait for its answer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._figures: DatabaseFigures | None = None
        self._at = 0.0
        self.rounds = 0  # how many times the database was asked (the tests read it)

    def get(self, read: Callable[[], DatabaseFigures]) -> DatabaseFigures:
        with self._lock:
            if self._figures is None or time.monotonic() - self._at >= self.seconds:
                self._figures = read()
                self._at = time.monotonic()
                self.rounds += 1
            return self._figures


class _DatabaseCollector:
    """A prometheus-client collector yielding the figures set on it just before the exposition."""

    def __init__(self) -> None:
        self.figures = DatabaseFigures(up=False)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        f = self.figures
        yield GaugeMetricFamily(
            "paperboy_database_up", "1 when the scrape-time queries succeeded, else 0.", value=int(f.up)
        )
        yield GaugeMetricFamily(
            "paperboy_metrics_database_seconds",
            "How long the last scrape-time queries took.",
            value=f.seconds,
        )
        if not f.up:
            return
        jobs = GaugeMetricFamily(
            "paperboy_queue_jobs", "Jobs in the queue by status (PostgreSQL only).", labels=["status"]
        )
        for status, n in sorted(f.jobs.items()):
            jobs.add_metric([status], n)
        yield jobs
        failed = GaugeMetricFamily(
            "paperboy_queue_failed_jobs",
            "Jobs that failed for good, by task (PostgreSQL only).",
            labels=["task"],
        )
        for task, n in sorted(f.failed_by_task.items()):
            failed.add_metric([task], n)
        yield failed
        if f.embedding_backlog is not None:
            yield GaugeMetricFamily(
                "paperboy_embedding_backlog",
                "Papers waiting for a vector of the search's embedding model.",
                value=f.embedding_backlog,
            )
        if f.outbox_due is not None:
            yield GaugeMetricFamily("paperboy_outbox_due", "Mails due in the outbox.", value=f.outbox_due)
        failures = GaugeMetricFamily(
            "paperboy_background_loop_failures",
            "Runs in a row that failed, per background loop.",
            labels=["loop"],
        )
        backlog = GaugeMetricFamily(
            "paperboy_background_loop_backlog", "Work waiting, per background loop.", labels=["loop"]
        )
        success = GaugeMetricFamily(
            "paperboy_background_loop_last_success_timestamp_seconds",
            "When each background loop last succeeded (Unix time).",
            labels=["loop"],
        )
        for loop in f.loops:
            failures.add_metric([loop.name], loop.failures)
            if loop.backlog is not None:
                backlog.add_metric([loop.name], loop.backlog)
            if loop.last_success is not None:
                success.add_metric([loop.name], loop.last_success)
        yield failures
        yield backlog
        yield success


def _multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The request counters and the scrape-time figures of one app (`create_app` builds it).

    In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set) the counters write to files there, and
    `exposition` adds up every process's; otherwise they live in this app's own registry."""

    def __init__(self, *, token: str | None = None, cache_seconds: float = 5.0) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        self.token = token or None
        self.multiprocess = _multiprocess_dir() is not None
        if self.multiprocess and values.ValueClass.__name__ != "MmapedValue":
            # prometheus-client picks file-backed values when it is first imported; a process that imported
            # it before the variable was set (its parent, say) gets them now
            values.ValueClass = values.get_value_class()
        self.registry = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter(
            "paperboy_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "paperboy_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.figures = CachedFigures(cache_seconds)
        self._database = _DatabaseCollector()
        if self.registry is not None:
            self.registry.register(self._database)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # `labels()` takes a lock and builds a key: once per label set, not per request
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self, read: Callable[[], DatabaseFigures]) -> bytes:
        """The text a scrape gets: the request figures (every process's in multiprocess mode) and the
        database figures (cached)."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        self._database.figures = self.figures.get(read)
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self._database)
        return generate_latest(registry)

    def allows(self, authorization: str | None) -> bool:
        """Whether a request with this Authorization header may read the metrics."""
        if self.token is None:
            return True
        scheme, _, value = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())


def _flatten(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI keeps included routers nested
        if inner is not None:
            yield from _flatten(inner.routes)
        else:
            yield route


class RequestMetrics:
    """Pure ASGI middleware, outermost: counts each HTTP request by method, route template and status, and
    times it to the end of its answer. The template is the one the router chose (`scope["route"]`); where
    no routing happened below (a cached page, a refused body, HEAD answered as GET on a copy of the scope,
    static files) it is looked up in the app's routes, remembered for the last 4,096 short (method, path)
    pairs."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.metrics = metrics
        self._routes = routes
        self._flat: list[Any] | None = None
        self._remembered = lru_cache(maxsize=4096)(self._lookup)

    def template(self, method: str, path: str) -> str:
        """The route template for (method, path); short paths remembered (4,096 × 256 bytes at most)."""
        return self._remembered(method, path) if len(path) <= 256 else self._lookup(method, path)

    def _lookup(self, method: str, path: str) -> str:
        if self._flat is None:
            self._flat = [
                (r.path_regex, getattr(r, "methods", None), str(r.path))
                for r in _flatten(self._routes())
                if hasattr(r, "path_regex")
            ]
        wanted = "GET" if method == "HEAD" else method  # HEAD is answered as GET (security.HeadAsGet)
        partial = None
        for regex, methods, template in self._flat:  # the router's order: its first full match wins
            if regex.match(path) is None:
                continue
            if methods is None or wanted in methods:
                return template
            partial = partial or template  # the path is right, the method is not (405)
        return partial or UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless an answer starts: a crash ServerErrorMiddleware could not answer

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = getattr(scope.get("route"), "path", None)
            if not isinstance(route, str):
                route = self.template(method, scope["path"])
            self.metrics.observe(method, route, status, time.perf_counter() - start)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format (version 0.0.4)."},
        401: {"description": "PAPERBOY_METRICS_TOKEN is set and the request did not send it as a bearer."},
    },
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by method, route template and status; latency; the job queue, the
    embedding backlog, the outbox and the background loops (read from the database, cached 5 s).
    With PAPERBOY_METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    m: Metrics = request.app.state.metrics
    if not m.allows(request.headers.get("authorization")):
        return PlainTextResponse(
            "metrics need the bearer token set in PAPERBOY_METRICS_TOKEN\n",
            status_code=401,
            headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    state = request.app.state
    searcher = state.searcher
    embedder = getattr(searcher, "embedder", None) if searcher is not None else None
    model = getattr(embedder, "model", None)
    body = m.exposition(lambda: read_database(state.engine, state.clock(), model))
    return Response(body, media_type=CONTENT_TYPE, headers=NO_STORE)
