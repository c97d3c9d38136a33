"""Backups of a SQLite database while the hub keeps serving, and putting one back (`paperboy db backup`,
`paperboy db restore`). PostgreSQL has its own tools: `pg_commands` writes the pg_dump / pg_restore lines.

**The copy** uses SQLite's online backup API (`sqlite3.Connection.backup`) in a single step: one read
transaction on the live file, so the copy is the database as of one moment (every write committed before
it started is in it) while other processes keep writing (WAL mode: readers never block writers). It is
written beside the target, checked with `PRAGMA integrity_check`, and renamed into place only then, so a
file at the target path is always a whole, checked backup. bench/backup.py measures it against
`VACUUM INTO`, which makes the same consistent copy but rebuilds every table and index on the way: slower
for a smaller file.

**Restoring** checks the file first (integrity_check; an `alembic_version` this code has a migration for),
keeps the database it replaces as a copy beside it, then copies the backup *into* the live database through
the same API rather than renaming files: SQLite replaces the content in one transaction under its own locks
and WAL, so no process is ever left holding an unlinked file, and a stale `-wal` beside the old file can
never be replayed onto the new one.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from paperboy.db import MIGRATIONS_DIR
from paperboy.errors import PaperboyError

Method = Literal["backup-api", "vacuum-into"]
BUSY_MS = 10_000  # how long the copy waits for a lock (a checkpoint, a writer switching modes)


class BackupRefused(PaperboyError):
    """A backup or restore that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Copied:
    path: Path
    bytes: int
    seconds: float
    revision: str | None  # the alembic revision the copy is at (None: not a paperboy database)
    integrity: str  # "ok", or "not checked"


def sqlite_file(url: str) -> Path | None:
    """The file a `sqlite:///…` URL names; None for other databases. An in-memory SQLite URL is refused."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:":
        raise BackupRefused(
            "PAPERBOY_DATABASE_URL names an in-memory SQLite database: there is no file to copy"
        )
    return Path(u.database)


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    target = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(target, uri=True, timeout=BUSY_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    return conn


def integrity(conn: sqlite3.Connection) -> str:
    """`PRAGMA integrity_check` as one line: "ok", or its first few findings."""
    rows = [r[0] for r in conn.execute("PRAGMA integrity_check(10)")]
    return "ok" if rows == ["ok"] else "; ".join(rows)


def revision_of(conn: sqlite3.Connection) -> str | None:
    """The alembic revision a SQLite database is at; None when it has no alembic_version table (not one of
    ours, or never migrated)."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
    if found.fetchone() is None:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row is not None else None


