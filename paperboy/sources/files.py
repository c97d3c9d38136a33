"""Opening local dumps, gzipped or not (told by the magic bytes, not the name)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import IO

from paperboy.errors import SourceError

UNREADABLE = (EOFError, gzip.BadGzipFile, UnicodeDecodeError, OSError)


def open_text(path: Path) -> IO[str]:
    """A UTF-8 text stream over `path`, decompressing gzip transparently; SourceError when it can't open."""
    try:
        with path.open("rb") as f:
            magic = f.read(2)
        if magic == b"\x1f\x8b":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
        return path.open("r", encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"{path}: cannot open ({exc})") from exc
