"""`paperboy db backup` / `paperboy db restore`: a SQLite hub copied while members keep writing to it over
HTTP, the copy checked and put back, and a hub served from it; what restore refuses; PostgreSQL's
pg_dump / pg_restore lines, run for real against the test server."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import servekit
import sqlalchemy as sa
import webhub
from click.testing import CliRunner
from livehub import ROOMY, Live, live
from sqlalchemy.engine import Engine

from paperboy.cli import main
from paperboy.db import make_engine, upgrade
from paperboy.db.backup import known_revisions

WRITERS = 4
BUSY = ROOMY.__class__(**{**ROOMY.__dict__, "comment": "100000 per minute", "vote": "100000 per minute"})


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env.update(PAPERBOY_DATA_DIR=str(data_dir), **extra)
    return env


def _paperboy(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paperboy", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _head() -> str:
    from alembic.script import ScriptDirectory

    from paperboy.db import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


@dataclass
class Writer:
    """One member writing as fast as the hub answers: comments with unique bodies, and an upvote on each
    paper in turn; each acknowledged write kept with the moment its answer arrived."""

    hub: Live
    name: str
    papers: list[str]
    token: str = ""
    comments: list[tuple[float, str]] = field(default_factory=list)
    votes: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.hub.url, headers=headers, timeout=30) as client:
            n = 0
            while not stop.is_set():
                body = f"{self.name} says {n}"
                r = client.post(f"/api/papers/{webhub.A}/comments", json={"body": body})
                if r.status_code == 201:
                    self.comments.append((time.monotonic(), body))
                else:
                    self.errors.append(f"comment {r.status_code} {r.text[:200]}")
                if n < len(self.papers):
                    paper = self.papers[n]
                    r = client.post(f"/api/papers/{paper}/upvote")
                    if r.status_code == 200 and r.json()["upvoted"]:
                        self.votes.append((time.monotonic(), paper))
                    else:
                        self.errors.append(f"upvote {r.status_code} {r.text[:200]}")
                n += 1


def _rows(path: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """Comment bodies, and (username, paper) upvotes, in the database file at `path`."""
    conn = sqlite3.connect(path)
    try:
        bodies = {r[0] for r in conn.execute("SELECT body FROM comments")}
        votes = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT u.username, v.arxiv_id FROM votes v JOIN users u ON u.id = v.user_id"
            )
        }
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    return bodies, votes


def test_backup_under_write_load_has_every_acknowledged_write_and_restores_to_a_serving_hub(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Four members comment and upvote over HTTP against a real server while `paperboy db backup` copies
    its database: every write answered before the backup started is in the copy, the copy passes
    integrity_check, the hub went on answering writes meanwhile, and a hub restored from the copy serves
    those comments."""
    live_file = Path(str(sqlite_engine.url.database))
    copy = tmp_path / "backups" / "hub.sqlite3"
    copy.parent.mkdir()
    with live(sqlite_engine, rate_limits=BUSY) as hub:
        with sqlite_engine.connect() as conn:
            papers = [r[0] for r in conn.execute(sa.text("SELECT arxiv_id FROM papers ORDER BY arxiv_id"))]
        writers = []
        for i in range(WRITERS):
            w = Writer(hub, f"writer{i}", papers[i::WRITERS])
            w.token = hub.make_token(hub.signup(w.name))
            writers.append(w)
        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(stop,)) for w in writers]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)  # the load is under way
            started = time.monotonic()
            done = _paperboy(
                "db",
                "backup",
                str(copy),
                env=_env(tmp_path / "unused", PAPERBOY_DATABASE_URL=f"sqlite:///{live_file}"),
            )
            ended = time.monotonic()
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["integrity"] == "ok" and report["revision"] == _head(), report
        assert not [e for w in writers for e in w.errors], [w.errors[:3] for w in writers]

        acked_before = {body for w in writers for at, body in w.comments if at < started}
        votes_before = {(w.name, p) for w in writers for at, p in w.votes if at < started}
        during = sum(1 for w in writers for at, _ in w.comments if started <= at <= ended)
        assert len(acked_before) > 20 and votes_before, (len(acked_before), len(votes_before))
        assert during > 0, "the hub answered no write while the backup ran"

        bodies, votes = _rows(copy)
        assert acked_before <= bodies, sorted(acked_before - bodies)[:5]
        assert votes_before <= votes, sorted(votes_before - votes)[:5]
        all_acked = {body for w in writers for _, body in w.comments}
        assert bodies <= all_acked | _rows(live_file)[0]  # nothing the hub never stored

    # a new machine: the copy restored into an empty data folder, served by `paperboy serve`
    served_root = tmp_path / "restored"
    restored = _paperboy("db", "restore", str(copy), "--yes", env=_env(served_root / "data"))
    assert restored.returncode == 0, restored.stderr
    out = json.loads(restored.stdout.strip().splitlines()[-1])
    assert out["kept"] is None and out["revision"] == _head(), out
    with servekit.serve(served_root) as server:
        thread = httpx.get(f"{server.url}/api/papers/{webhub.A}/comments", timeout=30)
        assert thread.status_code == 200
        served = {c["body"] for c in thread.json()["comments"]}
        assert acked_before <= served, sorted(acked_before - served)[:5]
        assert served == bodies
        for _name, paper in sorted(votes_before)[:3]:
            r = httpx.get(f"{server.url}/api/papers/{paper}", timeout=30)
            assert r.status_code == 200, r.text