def known_revisions() -> set[str]:
    """Every migration revision this code has (a database at any of them can be upgraded to head)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    return {s.revision for s in scripts.walk_revisions()}


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_sqlite(source: Path, target: Path, *, method: Method = "backup-api", check: bool = True) -> Copied:
    """Copy the SQLite database `source` (possibly in use by a serving hub) to `target`, which must not exist.

    `method` "backup-api" (the default: sqlite3_backup_step(-1), a page-for-page copy in one read
    transaction) or "vacuum-into" (`VACUUM INTO`: the same snapshot, rebuilt compactly). The copy is
    checked with integrity_check unless `check` is False, made a plain rollback-journal file (one
    self-contained file, readable from read-only media), fsynced, and renamed to `target` only then."""
    if not source.is_file():
        raise BackupRefused(f"there is no database at {source} to back up")
    if target.exists():
        raise BackupRefused(f"{target} exists already: name a new file (a backup never overwrites one)")
    if not target.parent.is_dir():
        raise BackupRefused(f"{target.parent} is not a folder")
    partial = _partial(target)
    partial.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        src = _connect(source)
        try:
            if method == "vacuum-into":
                src.execute("VACUUM INTO ?", (str(partial),))
            else:
                dst = sqlite3.connect(partial, isolation_level=None)
                try:
                    src.backup(dst)  # pages=-1: every page in one step, one read transaction
                finally:
                    dst.close()
        finally:
            src.close()
        out = _connect(partial)
        try:
            out.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal to carry beside it
            verdict = integrity(out) if check else "not checked"
            revision = revision_of(out)
        finally:
            out.close()
        if verdict not in ("ok", "not checked"):
            raise BackupRefused(f"the copy of {source} fails integrity_check: {verdict}")
        with partial.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
        _fsync_dir(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Copied(target, target.stat().st_size, time.perf_counter() - start, revision, verdict)


def check_backup(path: Path) -> str:
    """The revision of the backup at `path` after checking it can be restored: a SQLite file that passes
    integrity_check and carries an alembic revision this code knows. BackupRefused says what is wrong."""
    if not path.is_file():
        raise BackupRefused(f"there is no file at {path}")
    with path.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise BackupRefused(f"{path} is not a SQLite database")
    try:
        conn = _connect(path, readonly=True)
        try:
            verdict = integrity(conn)
            revision = revision_of(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupRefused(f"{path} cannot be read as a SQLite database: {exc}") from exc
    if verdict != "ok":
        raise BackupRefused(f"{path} fails integrity_check: {verdict}")
    if revision is None:
        raise BackupRefused(f"{path} is not a paperboy database (it has no alembic_version)")
    if revision not in known_revisions():
        raise BackupRefused(
            f"{path} is at schema revision {revision}, which this paperboy does not know: it was made by a"
            " newer version; restore it with that version (or newer)"
        )
    return revision


def in_use(path: Path, wait_ms: int = 200) -> bool:
    """Whether another process has the SQLite database at `path` open (a running `paperboy serve`, a
    command): in WAL mode every open connection holds a shared lock on the file as long as it is open, so an
    exclusive lock is granted only when nobody else has it open."""
    if not path.exists():
        return False
    conn = sqlite3.connect(path, timeout=wait_ms / 1000, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True
        raise
    finally:
        conn.close()


def restore_sqlite(backup: Path, live: Path, *, keep: Path | None) -> str:
    """Put the backup at `backup` (checked with `check_backup`) in place of the database at `live`, first
    copying `live` (when it exists) to `keep`. Returns the backup's revision; migrating it to head is the
    caller's (db.upgrade). Whether anyone else has `live` open is the caller's to decide (`in_use`)."""
    revision = check_backup(backup)
    if keep is not None and live.is_file():
        backup_sqlite(live, keep, check=False)
    live.parent.mkdir(parents=True, exist_ok=True)
    src = _connect(backup, readonly=True)
    try:
        dst = _connect(live)
        try:
            src.backup(dst)  # the whole content replaced in one transaction of the live database
            if integrity(dst) != "ok":  # pragma: no cover - the source passed it a moment ago
                raise BackupRefused(f"{live} fails integrity_check after the restore")
        finally:
            dst.close()
    finally:
        src.close()
    return revision


@dataclass(frozen=True)
class PgCommands:
    dump: str
    restore: str
    url: str  # the libpq URL, without its password


def pg_commands(url: str, path: str) -> PgCommands:
    """The pg_dump and pg_restore command lines for the PostgreSQL database of `url` (a SQLAlchemy URL):
    libpq's own URL form, with the password left out (give it with PGPASSWORD or ~/.pgpass)."""
    import shlex
    from urllib.parse import quote

    u = sa.engine.make_url(url)
    # `URL.set(password=None)` would keep the password (None there means "unchanged"); the query is written
    # here because libpq decodes %XX but not "+" (SQLAlchemy writes a space in a socket folder as "+")
    bare = sa.engine.URL.create(
        "postgresql", username=u.username, host=u.host, port=u.port, database=u.database
    )
    libpq = bare.render_as_string(hide_password=False)
    params = [(k, v) for k, vs in u.query.items() for v in ((vs,) if isinstance(vs, str) else vs)]
    if params:
        libpq += "?" + "&".join(f"{quote(k)}={quote(v, safe='/')}" for k, v in params)
    q = shlex.quote
    return PgCommands(
        dump=f"pg_dump --format=custom --file={q(path)} {q(libpq)}",
        restore=(
            f"pg_restore --clean --if-exists --no-owner --single-transaction --dbname={q(libpq)} {q(path)}"
        ),
        url=libpq,
    )
