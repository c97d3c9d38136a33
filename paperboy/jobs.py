"""The ingest jobs behind `paperboy ingest …` and the serve-time scheduler: where each source resumes from.

Each job reads its cursor, asks its source for pages from there, and hands them to run_ingest. Days and
ranges are computed by pure functions so that the resume rules are tested without a network.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from paperboy.errors import InvalidInput
from paperboy.ingest import IngestResult, Progress, run_ingest
from paperboy.sources import huggingface, snapshot
from paperboy.sources.http import PoliteClient
from paperboy.store import ingest_state

Clock = Callable[[], datetime]

HF_CURSOR = "huggingface:api"


def hf_days(*, today: date, cursor_day: date | None, day: date | None, since: date | None, default_days: int) -> list[date]:
    """Which days an HF run fetches.

    `--date D` fetches D alone. `--since D` fetches D..today, but resumes from the stored cursor when it is
    later than D (the cursor's own day is fetched again: its list may have grown since). With neither, the
    run resumes from the cursor, or starts `default_days` back on an empty database. Weekends are skipped:
    Hugging Face publishes no daily list on Saturdays and Sundays.
    """
    if day is not None:
        if day > today:
            raise InvalidInput(f"--date {day} is in the future")
        return [day]
    start = since if since is not None else today - timedelta(days=default_days - 1)
    if cursor_day is not None and cursor_day > start:
        start = cursor_day
    if start > today:
        raise InvalidInput(f"--since {start} is in the future")
    days = []
    d = start
    while d <= today:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


def ingest_hf_api(
    engine: Engine,
    client: PoliteClient,
    endpoint: str,
    now: Clock,
    *,
    day: date | None = None,
    since: date | None = None,
    default_days: int = 3,
    progress: Progress | None = None,
) -> IngestResult:
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, HF_CURSOR)
    cursor_day = date.fromisoformat(cursor["day"]) if cursor and cursor.get("day") else None
    days = hf_days(
        today=now().date(), cursor_day=cursor_day if day is None else None, day=day, since=since,
        default_days=default_days,
    )
    pages = huggingface.fetch_days(client, endpoint, days)
    # An explicit --date must not move the resume point of the regular sync backwards.
    cursor_name = HF_CURSOR if day is None else f"{HF_CURSOR}:{day.isoformat()}"
    return run_ingest(engine, "huggingface", pages, now, cursor_name=cursor_name, progress=progress)


def _file_cursor_name(kind: str, path: Path) -> str:
    stat = path.stat()
    return f"{kind}:{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"


def ingest_hf_file(engine: Engine, path: Path, now: Clock, progress: Progress | None = None) -> IngestResult:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    name = _file_cursor_name("huggingface-file", path)
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, name) or {}
    pages = huggingface.read_file(path, skip_units=int(cursor.get("units", 0)))
    return run_ingest(engine, "huggingface-file", pages, now, cursor_name=name, progress=progress)


def ingest_snapshot(
    engine: Engine, path: Path, now: Clock, progress: Progress | None = None, page_size: int = snapshot.PAGE_SIZE
) -> IngestResult:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    name = _file_cursor_name("snapshot", path)
    with engine.connect() as conn:
        cursor = ingest_state.get_cursor(conn, name) or {}
    pages = snapshot.read_snapshot(path, skip_lines=int(cursor.get("line", 0)), page_size=page_size)
    return run_ingest(engine, "snapshot", pages, now, cursor_name=name, progress=progress)


DEMO_FILE = Path(__file__).resolve().parent / "demo" / "seed_papers.json"
DEMO_CURSOR = "demo"


def load_demo(engine: Engine, now: Clock, path: Path = DEMO_FILE) -> IngestResult:
    """Load the bundled demo papers (the seed page's papers), featured on today's list as source "demo".

    Used by `paperboy serve` on an empty database when Hugging Face cannot be reached (or with --no-sync).
    """
    from dataclasses import replace

    from paperboy.models import Page, Record

    today = now().date()
    records = [
        Record(r.paper, replace(r.featuring, source="demo") if r.featuring else None)
        for r in huggingface.read_records(path, day=today)
    ]
    pages = [Page(records, {"loaded": today.isoformat()})]
    return run_ingest(engine, "demo", pages, now, cursor_name=DEMO_CURSOR)
