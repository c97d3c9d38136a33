"""Progress of an ingest: a rich bar with the total, the share done and the time left on a terminal; a few
plain lines elsewhere (cron, CI, a file), each with the same figures.

A page says how far the source is when it can (`Page.total` and a `line` / `units` cursor: lines of a file,
counted before the first page) — then the bar shows done/total, % and an ETA; otherwise (an API that does
not say) it counts pages with no ETA.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import click

from paperboy.models import Page, UpsertCounts

Progress = Callable[[Page, UpsertCounts], None]

# Without a terminal: a line when this much more of the total is done, or this long after the last line.
LOG_EVERY_FRACTION = 0.05
LOG_EVERY_SECONDS = 30.0


def position(page: Page) -> int | None:
    """How many units of the source (lines of a file) are done once this page is stored, when it says."""
    cursor = page.cursor if isinstance(page.cursor, dict) else {}
    for key in ("line", "units"):
        value = cursor.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class PlainLog:
    """The figures a bar shows, as occasional lines: `label: 12000/74728 (16%), +11950 new, 50 updated,
    0:41 elapsed, about 3:34 left`."""

    def __init__(self, label: str, out: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.label = label
        self.out = out
        self.clock = clock
        self.started = clock()
        self.first_done: int | None = None
        self.last_logged_at = self.started
        self.last_logged_fraction = -1.0
        self.pages = 0
        self.inserted = self.updated = self.records = 0
        self.done = 0
        self.total: int | None = None

    def __call__(self, page: Page, counts: UpsertCounts) -> None:
        self.pages += 1
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.records += len(page.records)
        at = position(page)
        if page.total is not None:  # lines of a file (with a line cursor), else pages of an API
            self.total = page.total
            if self.first_done is None:  # a resumed import starts part-way: the ETA counts from there
                self.first_done = max(0, at - len(page.records)) if at is not None else 0
            self.done = at if at is not None else self.pages
        now = self.clock()
        fraction = self.done / self.total if self.total else None
        due = now - self.last_logged_at >= LOG_EVERY_SECONDS
        if fraction is not None:
            due = due or fraction - self.last_logged_fraction >= LOG_EVERY_FRACTION or fraction >= 1
        if due or self.pages == 1:
            self.out(self.line(now))
            self.last_logged_at = now
            self.last_logged_fraction = fraction if fraction is not None else -1.0

    def line(self, now: float) -> str:
        elapsed = now - self.started
        counts = f"+{self.inserted} new, {self.updated} updated"
        if not self.total:
            return f"{self.label}: {self.records} records, {counts}, {_duration(elapsed)} elapsed"
        share = min(100, int(100 * self.done / self.total))
        text = f"{self.label}: {self.done}/{self.total} ({share}%), {counts}, {_duration(elapsed)} elapsed"
        progressed = self.done - (self.first_done or 0)
        if progressed > 0 and self.done < self.total:
            left = elapsed / progressed * (self.total - self.done)
            text += f", about {_duration(left)} left"
        return text


@contextmanager
def ingest_progress(label: str, stream: IO[str] | None = None) -> Iterator[Progress]:
    """A progress callback for `run_ingest`: a rich bar when `stream` (stderr) is a terminal, else a
    `PlainLog`."""
    err: IO[str] = stream if stream is not None else sys.stderr
    if not err.isatty():
        yield PlainLog(label, lambda text: click.echo(text, file=err))
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(file=err),
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)
        inserted = updated = 0

        def update(page: Page, counts: UpsertCounts) -> None:
            nonlocal inserted, updated
            inserted += counts.inserted
            updated += counts.updated
            description = f"{label} (+{inserted} new, {updated} upd)"
            at = position(page)
            if page.total is not None and at is not None:  # lines of a file: done/total, %, ETA
                bar.update(task, total=page.total, completed=min(at, page.total), description=description)
            else:  # pages of an API
                if page.total is not None:
                    bar.update(task, total=page.total)
                bar.update(task, advance=1, description=description)

        yield update
