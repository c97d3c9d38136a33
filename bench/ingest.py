"""Bulk-import speed: load a JSON-lines arXiv file into a fresh database through the real ingest job.

    python bench/ingest.py                  # the 74,728-paper daily-listing corpus in ../shared/data
    python bench/ingest.py --limit 2000     # its first 2,000 lines (CI's toy size)
    python bench/ingest.py --file x.jsonl --database-url postgresql+psycopg://…/empty_db

Prints one JSON line: {"papers": N, "seconds": S, "papers_per_s": R}, where N counts the distinct papers
stored and S times paperboy.jobs.ingest_snapshot alone (not the migrations). Without --database-url the
database is a new SQLite file in a temporary folder, removed afterwards. Exits 2 when the file is missing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from paperboy.db import make_engine, upgrade
from paperboy.jobs import ingest_snapshot

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = (
    REPO_ROOT.parent / "shared" / "data" / "arxiv_metadata" / "arxiv_daily_cs_2025-03-18_2026-07-01.jsonl.gz"
)


def first_lines(source: Path, limit: int, target: Path) -> int:
    """Copy the first `limit` non-empty lines of `source` (gzipped or not) to `target`; returns how many."""
    with source.open("rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    n = 0
    with (
        gzip.open(source, "rt", encoding="utf-8") if gz else source.open(encoding="utf-8") as src,
        target.open("w", encoding="utf-8") as out,
    ):
        for line in src:
            if n >= limit:
                break
            if line.strip():
                out.write(line if line.endswith("\n") else line + "\n")
                n += 1
    return n


def run(path: Path, database_url: str | None, workdir: Path) -> dict[str, float | int]:
    url = database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        start = time.perf_counter()
        result = ingest_snapshot(engine, path, lambda: datetime.now(UTC))
        seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    c = result.counts
    papers = c.inserted + c.updated + c.unchanged
    return {
        "papers": papers,
        "seconds": round(seconds, 4),
        "papers_per_s": round(papers / seconds, 1) if seconds > 0 else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="JSON lines, gzipped or not")
    parser.add_argument("--limit", type=int, default=None, help="import only the first N lines")
    parser.add_argument("--database-url", default=None, help="an empty database (default: a new SQLite file)")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"bench/ingest.py: {args.file}: no such file (pass --file)", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    with tempfile.TemporaryDirectory(prefix="paperboy-bench-") as tmp:
        workdir = Path(tmp)
        path = args.file
        if args.limit is not None:
            path = workdir / "input.jsonl"
            first_lines(args.file, args.limit, path)
        figures = run(path, args.database_url, workdir)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
