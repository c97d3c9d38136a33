"""Who writes a search index: a small pid file beside the index folder, so that a second writer is told which
process holds the index's lock instead of tantivy's bare "LockBusy".

tantivy's own lock (`.tantivy-writer.lock`) is an flock held while a writer lives; it says nothing about its
owner. The process that takes the writer writes `<index>.writer.pid` next to the folder: its pid, host,
command line and start time, one JSON object. It removes the file when it lets the writer go; a file left by
a process that died is recognised as stale (no such pid on this host) and ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    command: str
    since: str

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"process {self.pid}{where} (`{self.command}`, since {self.since})"


def pid_file(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + ".writer.pid")


def _command() -> str:
    args = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else ["python"]
    if args[0] == "__main__.py":  # python -m paperboy …
        args[0] = "paperboy"
    elif args[0] == "-c":
        args[0] = "python -c"
    return " ".join(args)[:200]


def claim(index_path: Path, now: datetime | None = None) -> None:
    """Record this process as the index's writer (best effort: a read-only place records nothing)."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command(),
        "since": (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    target = pid_file(index_path)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


def release(index_path: Path) -> None:
    """Remove the record, when it is this process's."""
    found = read(index_path, check_alive=False)
    if found is not None and found.pid == os.getpid() and found.host == socket.gethostname():
        with contextlib.suppress(OSError):
            pid_file(index_path).unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except OSError:
        return False
    return True


def read(index_path: Path, check_alive: bool = True) -> Holder | None:
    """The recorded writer, or None (no record, an unreadable one, or a dead process on this host)."""
    try:
        raw = json.loads(pid_file(index_path).read_text(encoding="utf-8"))
        holder = Holder(int(raw["pid"]), str(raw["host"]), str(raw["command"]), str(raw["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and holder.host == socket.gethostname() and not _alive(holder.pid):
        return None
    return holder


def busy_message(kind: str, index_path: Path, raw: object) -> str:
    """What a process that cannot take the writer is told: who holds it, and what to do."""
    holder = read(index_path)
    who = holder.describe() if holder is not None else f"another process (tantivy says: {raw})"
    return (
        f"the {kind} index at {index_path} cannot be written: {who} holds its lock. Only one process may"
        " write it at a time: a running `paperboy serve` keeps its indexes up to date by itself, so let it"
        " do the work, or stop that process and run this command again."
    )
