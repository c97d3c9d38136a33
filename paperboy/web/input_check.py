"""Input no route can take is refused at the door: a pure ASGI middleware over the whole app.

Every request's path and query string, and the body of every write sent as JSON (or with no content type,
which FastAPI reads as JSON), as a form or as multipart, is percent-decoded and read the way the app will
read it, then checked by `paperboy.textcheck`: a lone surrogate (`"\\ud800"` in JSON), NUL or another C0
control character (tab, line feed and carriage return are text), bytes that are not UTF-8 (`%ED%A0%80`),
a JSON integer beyond 64 bits, JSON nested too deep to parse or not JSON at all: a 400 naming the field
(`q`, `path`, `body.parent_id`, a form field's name), JSON `{"error": …}` under /api/ and the error page
elsewhere (the app's own `respond`), before anything routes, authenticates, parses or stores. Without it
such input reached the database (SQLite cannot encode a surrogate; PostgreSQL refuses NUL in text) and came
back as a 500, or was stored to break every page that showed it.

Bodies are read whole before the app sees them (then replayed to it unchanged): BodyLimit, outside this,
caps them first (web/body_limit.py), and a body over its cap ends here as its 413.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperboy.errors import InvalidInput
from paperboy.textcheck import check_json, check_text
from paperboy.web.schemas import ApiError

Respond = Callable[[Request, int, str], Response]
# Every operation may answer this 400 (the app's default `responses`; an operation's own 400 says more)
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ApiError,
        "description": "A path, parameter or body holding NUL, a control character, a lone surrogate or "
        "bytes that are not UTF-8, or a number beyond 64 bits: `error` names the field.",
    }
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def _text(field: str, raw: bytes) -> str:
    """`raw` as UTF-8 text that `check_text` accepts, or InvalidInput naming `field`."""
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{field}: not UTF-8 text (byte {exc.start} of the decoded value, 0x{raw[exc.start]:02X})"
        ) from exc
    return check_text(field, value)


def check_pairs(encoded: bytes, default_field: str) -> None:
    """A query string or form body (`a=1&b=%00`): each name and value percent-decoded (`+` is a space)
    and checked; the field named is the parameter's name (or `default_field` when the name is the trouble)."""
    for part in encoded.replace(b";", b"&").split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = _text(default_field, unquote_to_bytes(raw_name.replace(b"+", b" ")))
        _text(name or default_field, unquote_to_bytes(raw_value.replace(b"+", b" ")))


def check_target(scope: Scope) -> None:
    """The request's path (percent-decoded) and query string."""
    raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogatepass")
    _text("path", unquote_to_bytes(raw_path))
    query: bytes = scope.get("query_string", b"")
    if query:
        check_pairs(query, "query")


def check_json_body(body: bytes) -> None:
    try:
        document = json.loads(body)
    except RecursionError as exc:
        raise InvalidInput("body: JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4,300 digits
        raise InvalidInput(f"body: not valid JSON ({str(exc)[:120]})") from exc
    check_json(document, "body")


def media_type(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return None


def _is_json(ctype: str | None) -> bool:
    # FastAPI reads a body without a content type, and any */json or */*+json, as JSON
    if ctype is None:
        return True
    sub = ctype.partition("/")[2]
    return sub == "json" or sub.endswith("+json")


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the body read here in one message, then the client's own messages."""
    done = False

    async def again() -> Message:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body; None when the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _check_multipart(scope: Scope, body: bytes, receive: Receive) -> None:
    form = await Request(scope, _replay(body, receive)).form()
    try:
        for name, value in form.multi_items():
            check_text("body", name)
            if isinstance(value, UploadFile):
                check_text(name, value.filename or "")
            else:
                check_text(name, value)
    finally:
        await form.close()


async def check_body(scope: Scope, body: bytes, receive: Receive) -> None:
    ctype = media_type(scope)
    if not body:
        return
    if _is_json(ctype):
        check_json_body(body)
    elif ctype == FORM:
        check_pairs(body, "body")
    elif ctype == MULTIPART:
        await _check_multipart(scope, body, receive)


class InputCheck:
    """Pure ASGI middleware: 400 for a path, query string or write body that holds what no route can take
    (see the module's docstring); `respond(request, status, message)` is the app's error answer."""

    def __init__(self, app: ASGIApp, respond: Respond) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope)
        except InvalidInput as exc:
            await self._answer(scope, receive, send, 400, str(exc))
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
            if body is None:
                return  # the client is gone: nobody to answer
            await check_body(scope, body, receive)
        except InvalidInput as exc:
            await self._answer(scope, receive, send, 400, str(exc))
            return
        except HTTPException as exc:  # BodyLimit's 413 while reading, or a malformed multipart body
            await self._answer(scope, receive, send, exc.status_code, str(exc.detail), exc.headers)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # Drawn without the refused query string (the error page's search box shows `q`). The app's
        # `respond` is sync and may read the database (the page shows who is signed in): it runs on a worker
        # thread, as sync routes do.
        request = Request({**scope, "query_string": b""}, receive)
        response = await run_in_threadpool(self.respond, request, status, message)
        for name, value in {**(headers or {}), "Cache-Control": "no-store"}.items():
            response.headers[name] = value
        await response(scope, receive, send)
