"""A real `paperboy serve` in a subprocess on a free loopback port (offline: the bundled demo papers, keyword
search only, no digests), and raw HTTP/1.1 over a socket for the tests that need control of every byte sent:
a declared length with no body, a chunked body cut anywhere, headers nobody else would send."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from browserkit import free_port


@dataclass
class Served:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def rss_kib(self) -> int:
        """The server process's resident memory now (VmRSS), in KiB."""
        text = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
        assert found, text
        return int(found.group(1))


@contextmanager
def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`paperboy serve --no-sync` on a free port until the block ends; `args` go on its command line and
    `env` into its environment (PAPERBOY_* of the test run's own environment are left out)."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    environ.pop("FORWARDED_ALLOW_IPS", None)
    environ.update(
        PAPERBOY_DATA_DIR=str(tmp_path / "data"),
        PAPERBOY_EMBEDDING_MODEL="/no/such/model",  # keyword search only: a light, quick start
        PAPERBOY_DIGESTS="false",
        PYTHONUNBUFFERED="1",
    )
    environ.update(env or {})
    cmd = [sys.executable, "-m", "paperboy", "serve", "--no-sync", "--host", "127.0.0.1", "--port", str(port)]
    log = (tmp_path / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen([*cmd, *args], env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / f"serve-{port}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "paperboy serve did not start in 120 s"
            try:
                status, _, _ = exchange("127.0.0.1", port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            except OSError:
                time.sleep(0.1)
                continue
            if status == 200:
                break
            time.sleep(0.1)
        yield Served("127.0.0.1", port, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response read off `sock`: status, headers (lower-case names; repeated ones joined with
    ", ") and body (by Content-Length, chunked, or up to the close)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the headers: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    # 100 Continue would mean the server asked for a body it should have refused unread
    assert status != 100, f"the server sent 100 Continue (then {rest[:100]!r}): it asked for the body"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(rest) < size:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest[:size]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, _dechunk(rest)
    while chunk := sock.recv(65536):
        rest += chunk
    return status, headers, rest


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def exchange(
    host: str, port: int, request: bytes, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Send `request` (bytes exactly as given) on a new connection and read one response."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock, timeout)
