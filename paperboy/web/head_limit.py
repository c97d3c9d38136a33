"""A cap on the request line and headers, for `paperboy serve`'s HTTP parser.

uvicorn's httptools parser (the fast one, chosen in pyproject.toml) sets no limit of its own on a request's
head: a client that sends an endless header or URL makes the server hold all of it (measured: four clients
sending 50 MB of one header or URL each grew the server by 330 MB; with this protocol, by 0.9 MB). uvicorn's
h11 parser stops at 16 KiB (`h11_max_incomplete_event_size`) but costs a loaded server dearly. This is
uvicorn's httptools protocol, counting the bytes that arrive while a request's head is still open: past
`MAX_HEAD_BYTES` the client gets `431 Request Header Fields Too Large` and the connection is closed. The
count is of whole reads (at most one read, 64-256 KiB, more than the cap is ever held); a read in which a
request begins is not counted, so that the tail of the previous request's body never counts against the
next one's head.

It leans on uvicorn's protocol hooks (`on_message_begin`, `on_headers_complete`, `data_received`); the
on-the-wire test in tests/test_body_limit.py fails when an upgrade of uvicorn changes them.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from paperboy.web.security import SECURITY_HEADERS

MAX_HEAD_BYTES = 64 * 1024  # a request line and headers; nginx allows 4 x 8 KiB, Node 16 KiB
_MESSAGE = b"Request line or headers too large: this server takes at most 65,536 bytes of them."


def refusal() -> bytes:
    headers = b"".join(name + b": " + value + b"\r\n" for name, value in SECURITY_HEADERS)
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
        b"connection: close\r\n" + headers + b"\r\n" + _MESSAGE
    )


class HeadLimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with at most MAX_HEAD_BYTES of request head per request."""

    max_head_bytes = MAX_HEAD_BYTES
    _head_open = False  # between the first byte of a request and the end of its headers
    _head_bytes = 0
    _began = False  # a request began during the current read

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open, self._head_bytes, self._began = True, 0, True

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        self._began = False
        super().data_received(data)
        if not self._head_open or self._began or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > self.max_head_bytes:
            self.logger.warning("Request head over %d bytes: refused (431).", self.max_head_bytes)
            self.transport.write(refusal())
            self.transport.close()
