"""Request bodies are capped before anything reads them, on the wire against a real `paperboy serve`: a
declared length over the cap is refused before a byte of body is sent, a chunked body is cut off as it
crosses the cap, one just under is answered as usual, and four clients sending 50 MB at once leave the
server's memory where it was (before: every body was read and parsed in full, before the 401 or the CSRF
refusal)."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from itertools import chain, repeat
from pathlib import Path

import pytest
from servekit import Served, exchange, read_response, serve

CAP = 256 * 1024  # the default PAPERBOY_MAX_BODY_BYTES
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("body-limit")) as served:
        yield served


@pytest.fixture(scope="module")
def paper_id(server: Served) -> str:
    status, _, body = exchange(
        server.host,
        server.port,
        b"GET /api/daily_papers?limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert status == 200
    return str(json.loads(body)[0]["paper"]["id"])


def _head(method: str, path: str, ctype: str, *, length: int | None = None, extra: str = "") -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n{framing}\r\n{extra}\r\n"
    ).encode()


def _json_body(size: int) -> bytes:
    """A well-formed JSON comment of exactly `size` bytes."""
    frame = b'{"body": ""}'
    return frame[:-2] + b"a" * (size - len(frame)) + frame[-2:]


def _form_body(size: int) -> bytes:
    frame = b"csrf_token=nope&body="
    return frame + b"a" * (size - len(frame))


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _chunks_of(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def _send_streaming(
    server: Served, head: bytes, pieces: Iterable[bytes]
) -> tuple[int, dict[str, str], bytes, int, bool]:
    """Send `head`, then `pieces` one by one until the server answers (or stops reading); returns its
    response, how many bytes of body went out before it did (most of them only as far as the two kernels'
    socket buffers), and whether the server then closed the connection."""
    sent = 0
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for piece in pieces:
                if _answered(sock):
                    break
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # cut off: the answer is already on its way
        status, headers, body = read_response(sock, timeout=30)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
    return status, headers, body, sent, closed


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_sent(
    server: Served, paper_id: str
) -> None:
    started = time.monotonic()
    # the JSON API: a JSON error, and no "100 Continue" asking for the body first
    status, headers, body = exchange(
        server.host,
        server.port,
        _head(
            "POST",
            f"/api/papers/{paper_id}/comments",
            "application/json",
            length=300 * MB,
            extra="Expect: 100-continue\r\n",
        ),
    )
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    message = json.loads(body)["error"]
    assert "too large" in message and f"{CAP:,}" in message
    assert headers.get("connection") == "close"
    assert headers["x-content-type-options"] == "nosniff" and "content-security-policy" in headers
    # a form: a short HTML page, refused before the CSRF check would have parsed it
    status, headers, body = exchange(
        server.host,
        server.port,
        _head("POST", f"/papers/{paper_id}/comments", "application/x-www-form-urlencoded", length=300 * MB),
    )
    assert status == 413 and headers["content-type"].startswith("text/html")
    assert b"too large" in body and b"<html" in body.lower() and len(body) < 4000
    assert time.monotonic() - started < 5


def test_a_chunked_body_over_the_cap_is_cut_off(server: Served, paper_id: str) -> None:
    endless = 64 * MB  # more than the kernels' buffers could ever take in
    for path, ctype, prefix in (
        (f"/api/papers/{paper_id}/comments", "application/json", b'{"body": "'),
        (f"/papers/{paper_id}/comments", "application/x-www-form-urlencoded", b"csrf_token=nope&body="),
    ):
        pieces = chain([prefix], repeat(b"a" * 65536, endless // 65536))
        started = time.monotonic()
        status, headers, answer, sent, closed = _send_streaming(
            server, _head("POST", path, ctype), _chunks_of(pieces)
        )
        assert status == 413, answer[:300]
        assert b"too large" in answer and f"{CAP:,}".encode() in answer
        # the app's own error answer: JSON under /api/, its error page elsewhere
        assert headers["content-type"].startswith("application/json" if "/api/" in path else "text/html")
        assert headers["connection"] == "close" and closed  # it does not read the rest
        assert sent < endless / 2, sent
        assert time.monotonic() - started < 10


def test_a_body_just_under_the_cap_is_answered_as_usual(server: Served, paper_id: str) -> None:
    path = f"/api/papers/{paper_id}/comments"
    for size, expected in ((CAP, 401), (CAP + 1, 413)):
        body = _json_body(size)
        # declared length
        status, _, answer = exchange(
            server.host, server.port, _head("POST", path, "application/json", length=size) + body
        )
        assert status == expected, answer[:300]
        # chunked, in pieces that do not line up with the cap
        status, _, answer, _, _ = _send_streaming(
            server, _head("POST", path, "application/json"), _chunks(body, 10_000)
        )
        assert status == expected, answer[:300]
    # a form just under the cap reaches the route (here: the CSRF check, which refuses a wrong token)
    form = _form_body(CAP)
    status, _, answer = exchange(
        server.host,
        server.port,
        _head("POST", f"/papers/{paper_id}/comments", "application/x-www-form-urlencoded", length=CAP) + form,
    )
    assert status == 403 and b"CSRF" in answer, answer[:300]


def test_the_cap_is_a_setting(tmp_path: Path) -> None:
    with serve(tmp_path, env={"PAPERBOY_MAX_BODY_BYTES": "2000"}) as small:
        path = "/api/papers/2401.00001/comments"
        for size, expected in ((2000, 401), (2001, 413)):
            status, _, answer = exchange(
                small.host,
                small.port,
                _head("POST", path, "application/json", length=size) + _json_body(size),
            )
            assert status == expected, answer[:300]


def _flood(server: Served, path: str, ctype: str, size: int, how: str, results: list[str]) -> None:
    """Send a request of `size` bytes to `path` as fast as the server takes it and note the answer: a
    well-formed body, `chunked` or with its `content-length`, or (`head`) one endless header or URL."""
    filler = b"a" * (256 * 1024)
    if how == "head":  # an endless header (to the JSON API) or an endless URL (to the page)
        head = (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Filler: ".encode() if "/api/" in path else b"GET /papers?q="
        )
        pieces, suffix = [filler] * (size // len(filler)), b"\r\n\r\n"
    else:
        head = _head("POST", path, ctype, length=None if how == "chunked" else size)
        # JSON: one long string; a form: many fields of 256 KiB (Starlette stops at 1 MB for one field)
        if ctype == "application/json":
            prefix, suffix = b'{"body": "', b'"}'
        else:
            prefix, suffix, filler = b"csrf_token=nope&body=", b"", b"&x=" + filler[3:]
        pieces = [prefix] + [filler] * ((size - len(prefix) - len(suffix)) // len(filler))
        pieces.append(b"a" * (size - len(suffix) - sum(map(len, pieces))))
    if how == "chunked":
        pieces = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces if p]
        suffix = f"{len(suffix):x}\r\n".encode() + suffix + b"\r\n0\r\n\r\n"
    try:
        with socket.create_connection((server.host, server.port), timeout=60) as sock:
            sock.sendall(head)
            sent = 0
            try:
                for piece in pieces:
                    if _answered(sock):
                        break
                    sock.sendall(piece)
                    sent += len(piece)
                else:
                    sock.sendall(suffix)
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                status, _, _ = read_response(sock, timeout=60)
                results.append(f"{status} after {sent / MB:.1f} MB")
            except (ConnectionError, OSError) as exc:
                results.append(f"cut off after {sent / MB:.1f} MB ({type(exc).__name__})")
    except OSError as exc:
        results.append(f"failed: {exc!r}")


def test_four_clients_sending_50_mb_at_once_leave_the_server_memory_flat(
    server: Served, paper_id: str
) -> None:
    """Four clients at once, each sending 50 MB: as chunked bodies, as bodies with their length, as one
    endless header or URL. The server's resident memory, sampled every 20 ms, stays within 20 MB of idle."""
    size = 50 * MB
    targets = [
        (f"/api/papers/{paper_id}/comments", "application/json"),
        (f"/papers/{paper_id}/comments", "application/x-www-form-urlencoded"),
    ]
    # warm up every path the flood takes (templates, imports), so that what follows measures only bodies
    for path, ctype in targets:
        for size_now in (1000, CAP + 1):
            exchange(server.host, server.port, _head("POST", path, ctype, length=size_now) + b"a" * size_now)
    exchange(server.host, server.port, b"GET /papers?q=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    time.sleep(0.5)
    idle = server.rss_kib()
    report: dict[str, tuple[float, list[str]]] = {}
    for how in ("chunked", "content-length", "head"):
        results: list[str] = []
        threads = [
            threading.Thread(target=_flood, args=(server, path, ctype, size, how, results))
            for path, ctype in targets * 2
        ]
        peak = idle
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, server.rss_kib())
            time.sleep(0.02)
        for t in threads:
            t.join()
        peak = max(peak, server.rss_kib())
        report[how] = ((peak - idle) / 1024, results)
    print(
        f"\nserver RSS idle {idle / 1024:.1f} MB; growth in MB and answers while 4 clients send 50 MB each:"
    )
    for how, (growth, results) in report.items():
        print(f"  {how}: +{growth:.1f} MB  {results}")
    for how, (growth, results) in report.items():
        assert growth <= 20, (how, growth, results)
        refused = "431" if how == "head" else "413"
        assert len(results) == 4
        assert all(r.startswith((refused, "cut off")) for r in results), (how, results)
        assert any(r.startswith(refused) for r in results), (how, results)


def test_a_request_head_over_64_kib_is_refused_and_one_under_is_served(server: Served) -> None:
    pieces = repeat(b"a" * 8192, 128)  # up to 1 MB of one header, sent in pieces until the server answers
    status, headers, answer, _, closed = _send_streaming(
        server, b"GET /papers HTTP/1.1\r\nHost: x\r\nX-Filler: ", pieces
    )
    assert status == 431 and b"too large" in answer and closed, (status, answer[:200])
    assert headers["x-content-type-options"] == "nosniff"
    # 40 KiB of cookies and a long URL: still a normal request
    cookies = "; ".join(f"c{i}={'x' * 1000}" for i in range(40))
    url = f"/papers?q={'word+' * 1000}"
    head = f"GET {url} HTTP/1.1\r\nHost: x\r\nCookie: {cookies}\r\nConnection: close\r\n\r\n"
    status, _, _ = exchange(server.host, server.port, head.encode(), timeout=30)
    assert status == 200
