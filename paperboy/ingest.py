"""run_ingest: pull pages from a source and store them, one transaction per page, cursor included.

Idempotent (the store only writes what changed) and resumable (a page's cursor is committed with the page, so
a crash or a failed request loses at most the page in flight). Every run is logged in `ingest_runs`.

The first successful run of a real source that brought any records takes the bundled demo papers away
(store/demo.py): from then on the lists show real papers only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from paperboy.db import transaction
from paperboy.errors import PaperboyError
from paperboy.models import Page, UpsertCounts
from paperboy.sources.text import scrub_record
from paperboy.store import demo, ingest_state
from paperboy.store.papers import upsert_records
from paperboy.textcheck import scrub

Progress = Callable[[Page, UpsertCounts], None]


@dataclass(frozen=True)
class IngestResult:
    source: str
    run_id: int
    counts: UpsertCounts
    pages: int
    demo_removed: demo.DemoRemoval | None = field(default=None)  # this run took the demo papers away


class IngestFailed(PaperboyError):
    """A run stopped part-way; what was stored before the failure stays stored."""

    def __init__(self, source: str, counts: UpsertCounts, cause: Exception) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.counts = counts
        self.cause = cause


def run_ingest(
    engine: Engine,
    source: str,
    pages: Iterable[Page],
    now: Callable[[], datetime],
    cursor_name: str | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Store every page `pages` yields. `cursor_name` (default: `source`) is where each page's cursor goes."""
    cursor_name = cursor_name or source
    with transaction(engine) as conn:
        run_id = ingest_state.start_run(conn, source, now())
    total = UpsertCounts()
    n_pages = 0
    try:
        for page in pages:
            with transaction(engine) as conn:
                counts = upsert_records(conn, [scrub_record(r) for r in page.records], now())
                if page.cursor is not None:
                    ingest_state.set_cursor(conn, cursor_name, page.cursor, now())
            total += counts
            n_pages += 1
            if progress is not None:
                progress(page, counts)
    except (PaperboyError, OSError, ValueError) as exc:
        with transaction(engine) as conn:
            ingest_state.finish_run(conn, run_id, total, now(), error=scrub(str(exc)) or type(exc).__name__)
        raise IngestFailed(source, total, exc) from exc
    except BaseException as exc:  # KeyboardInterrupt and the like: log, then let it through
        with transaction(engine) as conn:
            ingest_state.finish_run(conn, run_id, total, now(), error=f"interrupted ({type(exc).__name__})")
        raise
    with transaction(engine) as conn:
        ingest_state.finish_run(conn, run_id, total, now())
    removed = None
    if source != demo.DEMO_SOURCE and total.inserted + total.updated + total.unchanged > 0:
        removed = remove_demo(engine, now)
    return IngestResult(source, run_id, total, n_pages, removed)


def remove_demo(engine: Engine, now: Callable[[], datetime]) -> demo.DemoRemoval | None:
    """Take the demo papers away (store.demo.remove_demo); None when there were none."""
    with engine.connect() as conn:
        if not demo.has_demo(conn):
            return None
    with transaction(engine) as conn:
        return demo.remove_demo(conn, now())
