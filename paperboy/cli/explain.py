"""What the command line says when the setup is wrong, and how it prints settings: one line that names the
problem and what to do, never a traceback; settings as plain values with secrets masked.

Pure functions (an exception or a value in, a message out), used by `open_engine`, `config` and `serve`.
"""

from __future__ import annotations

import errno
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

MASK = "****"
POSTGRES_INSTALL = "pip install 'paperboy[postgres]'"  # the extra that brings psycopg[binary]
SUPPORTED = "sqlite:///path/to/paperboy.sqlite3 or postgresql+psycopg://user:password@host:5432/dbname"
_DRIVERS = {"psycopg": POSTGRES_INSTALL, "psycopg2": "pip install psycopg2-binary"}


def safe_url(url: str) -> str:
    """`url` with its password (if any) masked, for messages and `paperboy config`."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # not a URL at all: nothing to mask but what looks like a password
        return _mask_userinfo(url)
    return url if parsed.password is None else _mask_userinfo(url)


def _mask_userinfo(url: str) -> str:
    """`scheme://user:secret@host/…` → `scheme://user:****@host/…` (the rest as written)."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if not sep or "@" not in authority:
        return url
    userinfo, _, host = authority.rpartition("@")
    user, colon, _secret = userinfo.partition(":")
    return f"{scheme}://{user}{':' + MASK if colon else ''}@{host}{tail}"


def check_database_url(url: str) -> str | None:
    """What is wrong with `url` before anything connects (None when it looks usable)."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception:  # ArgumentError, ValueError: it is not a URL SQLAlchemy reads
        return (
            f"PAPERBOY_DATABASE_URL {_mask_userinfo(url)!r} is not a database URL: use {SUPPORTED}"
            " (or leave it unset for the SQLite file in PAPERBOY_DATA_DIR)"
        )
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return (
            f"PAPERBOY_DATABASE_URL names a {backend!r} database; paperboy works with SQLite and PostgreSQL:"
            f" use {SUPPORTED}"
        )
    if backend == "postgresql" and not parsed.database:
        return f"PAPERBOY_DATABASE_URL {safe_url(url)!r} names no database; use {SUPPORTED}"
    return None


def database_error(url: str, exc: BaseException) -> str:
    """One line for an error met while opening or migrating the database at `url`: what and what to do."""
    shown = safe_url(url)
    if isinstance(exc, ModuleNotFoundError) or (isinstance(exc, ImportError) and exc.name):
        module = (exc.name or "").split(".")[0]
        install = _DRIVERS.get(module, f"pip install {module}")
        python = sys.executable or "python"
        return (
            f"PAPERBOY_DATABASE_URL names a PostgreSQL database, but its driver ({module}) is not installed:"
            f" run  {install}  (or `{python} -m {install}` for the Python that runs paperboy), then retry"
            if module.startswith("psycopg")
            else f"the database driver {module!r} for PAPERBOY_DATABASE_URL is not installed: run  {install}"
        )
    if isinstance(exc, sa.exc.ArgumentError):
        return f"PAPERBOY_DATABASE_URL {shown!r} cannot be used: {_first_line(exc)}; use {SUPPORTED}"
    if isinstance(exc, OSError):
        where = exc.filename or shown
        return (
            f"cannot create the database's folder {where}: {exc.strerror or exc};"
            " set PAPERBOY_DATA_DIR or PAPERBOY_DATABASE_URL to a place this user can write"
        )
    if isinstance(exc, sa.exc.DBAPIError):
        reason = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
        if shown.startswith("sqlite"):
            return (
                f"cannot open the SQLite database {shown}: {reason}; check that its folder exists and this"
                " user can write there (PAPERBOY_DATA_DIR / PAPERBOY_DATABASE_URL)"
            )
        return (
            f"cannot use the database at {shown}: {reason}; check that the server runs and accepts this"
            " user, host, port and password (PAPERBOY_DATABASE_URL)"
        )
    return f"cannot open the database at {shown}: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(value: object) -> str:
    text = str(value).strip()
    line = text.splitlines()[0] if text else type(value).__name__
    if "(Background on this error" in line:
        line = line.split("(Background on this error")[0].strip()
    return line[:300]


def port_in_use(host: str, port: int, exc: OSError) -> str:
    """The message for a `serve` that cannot bind its address."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {host}:{port}: the port is already in use (another paperboy or another"
            f" server?); stop it, or choose another port with --port or PAPERBOY_PORT"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot listen on {host}:{port}: permission denied (ports below 1024 need privileges);"
            " choose another port with --port or PAPERBOY_PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}:{port}: this machine has no such address; set --host or PAPERBOY_HOST"
            " to one of its addresses (127.0.0.1, 0.0.0.0 for all)"
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def plain_value(value: Any) -> str:
    """A setting as a person reads it: paths and strings as they are, lists comma-separated, booleans
    `true`/`false`, secrets `****` (the SMTP and database URLs keep everything but their password)."""
    if value is None:
        return "(not set)"
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if not secret:
            return "(not set)"
        return safe_url(secret) if "://" in secret else MASK
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(plain_value(v) for v in value) if value else "(none)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and "://" in value:
        return safe_url(value)
    return str(value)


def settings_error(exc: Exception) -> str:
    """pydantic's ValidationError as one line per bad setting: `PAPERBOY_PORT='abc': …`."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"invalid settings: {_first_line(exc)}"
    parts = []
    for err in errors():
        loc = "_".join(str(p) for p in err.get("loc", ()) if isinstance(p, str))
        name = f"PAPERBOY_{loc.upper()}" if loc else "a setting"
        given = err.get("input")
        shown = "" if isinstance(given, dict) or given is None else f"={plain_value(given)!r}"
        if "password" in loc or "secret" in loc or "smtp" in loc:
            shown = ""
        parts.append(f"{name}{shown}: {str(err.get('msg', 'invalid')).rstrip('.')}")
    return (
        "invalid settings: "
        + "; ".join(parts)
        + " (fix the environment variable, or the file named by PAPERBOY_CONFIG; `paperboy config --help`)"
    )
