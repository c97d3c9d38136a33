"""`paperboy db backup` and `paperboy db restore`: a SQLite hub copied while it serves, and put back.
On PostgreSQL they print the pg_dump / pg_restore commands to use instead and exit 1."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click

from paperboy.cli import db_group, explain, load_settings, open_engine
from paperboy.config import Settings


def _postgres_instead(settings: Settings, path: Path, doing: str) -> NoReturn:
    from paperboy.db.backup import pg_commands

    cmds = pg_commands(settings.resolved_database_url, str(path))
    click.echo(f"# back up\n{cmds.dump}")
    click.echo(f"# restore (then migrate it: paperboy db upgrade)\n{cmds.restore}\npaperboy db upgrade")
    raise click.ClickException(
        f"`paperboy db {doing}` is for SQLite; PAPERBOY_DATABASE_URL names PostgreSQL "
        f"({explain.safe_url(settings.resolved_database_url)}): use pg_dump / pg_restore as printed above "
        "(the password through PGPASSWORD or ~/.pgpass)"
    )


def _sqlite_file(settings: Settings) -> Path | None:
    from paperboy.db.backup import BackupRefused, sqlite_file

    problem = explain.check_database_url(settings.resolved_database_url)
    if problem is not None:
        raise click.ClickException(problem)
    try:
        return sqlite_file(settings.resolved_database_url)
    except BackupRefused as exc:
        raise click.ClickException(str(exc)) from exc


@db_group.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--method",
    type=click.Choice(["backup-api", "vacuum-into"]),
    default="backup-api",
    show_default=True,
    help="backup-api: SQLite's online backup API, page for page (the least CPU); vacuum-into: VACUUM INTO, "
    "a compacted copy (smaller after many deletions, ~1.3x the CPU: bench/backup.py).",
)
@click.option(
    "--no-check", is_flag=True, help="Skip the integrity_check of the copy (it reads the whole copy)."
)
def db_backup(path: Path, method: str, no_check: bool) -> None:
    """Copy the SQLite database to PATH while the hub keeps serving.

    The copy is the database as of one moment: every write committed before the backup started is in it,
    and writers are not held up while it runs (SQLite's backup API in one read transaction; WAL mode lets
    writers go on). It is checked with integrity_check, then renamed to PATH, so a file at PATH is always a
    whole backup; PATH must not exist. Prints a JSON line: path, bytes, seconds, revision, integrity.

    The search indexes are not copied: they are rebuilt from the database after a restore.
    On PostgreSQL it prints the pg_dump and pg_restore commands for PAPERBOY_DATABASE_URL (password left
    out) and exits 1.
    """
    from paperboy.db.backup import BackupRefused, backup_sqlite

    settings = load_settings()
    live = _sqlite_file(settings)
    if live is None:
        _postgres_instead(settings, path, "backup")
    try:
        copied = backup_sqlite(
            live, path, method="vacuum-into" if method == "vacuum-into" else "backup-api", check=not no_check
        )
    except BackupRefused as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "path": str(copied.path),
                "bytes": copied.bytes,
                "seconds": round(copied.seconds, 3),
                "revision": copied.revision,
                "integrity": copied.integrity,
            }
        )
    )


@db_group.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Restore even though another process (a running server) has the database open; restart it at once.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_restore(path: Path, force: bool, yes: bool) -> None:
    """Replace the SQLite database with the backup at PATH, and migrate it to this version's schema.

    PATH must pass integrity_check and be at a schema revision this version knows (a backup from a newer
    paperboy is refused). Stop the server first: while another process has the database open the restore
    is refused, unless --force (then restart that process right after: its search indexes, caches and
    background loops were made from the database it had). The database it replaces is kept beside it as
    NAME.before-restore-YYYYmmddTHHMMSSZ; the search indexes in PAPERBOY_DATA_DIR/index are removed, and
    rebuilt from the restored database by the next `paperboy serve` (or `paperboy index update`).

    On PostgreSQL it prints the pg_dump and pg_restore commands for PAPERBOY_DATABASE_URL (password left
    out) and exits 1.
    """
    from paperboy.db.backup import BackupRefused, check_backup, in_use, restore_sqlite
    from paperboy.serve import index_dir

    settings = load_settings()
    live = _sqlite_file(settings)
    if live is None:
        _postgres_instead(settings, path, "restore")
    try:
        revision = check_backup(path)
    except BackupRefused as exc:
        raise click.ClickException(str(exc)) from exc
    if in_use(live) and not force:
        raise click.ClickException(
            f"the database {live} is open in another process (a running `paperboy serve`?): stop it, "
            "restore, then start it again (or --force, and restart it right after)"
        )
    if not yes:
        click.confirm(f"Replace the database {live} with {path}?", abort=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    keep = live.with_name(f"{live.name}.before-restore-{stamp}") if live.is_file() else None
    try:
        restore_sqlite(path, live, keep=keep)
    except BackupRefused as exc:
        raise click.ClickException(str(exc)) from exc
    open_engine(settings).dispose()  # migrated to head
    root = index_dir(settings)
    shutil.rmtree(root / "keyword", ignore_errors=True)
    for leftover in root.glob("vectors.hnsw*"):
        leftover.unlink()
    click.echo(
        json.dumps(
            {
                "restored": str(path),
                "database": str(live),
                "revision": revision,
                "kept": str(keep) if keep is not None else None,
            }
        )
    )
