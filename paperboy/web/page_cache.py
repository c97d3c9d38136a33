"""An in-process cache of the anonymous public answers, for a server with no caching proxy in front.

`web/caching.py` marks list pages, paper pages, search pages, feeds and API reads `public, max-age=60` for
requests without `Cookie` and `Authorization`: a reverse proxy may then serve one rendering of a URL to
everyone for a minute. Without a proxy every anonymous reader makes the server query and render again, and
under load that is what the server spends its time on (bench/load.py, docs/deploying.md "Load").
`PageCache` keeps such answers in memory for `seconds` (`PAPERBOY_PAGE_CACHE_SECONDS`; 0, the default,
turns it off), so an anonymous crowd costs about one rendering per URL per `seconds`:

- only a GET with no `Cookie` and no `Authorization` header, to a path `caching.policy` calls public, is
  looked up or stored; members (session cookie) and tokens always reach the app and see their own writes;
- only a 200 with a one-piece body that sets no cookie is stored; the key is the path, the query string and
  the `HX-*` headers (htmx asks for fragments at the same URLs) and an `Accept` naming Markdown (paper pages
  answer it in Markdown);
- concurrent misses of one URL wait for the first one's answer instead of all rendering it;
- at most `max_entries` answers and `max_bytes` of bodies, the least recently used dropped first.

It sits inside `HttpCaching`, which still adds the validators and answers `If-None-Match` with 304 for a
replayed answer as for a fresh one. A cached page is at most `seconds` older than the database: a vote or
comment shows to anonymous readers that much later (to the member at once), as behind a proxy.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperboy.web import caching


@dataclass(frozen=True)
class _Entry:
    start: Message
    body: bytes
    expires: float


def _copy(start: Message) -> Message:
    return {**start, "headers": [(bytes(n), bytes(v)) for n, v in start.get("headers", [])]}


class PageCache:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        seconds: float,
        max_entries: int = 5000,
        max_bytes: int = 256 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._pending: dict[str, asyncio.Future[_Entry | None]] = {}

    def _key(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "GET" or self.seconds <= 0:
            return None
        path: str = scope["path"]
        if path.startswith("/static/"):
            return None
        hx = []
        for name, value in scope["headers"]:
            if name in (b"cookie", b"authorization"):
                return None
            if name.startswith(b"hx-"):
                hx.append(name + b"=" + value)
            elif name == b"accept" and b"markdown" in value.lower():  # a paper page answers it in Markdown
                hx.append(b"accept=" + value)
        if not caching.policy(path, True).startswith("public"):
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return f"{path}?{query}#{b'&'.join(sorted(hx)).decode('latin-1')}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        entry = self._fresh(key)
        if entry is None and key in self._pending:  # someone is rendering it right now: wait for that
            entry = await asyncio.shield(self._pending[key])
        if entry is not None:
            self.hits += 1
            await send(_copy(entry.start))  # the middlewares outside add headers to the message in place
            await send({"type": "http.response.body", "body": entry.body, "more_body": False})
            return
        self.misses += 1
        done: asyncio.Future[_Entry | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = done
        entry = None
        try:
            entry = await self._render(key, scope, receive, send)
        finally:
            del self._pending[key]
            done.set_result(entry)  # None (not stored, or failed): the waiters render it themselves

    def _fresh(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    async def _render(self, key: str, scope: Scope, receive: Receive, send: Send) -> _Entry | None:
        start: Message | None = None
        chunks: list[bytes] = []
        storable = True

        async def capture(message: Message) -> None:
            nonlocal start, storable
            if message["type"] == "http.response.start":
                start = _copy(message)
                headers = message.get("headers", [])
                if message["status"] != 200 or any(n.lower() == b"set-cookie" for n, _ in headers):
                    storable = False
            elif message["type"] == "http.response.body":
                if message.get("more_body", False) or chunks:
                    storable = False
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if not storable or start is None or len(chunks) != 1:
            return None
        entry = _Entry(start, chunks[0], self.clock() + self.seconds)
        self._store(key, entry)
        return entry

    def _store(self, key: str, entry: _Entry) -> None:
        if len(entry.body) > self.max_bytes // 8:
            return
        self._drop(key)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
