"""A real local HTTP server standing in for Hugging Face and arXiv in tests.

It listens on 127.0.0.1 (a free port), serves recorded response bodies by path and query, and records every
request it gets (with a monotonic timestamp, so pacing can be checked). A rule can answer a scripted
sequence — e.g. 429 with Retry-After, then 503, then 200 — and a reply can be cut short or held past the
client's timeout:

    upstream.route("/api/daily_papers", {"date": "2025-06-13"}, Reply.json([...]))
    upstream.route("/rss/cs.CL", None, Reply(429, headers={"Retry-After": "1"}), Reply.xml(body))

Rules are matched newest first; a rule's replies are used in order and its last reply repeats. A request no
rule matches gets a 404. Only the outside world is faked here: the code under test makes real HTTP requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to hold the request before answering (past a client timeout: "hang")
    truncate: int | None = None  # send only the first n bytes, with a Content-Length saying n: malformed body
    cut_connection: bool = False  # declare the full length, send half, drop the connection

    @classmethod
    def json(cls, obj: Any, status: int = 200, **kw: Any) -> Reply:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json"}, **kw)

    @classmethod
    def xml(cls, body: bytes | str, status: int = 200, **kw: Any) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        return cls(status, data, {"Content-Type": "application/xml; charset=utf-8"}, **kw)


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, str]  # last value of each parameter
    at: float  # time.monotonic() on arrival
    headers: dict[str, str]


@dataclass
class _Rule:
    path: str
    query: dict[str, str] | None
    replies: list[Reply]
    served: int = 0

    def matches(self, path: str, query: dict[str, str]) -> bool:
        if path != self.path:
            return False
        return self.query is None or all(query.get(k) == v for k, v in self.query.items())

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class Upstream:
    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[Seen] = []
        self.errors: list[BaseException] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that gave up (timeout) closes its end; that is expected, not a test failure.
                import sys

                exc = sys.exc_info()[1]
                if exc is not None and not isinstance(exc, ConnectionError | TimeoutError):
                    upstream.errors.append(exc)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="upstream", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, query: Mapping[str, str] | None, *replies: Reply) -> None:
        """Answer GET `path` (when every given query parameter matches) with `replies` in turn."""
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._rules.insert(0, _Rule(path, dict(query) if query is not None else None, list(replies)))

    def requests_to(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._stop.set()  # releases handlers that are holding a reply
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the handler side ---------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        seen = Seen(h.command, parts.path, query, time.monotonic(), dict(h.headers.items()))
        with self._lock:
            self.requests.append(seen)
            rule = next((r for r in self._rules if r.matches(parts.path, query)), None)
            reply = rule.next_reply() if rule else Reply(404, b"no rule for this request")
        if reply.delay and self._stop.wait(reply.delay):
            return
        body = reply.body
        length = len(body)
        if reply.truncate is not None:
            body = body[: reply.truncate]
            length = len(body)
        elif reply.cut_connection:
            body = body[: len(body) // 2]
        h.send_response(reply.status)
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(length))
        if reply.cut_connection:
            h.send_header("Connection", "close")
        h.end_headers()
        try:
            h.wfile.write(body)
            h.wfile.flush()
        except ConnectionError:
            return
        if reply.cut_connection:
            h.close_connection = True
