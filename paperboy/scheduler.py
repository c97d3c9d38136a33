"""Keeping the hub current while it serves: when each source runs next (pure), and a thread that runs them.

- Hugging Face publishes a daily list on weekdays; it is polled every `hf_sync_minutes` on weekdays (UTC), so
  upvotes and late submissions show up during the day.
- arXiv announces new submissions at 20:00 US Eastern, Sunday to Thursday. Each followed category is fetched
  at 20:30 Eastern on those days (and once at start-up), which is "soon after the announcement" while leaving
  arXiv's mirrors time to update.
Every run goes through run_ingest, so it is logged in `ingest_runs` like a CLI run; failures are logged and
retried at the next slot, never raised into the web server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

log = logging.getLogger("paperboy.scheduler")

EASTERN = ZoneInfo("America/New_York")
ARXIV_ANNOUNCE = time(20, 30)
ARXIV_DAYS = {6, 0, 1, 2, 3}  # Sunday..Thursday (Monday = 0)


def next_hf_run(last: datetime | None, now: datetime, every: timedelta) -> datetime:
    """Now if it never ran; otherwise `every` after the last run, moved past Saturday and Sunday (UTC)."""
    when = now if last is None else last + every
    while when.weekday() >= 5:
        when = datetime.combine(when.date() + timedelta(days=1), time(0, 5), tzinfo=when.tzinfo)
    return when


def next_arxiv_run(last: datetime | None, now: datetime) -> datetime:
    """Now if it never ran; else the first 20:30 US Eastern on Sunday–Thursday after the last run."""
    if last is None:
        return now
    local = last.astimezone(EASTERN)
    day = local.date()
    for _ in range(8):
        slot = datetime.combine(day, ARXIV_ANNOUNCE, tzinfo=EASTERN)
        if slot > local and slot.weekday() in ARXIV_DAYS:
            return slot.astimezone(now.tzinfo)
        day += timedelta(days=1)
    raise AssertionError("unreachable: a Sunday–Thursday slot exists within a week")


@dataclass
class Job:
    name: str
    next_run: Callable[[datetime | None, datetime], datetime]
    run: Callable[[], object]
    last_run: datetime | None = None
    due: datetime | None = field(default=None)


class Scheduler:
    """Runs jobs in one background thread, one at a time (so arXiv sees one connection)."""

    def __init__(self, jobs: list[Job], clock: Callable[[], datetime], poll_seconds: float = 30.0) -> None:
        self.jobs = jobs
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_pending(self) -> list[str]:
        """Run every job that is due now; returns the names that ran (for tests and logs)."""
        ran = []
        for job in self.jobs:
            now = self.clock()
            job.due = job.next_run(job.last_run, now)
            if job.due > now:
                continue
            log.info("sync %s: starting", job.name)
            try:
                result = job.run()
                log.info("sync %s: done %s", job.name, result)
            except Exception:  # a failed sync must not take the web server down; it is retried next slot
                log.exception("sync %s: failed", job.name)
            job.last_run = self.clock()
            ran.append(job.name)
        return ran

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_pending()
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="paperboy-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
