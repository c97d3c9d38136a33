"""One cap on request bodies for the whole app, enforced while the body arrives, before anything parses it.

A pure ASGI middleware outside the app's whole stack (only SecurityHeaders is outside it: `GuardedApp` in
web/app.py). A `Content-Length` over the cap is answered 413 at once: nothing routes, authenticates or reads
the body (a client that sent `Expect: 100-continue` gets no `100 Continue`). A body without one (chunked) is
counted as it streams in, and the moment it passes the cap `receive` raises a 413 HTTPException: whatever the
app was doing with the body (parsing a form for its CSRF token, JSON before the 401) ends there, and the
app's own error handler answers (JSON under /api/, the error page elsewhere). Either way the answer says
`Connection: close`, so the server drops the connection rather than read the rest of the body.

The cap is PAPERBOY_MAX_BODY_BYTES (default 256 KiB). The largest body a route takes is a comment or its edit
(10,000 characters: at most 120 kB form-encoded, 4 bytes of UTF-8 each written as %XX), so one cap serves
every route; should one ever need more, this is where a per-path table would go.
"""

from __future__ import annotations

import json
from html import escape

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 256 * 1024


def too_large_message(limit: int) -> str:
    return f"Request body too large: this server takes at most {limit:,} bytes here."


def _page(limit: int) -> bytes:
    message = escape(too_large_message(limit))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>413 · Too large</title>\n'
        '<link rel="stylesheet" href="/static/app.css"></head>\n'
        '<body><main><p class="status-code">413</p><h1>Too large</h1>\n'
        f'<p class="error-message">{message}</p>\n'
        '<p><a href="/papers">Go to today\'s papers</a></p></main></body></html>\n'
    ).encode()


def refusal(path: str, limit: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The 413's headers and body: `{"error": ...}` under /api/ (as every API error), else a short page."""
    if path.startswith("/api/"):
        body = json.dumps({"error": too_large_message(limit)}).encode()
        ctype = b"application/json"
    else:
        body, ctype = _page(limit), b"text/html; charset=utf-8"
    headers = [
        (b"content-type", ctype),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    return headers, body


def declared_length(scope: Scope) -> int | None:
    """The request's `Content-Length`, or None without one (uvicorn refuses a malformed one itself)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """Pure ASGI middleware: at most `max_bytes` of request body, else 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.max_bytes
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await refuse(send, path, limit)  # nothing runs and nothing is read: no 100 Continue either
            return

        # Past the cap, `receive` raises the HTTPException below: FastAPI's body parsing, Starlette's form
        # parser and the CSRF check let it through, and the app's own handler answers it (JSON under /api/,
        # the error page elsewhere).
        cut = HTTPException(413, too_large_message(limit), headers={"Connection": "close"})
        received = 0
        tripped = False
        answered = False  # the app's answer started
        replaced = False  # ...and was not the 413: ours goes out instead

        async def counted_receive() -> Message:
            nonlocal received, tripped
            if tripped:
                raise cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    tripped = True
                    raise cut
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered, replaced
            if message["type"] == "http.response.start":
                answered = True
                if tripped and message["status"] != 413:  # the app swallowed the cut and answered otherwise
                    replaced = True
                    await refuse(send, path, limit)
                    return
                if tripped:  # close: do not read the rest of the body
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            if not replaced:
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except HTTPException as exc:
            if exc is not cut:
                raise
            if not answered:  # nothing in the app answered it
                await refuse(send, path, limit)


async def refuse(send: Send, path: str, limit: int) -> None:
    """Send the 413 (with `Connection: close`)."""
    headers, body = refusal(path, limit)
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
