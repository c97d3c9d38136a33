"""A command line that explains itself: a bad setup is one line saying what is wrong and what to do (never a
traceback), `serve` holds its port before it says it serves, `config` prints plain values."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import browserkit
import pytest
from click.testing import CliRunner

from paperboy.cli import main


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("PAPERBOY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def _one_line_error(result: object) -> str:
    output: str = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 1, output  # type: ignore[attr-defined]
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: "), output
    return lines[0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense", "is not a database URL: use sqlite:///"),
        ("mysql://me@db.example/papers", "paperboy works with SQLite and PostgreSQL"),
        ("postgresql://me:hunter2@127.0.0.1:1/papers", "check that the server runs"),
        ("postgresql://me@127.0.0.1", "names no database; use"),
    ],
)
def test_a_bad_database_url_is_one_line_with_what_to_do(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", url)
    line = _one_line_error(runner.invoke(main, ["db", "upgrade"]))
    assert says in line, line
    assert "hunter2" not in line  # a password never reaches a terminal or a log


def test_an_unwritable_sqlite_folder_says_where_and_what_to_set(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", f"sqlite:///{blocker}/sub/paperboy.sqlite3")
    line = _one_line_error(runner.invoke(main, ["db", "upgrade"]))
    assert str(blocker) in line and "PAPERBOY_DATA_DIR" in line


def test_postgresql_without_psycopg_names_the_pip_install(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as on an install without the postgres extra
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", "postgresql://me@127.0.0.1:5432/papers")
    line = _one_line_error(runner.invoke(main, ["db", "upgrade"]))
    assert "pip install 'paperboy[postgres]'" in line
    assert "driver (psycopg) is not installed" in line


def test_a_bad_setting_is_one_line_naming_it(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOY_PORT", "eighty")
    line = _one_line_error(runner.invoke(main, ["db", "upgrade"]))
    assert "PAPERBOY_PORT='eighty'" in line


def test_config_prints_plain_values_and_masks_secrets(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAPERBOY_SMTP_URL", "smtp://mailer:hunter2@smtp.example.org:587")
    monkeypatch.setenv("PAPERBOY_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("PAPERBOY_ARXIV_CATEGORIES", "cs.CL,cs.LG")
    result = runner.invoke(main, ["config"])
    assert result.exit_code == 0, result.output
    values = dict(line.split(" = ", 1) for line in result.output.splitlines() if line.startswith("PAPERBOY_"))
    assert "PosixPath(" not in result.output and "SecretStr(" not in result.output
    assert "hunter2" not in result.output and "k" * 40 not in result.output
    assert values["PAPERBOY_DATA_DIR"] == str(tmp_path / "data")
    assert values["PAPERBOY_SMTP_URL"] == "smtp://mailer:****@smtp.example.org:587"  # the host stays visible
    assert values["PAPERBOY_SECRET_KEY"] == "****"
    assert values["PAPERBOY_ARXIV_CATEGORIES"] == "cs.CL, cs.LG"
    assert values["PAPERBOY_HOST"] == "127.0.0.1" and values["PAPERBOY_PORT"] == "8000"
    assert values["PAPERBOY_SYNC"] == "true" and values["PAPERBOY_BASE_URL"] == "(not set)"
    assert values["PAPERBOY_DATABASE_URL"] == f"(not set: sqlite:///{tmp_path / 'data' / 'paperboy.sqlite3'})"


def _serve(tmp_path: Path, port: int, merged: bool = False) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(
        PAPERBOY_DATA_DIR=str(tmp_path / "data"),
        PAPERBOY_EMBEDDING_MODEL="/no/such/model",  # keyword search only: a light, quick start
        PAPERBOY_DIGESTS="false",
        PYTHONUNBUFFERED="1",
    )
    cmd = [sys.executable, "-m", "paperboy", "serve", "--no-sync", "--host", "127.0.0.1", "--port", str(port)]
    stderr = subprocess.STDOUT if merged else subprocess.PIPE
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=stderr)


def test_serve_on_a_taken_port_fails_at_once_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        proc = _serve(tmp_path, port)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        elapsed = time.monotonic() - started
    assert proc.returncode == 1
    text = (out + err).decode()
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in text
    assert "paperboy is serving" not in text and "Traceback" not in text
    assert elapsed < 15, elapsed  # before migrations, the first import and the model (22 s before)
    assert not (tmp_path / "data" / "paperboy.sqlite3").exists()  # it stopped before touching anything


def test_serve_listens_before_it_says_it_is_serving(tmp_path: Path) -> None:
    port = browserkit.free_port()
    proc = _serve(tmp_path, port, merged=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        line = b""
        while b"paperboy is serving" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            line = proc.stdout.readline()
        # the moment it says so, the port takes connections (they wait in the backlog if need be)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            conn.settimeout(60)
            assert conn.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


_HOLD_THE_WRITER = """
import sys, time
from pathlib import Path
from paperboy.search.keyword import KeywordDoc, KeywordIndex
index = KeywordIndex.open(Path(sys.argv[1]))
index.upsert([KeywordDoc("2501.00001", "a paper being written", "")])
print("holding", flush=True)
time.sleep(120)
"""


def test_a_held_index_lock_says_which_process_holds_it_and_what_to_do(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAPERBOY_EMBEDDING_MODEL", "/no/such/model")
    keyword = tmp_path / "data" / "index" / "keyword"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_WRITER, str(keyword)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        fixture = Path(__file__).parent / "fixtures" / "hf_daily_papers_small.json"
        loaded = runner.invoke(main, ["ingest", "hf", "--file", str(fixture)])
        assert loaded.exit_code == 0, loaded.output  # the papers are stored; the index waits for its writer
        assert f"cannot be written: process {holder.pid} (" in loaded.output
        result = runner.invoke(main, ["index", "update"])
        lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "LockBusy" not in result.output
        assert len(lines) == 1, result.output
        assert f"the keyword index at {keyword} cannot be written: process {holder.pid} (" in lines[0]
        assert "stop that process and run this command again" in lines[0]
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    # the holder died without cleaning up: its record is stale, and the next writer takes the index
    assert runner.invoke(main, ["index", "update"]).exit_code == 0


def _listing(path: Path, n: int) -> Path:
    import gzip
    import json

    lines = (
        json.dumps(
            {
                "id": f"2501.{i:05d}",
                "title": f"Paper number {i}",
                "authors": ["Ada Lovelace"],
                "categories": ["cs.CL"],
                "summary": f"About topic {i}.",
                "listing_date": "2025-01-15",
            }
        )
        for i in range(1, n + 1)
    )
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_bulk_ingest_without_a_terminal_logs_lines_with_total_share_and_time_left(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = _listing(tmp_path / "listing.jsonl.gz", 6000)  # pages of 2,000 lines
    result = runner.invoke(main, ["ingest", "snapshot", str(path)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("snapshot: ")]
    assert len(lines) == 3, lines
    assert lines[0].startswith("snapshot: 2000/6000 (33%), +2000 new, 0 updated, 0:0"), lines
    assert "elapsed, about " in lines[0] and lines[0].endswith(" left")
    assert lines[-1].startswith("snapshot: 6000/6000 (100%), +6000 new"), lines


def test_the_plain_log_writes_a_line_per_5_percent_or_30_seconds_not_per_page() -> None:
    from paperboy.cli.progress import PlainLog
    from paperboy.models import Page, UpsertCounts

    now = [0.0]
    out: list[str] = []
    log = PlainLog("snapshot", out.append, clock=lambda: now[0])
    hundred: list[Any] = [None] * 100  # what the log reads of a page's records: their number
    for n in range(1, 201):  # 200 pages of 100 lines, one a second
        now[0] += 1
        log(Page(hundred, {"line": n * 100}, 20_000), UpsertCounts(inserted=100))
    assert 20 <= len(out) <= 22, out
    assert out[0] == "snapshot: 100/20000 (0%), +100 new, 0 updated, 0:01 elapsed, about 3:19 left"
    assert out[-1] == "snapshot: 20000/20000 (100%), +20000 new, 0 updated, 3:20 elapsed"
    slow = PlainLog("oai cs", out.append, clock=lambda: now[0])
    out.clear()
    for _ in range(10):  # pages of unknown total, one every 10 s: a line every 30 s
        now[0] += 10
        slow(Page([], {"token": "x"}), UpsertCounts(inserted=1))
    assert len(out) == 4, out


def test_bulk_ingest_on_a_terminal_draws_a_bar_with_total_and_eta(tmp_path: Path) -> None:
    import pty

    path = _listing(tmp_path / "listing.jsonl.gz", 3000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(PAPERBOY_DATA_DIR=str(tmp_path / "data"), TERM="xterm", COLUMNS="160")
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperboy", "ingest", "snapshot", str(path)],
        env=env,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    screen = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        screen += chunk
    os.close(controller)
    assert proc.stdout is not None
    summary = proc.stdout.read().decode()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    text = screen.decode(errors="replace")
    assert "3000/3000" in text and "100%" in text and "eta" in text, text[-2000:]
    assert '"inserted": 3000' in summary  # the JSON summary still goes to stdout, unmixed