def test_restore_is_refused_while_a_server_has_the_database_open_and_force_replaces_it_under_it(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """A running hub holds the database open: restore says so and changes nothing; with --force the
    content is replaced under the running server (SQLite's own locks; no file renamed), which then serves
    the restored rows with integrity_check ok."""
    live_file = Path(str(sqlite_engine.url.database))
    env = _env(tmp_path / "data", PAPERBOY_DATABASE_URL=f"sqlite:///{live_file}")
    copy = tmp_path / "before.sqlite3"
    with live(sqlite_engine) as hub:
        member = hub.make_token(hub.signup("ada"))
        auth = {"authorization": f"Bearer {member}"}
        r = hub.request("POST", f"/api/papers/{webhub.A}/comments", headers=auth, json={"body": "kept"})
        assert r.status_code == 201
        assert _paperboy("db", "backup", str(copy), env=env).returncode == 0
        r = hub.request("POST", f"/api/papers/{webhub.A}/comments", headers=auth, json={"body": "after"})
        assert r.status_code == 201

        refused = _paperboy("db", "restore", str(copy), "--yes", env=env)
        assert refused.returncode == 1
        assert "open in another process" in refused.stderr and "--force" in refused.stderr, refused.stderr
        assert _rows(live_file)[0] == {"kept", "after"}
        assert not list(live_file.parent.glob("*.before-restore-*"))

        forced = _paperboy("db", "restore", str(copy), "--yes", "--force", env=env)
        assert forced.returncode == 0, forced.stderr
        kept = Path(json.loads(forced.stdout.strip().splitlines()[-1])["kept"])
        assert _rows(kept)[0] == {"kept", "after"}  # what was replaced, kept beside it
        thread = hub.request("GET", f"/api/papers/{webhub.A}/comments").json()
        assert {c["body"] for c in thread["comments"]} == {"kept"}
        r = hub.request("POST", f"/api/papers/{webhub.A}/comments", headers=auth, json={"body": "again"})
        assert r.status_code == 201
    assert _rows(live_file)[0] == {"kept", "again"}


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in [k for k in os.environ if k.startswith("PAPERBOY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PAPERBOY_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def _hub(tmp_path: Path, revision: str = "head") -> Path:
    path = tmp_path / "data" / "paperboy.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, revision)
    engine.dispose()
    return path


def test_backup_never_overwrites_and_restore_refuses_what_it_cannot_use(
    runner: CliRunner, tmp_path: Path
) -> None:
    live_file = _hub(tmp_path)
    target = tmp_path / "b.sqlite3"
    first = runner.invoke(main, ["db", "backup", str(target)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["db", "backup", str(target)])
    assert second.exit_code == 1 and "exists already" in second.output
    assert not list(tmp_path.glob(".b.sqlite3.partial-*"))

    def refused(path: Path) -> str:
        before = live_file.read_bytes()
        result = runner.invoke(main, ["db", "restore", str(path), "--yes"])
        assert result.exit_code == 1, result.output
        assert live_file.read_bytes() == before
        return result.output

    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    assert "is not a SQLite database" in refused(text)
    assert "there is no file" in refused(tmp_path / "missing.sqlite3")

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert "not a paperboy database" in refused(other)

    newer = tmp_path / "newer.sqlite3"
    shutil.copyfile(target, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    assert "revision 9999" in refused(newer) and "newer" in refused(newer)

    broken = tmp_path / "broken.sqlite3"
    shutil.copyfile(target, broken)
    with sqlite3.connect(broken) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'papers'").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with broken.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xff" * 8)  # the table's root page header: no valid b-tree page type
    message = refused(broken)
    assert "integrity_check" in message or "cannot be read" in message, message


def test_restore_migrates_an_older_backup_to_head_keeps_the_replaced_database_and_drops_the_indexes(
    runner: CliRunner, tmp_path: Path
) -> None:
    old = _hub(tmp_path / "old", "0010")
    with sqlite3.connect(old) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    _hub(tmp_path)
    index = tmp_path / "data" / "index"
    (index / "keyword").mkdir(parents=True)
    (index / "keyword" / "meta.json").write_text("{}")
    (index / "vectors.hnsw").write_bytes(b"x")
    result = runner.invoke(main, ["db", "restore", str(old), "--yes"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["revision"] == "0010"
    with sqlite3.connect(tmp_path / "data" / "paperboy.sqlite3") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == _head()
    with sqlite3.connect(out["kept"]) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == _head()
    assert not (index / "keyword").exists() and not (index / "vectors.hnsw").exists()
    assert "0010" in known_revisions()


def test_restore_asks_before_replacing(runner: CliRunner, tmp_path: Path) -> None:
    live_file = _hub(tmp_path)
    target = tmp_path / "b.sqlite3"
    assert runner.invoke(main, ["db", "backup", str(target)]).exit_code == 0
    before = live_file.read_bytes()
    result = runner.invoke(main, ["db", "restore", str(target)], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert live_file.read_bytes() == before


def _pg_bin() -> Path:
    pgserver = pytest.importorskip("pgserver")
    folder = Path(pgserver.__file__).parent / "pginstall" / "bin"
    if not (folder / "pg_dump").is_file():
        pytest.skip(f"no pg_dump in {folder}")
    return folder


@pytest.mark.postgres
def test_postgres_backup_and_restore_print_pg_dump_and_pg_restore_lines_that_work(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    """On PostgreSQL both commands exit 1 and print the pg_dump / pg_restore lines for the configured URL,
    the password left out; run as printed (pgserver's own binaries), they round-trip the database."""
    url = postgres_engine.url.render_as_string(hide_password=False)
    with_password = postgres_engine.url.set(password="s3cret-pw").render_as_string(hide_password=False)
    dump = tmp_path / "hub.dump"
    shown = _paperboy(
        "db", "backup", str(dump), env=_env(tmp_path / "d", PAPERBOY_DATABASE_URL=with_password)
    )
    assert shown.returncode == 1
    assert "pg_dump" in shown.stdout and "pg_restore" in shown.stdout and "use pg_dump" in shown.stderr
    assert "s3cret-pw" not in shown.stdout + shown.stderr
    assert (
        _paperboy("db", "restore", str(dump), env=_env(tmp_path / "d", PAPERBOY_DATABASE_URL=url)).returncode
        == 1
    )

    printed = _paperboy("db", "backup", str(dump), env=_env(tmp_path / "d", PAPERBOY_DATABASE_URL=url)).stdout
    dump_line, restore_line = (
        next(line for line in printed.splitlines() if line.startswith(tool))
        for tool in ("pg_dump", "pg_restore")
    )
    webhub.load(postgres_engine)
    with postgres_engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM papers")).scalar_one()
    assert before > 0
    shell_env = {**os.environ, "PATH": f"{_pg_bin()}{os.pathsep}{os.environ['PATH']}"}
    for line in (dump_line,):
        ran = subprocess.run(line, shell=True, env=shell_env, capture_output=True, text=True, timeout=120)  # noqa: S602
        assert ran.returncode == 0, ran.stderr
    with postgres_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM featurings"))
        conn.execute(sa.text("DELETE FROM papers"))
    postgres_engine.dispose()
    ran = subprocess.run(restore_line, shell=True, env=shell_env, capture_output=True, text=True, timeout=120)  # noqa: S602
    assert ran.returncode == 0, ran.stderr
    with postgres_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM papers")).scalar_one() == before
