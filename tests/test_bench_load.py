"""bench/load.py at toy size: a real `paperboy serve` over the repo's 60-paper fixture, a few seconds at
10 req/s of the full mix (reads, searches, signed-in upvotes and comments) beside the static server; and the
generator's open loop against a deliberately slow server (latency counted from the scheduled send time)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "load.py"
FIXTURE = ROOT / "tests" / "fixtures" / "arxiv_listing_small.jsonl"

pytest.importorskip("aiohttp")

LINE_KEYS = {"rate", "sent", "achieved", "p50_ms", "p95_ms", "p99_ms", "errors_5xx", "errors_other"}


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_load"] = module
    spec.loader.exec_module(module)
    return module


def test_toy_run_prints_one_line_per_rate_and_target_and_no_errors(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(sys.executable, str(BENCH), "--file", str(FIXTURE), "--rates", "10", "--duration", "3"),
            *("--warmup", "1", "--workdir", str(tmp_path / "work")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    hub = [ln for ln in lines if ln.get("target") == "hub"]
    static = [ln for ln in lines if ln.get("target") == "static"]
    assert len(hub) == 1 and len(static) == 1, lines
    for line in hub + static:
        assert set(line) >= LINE_KEYS, line
        assert line["rate"] == 10 and line["sent"] == 30
        assert line["errors_5xx"] == 0, line
        assert line["errors_other"] == 0, (
            line
        )  # the writes got their 303 and 201: sessions, CSRF, tokens work
        assert 0 < line["p50_ms"] <= line["p95_ms"] <= line["p99_ms"]
    (line,) = hub
    assert set(line["by_class"]) <= {"read", "search", "write"} and line["by_class"]["read"]["n"] > 0
    assert line["read_vs_static_p99"] > 0
    assert set(static[0]["by_class"]) == {"read"}
    final = lines[-1]
    assert set(final) >= {"max_rate_p99_250ms"}
    assert final["max_rate_p99_250ms"] in (0, 10)
    # the hub in --workdir is reused by the next run (built once)
    assert json.loads((tmp_path / "work" / "hub.json").read_text())["ingested"] == 60


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(0.1)  # one request at a time: 10 per second at most
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_latency_counts_from_the_schedule_not_from_when_the_server_let_the_client_send(
    slow_server: str,
) -> None:
    bench = load_bench()
    reqs = [bench.Req("read", "GET", "/x", 200) for _ in range(40)]
    start = time.perf_counter()
    line, results = asyncio.run(bench.run_rate(slow_server, reqs, 20.0, []))
    # 40 requests due over 2 s, served 10 a second: they all went out on time (open loop) and queued at the
    # server, so the last waited ~2 s beyond its due time. A closed-loop client would report ~100 ms each.
    assert line["sent"] == 40 and line["errors_5xx"] == 0 and line["errors_other"] == 0
    assert line["p99_ms"] > 1500, line
    assert line["p50_ms"] > 500, line
    assert line["achieved"] < 12
    assert time.perf_counter() - start > 3.5
    assert all(r.expected for r in results)
