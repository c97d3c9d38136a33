"""Keeping the hub current while it serves: when each source runs next (pure), and a thread that runs them.

- Hugging Face publishes a daily list on weekdays; it is polled every `hf_sync_minutes` on weekdays (UTC), so
  upvotes and late submissions show up during the day.
- arXiv announces new submissions at 20:00 US Eastern, Sunday to Thursday. Each followed category is fetched
  at 20:30 Eastern on those days (and once at start-up), which is "soon after the announcement" while leaving
  arXiv's mirrors time to update.
Every run goes through run_ingest, so it is logged in `ingest_runs` like a CLI run.

Background work survives: any exception a job raises (a source error, a database that is locked or
restarting, a constraint violation, a full disk) is logged and the job is retried with exponential back-off
(1 s, 2 s, 4 s … at most 5 minutes, or its next regular slot if that comes first); nothing is raised into the
web server and the thread never ends. Each job, like the index worker, reports its last success, last error
and backlog through a `LoopHealth`, which keeps them in memory and writes them to `background_status` (kept
and written later when the database is down: reporting never fails the loop).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from paperboy.store import background
from paperboy.store.background import LoopStatus

log = logging.getLogger("paperboy.scheduler")

Clock = Callable[[], datetime]

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


# --- surviving failures: back-off and status reports -------------------------------------------------------


class Backoff:
    """Exponential back-off after consecutive failures: `first` seconds, doubling, at most `cap`."""

    def __init__(self, first: float = 1.0, cap: float = 300.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th failure in a row (1-based)."""
        return float(min(self.cap, self.first * 2 ** min(max(failures - 1, 0), 62)))

    def failed(self) -> float:
        """Count one more failure; returns how long to wait before the next try."""
        self.failures += 1
        return self.delay(self.failures)

    def reset(self) -> None:
        self.failures = 0


def describe(exc: BaseException) -> str:
    """An exception on one line for a status: its class and, for a database error, the driver's words."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the DBAPI error; its own text adds the SQL
    text = " ".join(str(orig if isinstance(orig, BaseException) else exc).split())
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _json_detail(result: object) -> dict[str, Any] | None:
    """What a job returned, as a JSON object for the status (a dict or a dataclass; else nothing)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        result = dataclasses.asdict(result)
    if not isinstance(result, dict):
        return None
    try:
        value = json.loads(json.dumps(result, default=str))
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class LoopHealth:
    """How one background loop is doing: kept in memory and written to `background_status`.

    `succeeded` and `failed` never raise. A write that fails (the database is locked or down) is logged and
    the status stays in memory, written with the next report or `flush()`. A success that changes nothing
    but the time is written at most every `heartbeat` seconds (so an idle loop writes twice a minute, not
    on every tick); a change of failures, backlog or detail is written at once.
    """

    def __init__(self, engine: Engine | None, name: str, clock: Clock, heartbeat: float = 30.0) -> None:
        self.engine = engine
        self.name = name
        self.clock = clock
        self.heartbeat = heartbeat
        self._status = LoopStatus(name)
        self._dirty = False  # memory holds something the table does not
        self._urgent = False  # ... that should not wait for the heartbeat
        self._written: float | None = None  # monotonic time of the last write
        self._write_failing = False
        self._lock = threading.Lock()

    @property
    def status(self) -> LoopStatus:
        with self._lock:
            return self._status

    def succeeded(self, backlog: int | None = None, detail: dict[str, Any] | None = None) -> None:
        """One run went through; `backlog`/`detail` replace the last ones when given."""
        try:
            now = self.clock()
            with self._lock:
                old = self._status
                new = replace(
                    old,
                    last_success_at=now,
                    failures=0,
                    backlog=backlog if backlog is not None else old.backlog,
                    detail=detail if detail is not None else old.detail,
                    updated_at=now,
                )
                self._status = new
                self._dirty = True
                news = (old.failures, old.backlog, old.detail) != (0, new.backlog, new.detail)
                if news or old.last_success_at is None:
                    self._urgent = True
            self.flush()
        except Exception:  # pragma: no cover - reporting must never end a loop
            log.exception("%s: could not record a success", self.name)

    def failed(self, exc: BaseException) -> None:
        """One run failed with `exc`: counted and recorded at once (when the database lets us)."""
        try:
            now = self.clock()
            with self._lock:
                old = self._status
                self._status = replace(
                    old,
                    last_error_at=now,
                    last_error=describe(exc),
                    failures=old.failures + 1,
                    updated_at=now,
                )
                self._dirty = self._urgent = True
            self.flush()
        except Exception:  # pragma: no cover - reporting must never end a loop
            log.exception("%s: could not record a failure", self.name)

    def flush(self) -> bool:
        """Write what memory holds when it is due; False when the write failed (it is kept for later)."""
        with self._lock:
            if not self._dirty or self.engine is None:
                return True
            recent = self._written is not None and monotonic() - self._written < self.heartbeat
            if recent and not self._urgent:
                return True
            status = self._status
        try:
            with self.engine.begin() as conn:
                background.record(conn, status)
        except Exception as exc:
            if not self._write_failing:  # once per outage, not on every tick
                log.warning(
                    "%s: status not recorded (kept in memory until it can be): %s", self.name, describe(exc)
                )
            self._write_failing = True
            return False
        if self._write_failing:
            log.info("%s: status recorded again", self.name)
        self._write_failing = False
        with self._lock:
            if self._status is status:
                self._dirty = self._urgent = False
            self._written = monotonic()
        return True


class StatusBoard:
    """The LoopHealth of every background loop of this process, by name. /readyz shows these when the
    database cannot be read; otherwise everyone reads `background_status`."""

    def __init__(self, engine: Engine | None, clock: Clock, heartbeat: float = 30.0) -> None:
        self.engine = engine
        self.clock = clock
        self.heartbeat = heartbeat
        self._loops: dict[str, LoopHealth] = {}
        self._lock = threading.Lock()

    def loop(self, name: str) -> LoopHealth:
        with self._lock:
            if name not in self._loops:
                self._loops[name] = LoopHealth(self.engine, name, self.clock, self.heartbeat)
            return self._loops[name]

    def statuses(self) -> list[LoopStatus]:
        with self._lock:
            loops = list(self._loops.values())
        return sorted((h.status for h in loops), key=lambda s: s.name)

    def flush(self) -> None:
        with self._lock:
            loops = list(self._loops.values())
        for health in loops:
            health.flush()


# --- the sync schedule -------------------------------------------------------------------------------------


@dataclass
class Job:
    name: str
    next_run: Callable[[datetime | None, datetime], datetime]
    run: Callable[[], object]
    last_run: datetime | None = None
    due: datetime | None = field(default=None)
    # The work waiting for this job after a run (e.g. mails due); None: it has no such measure.
    backlog: Callable[[], int | None] | None = None
    failures: int = 0  # in a row
    retry_at: datetime | None = None  # after a failure: sooner than next_run when the back-off says so
    # What to do at once when the scheduler is woken (`Scheduler.wake`), between the regular runs: e.g.
    # send the outbox when a request has just queued a mail. None: a wake does not concern this job.
    on_wake: Callable[[], object] | None = None


class Scheduler:
    """Runs jobs in one background thread, one at a time (so arXiv sees one connection).

    A job that fails is retried after a back-off (`backoff`: first wait and cap, in seconds) or at its next
    slot, whichever comes first; a success resets it. With a `board`, each job reports its status there.

    `wake()` (from any thread) makes the loop run each job's `on_wake` at once instead of waiting for the
    next slot; the regular schedule stays as it is, so a wake that is lost (or never sent, by another
    process) only delays the work until the next regular run.
    """

    def __init__(
        self,
        jobs: list[Job],
        clock: Clock,
        poll_seconds: float = 30.0,
        *,
        board: StatusBoard | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.jobs = jobs
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.board = board
        self.backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._woken = threading.Event()  # set by wake() and stop(): ends the loop's wait at once
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Run the jobs' `on_wake` work as soon as the loop is free (it is never run twice at once: the jobs
        share this one thread). Cheap, never blocks, safe from any thread; wakes that arrive while that work
        runs are folded into one more round."""
        self._woken.set()

    def run_woken(self) -> list[str]:
        """Run every job's `on_wake` now; returns the names that ran. A failure is logged and reported, and
        the job's regular schedule is left alone (its next run is the fallback)."""
        ran = []
        for job in self.jobs:
            if job.on_wake is None or self._stop.is_set():
                continue
            health = self.board.loop(job.name) if self.board is not None else None
            try:
                result = job.on_wake()
            except Exception as exc:  # never raised into the caller: the regular run will try again
                log.warning(
                    "sync %s: the work on wake failed (%s); its next run retries", job.name, describe(exc)
                )
                if health is not None:
                    health.failed(exc)
                continue
            log.info("sync %s: woken: %s", job.name, result)
            ran.append(job.name)
            if health is not None and job.failures == 0:  # a failing regular run keeps its report
                health.succeeded(backlog=self._backlog(job))
        return ran

    def _backlog(self, job: Job) -> int | None:
        if job.backlog is None:
            return None
        try:
            return job.backlog()
        except Exception as exc:
            log.warning("sync %s: could not count its backlog: %s", job.name, describe(exc))
            return None

    def _due(self, job: Job, now: datetime) -> datetime:
        due = job.next_run(job.last_run, now)
        if job.retry_at is not None and job.retry_at < due:
            due = job.retry_at
        return due

    def run_pending(self) -> list[str]:
        """Run every job that is due now; returns the names that ran (for tests and logs)."""
        ran = []
        for job in self.jobs:
            if self._stop.is_set():
                break
            try:
                now = self.clock()
                job.due = self._due(job, now)
                if job.due > now:
                    continue
            except Exception:
                log.exception("sync %s: could not tell when it is due; skipping it this round", job.name)
                continue
            self._run(job)
            ran.append(job.name)
        return ran

    def _run(self, job: Job) -> None:
        health = self.board.loop(job.name) if self.board is not None else None
        log.info("sync %s: starting", job.name)
        try:
            result = job.run()
        except Exception as exc:  # any failure: logged, backed off, retried; never raised into the server
            job.failures += 1
            wait = self.backoff.delay(job.failures)
            job.last_run = self._now_or(job.last_run)
            job.retry_at = job.last_run + timedelta(seconds=wait) if job.last_run is not None else None
            if job.failures == 1:
                log.exception("sync %s: failed; retrying in %.3g s", job.name, wait)
            else:
                log.warning(
                    "sync %s: failed %d times in a row (%s); retrying in %.3g s",
                    job.name,
                    job.failures,
                    describe(exc),
                    wait,
                )
            if health is not None:
                health.failed(exc)
            return
        log.info("sync %s: done %s", job.name, result)
        job.failures = 0
        job.retry_at = None
        job.last_run = self._now_or(job.last_run)
        backlog = self._backlog(job)
        if health is not None:
            health.succeeded(backlog=backlog, detail=_json_detail(result))

    def _now_or(self, fallback: datetime | None) -> datetime | None:
        try:
            return self.clock()
        except Exception:  # pragma: no cover - a clock that fails: keep the old mark
            log.exception("scheduler: the clock failed")
            return fallback

    def _wait_seconds(self) -> float:
        """Until the earliest job is due (a retry after a failure may be seconds away), at most a poll."""
        wait = self.poll_seconds
        try:
            now = self.clock()
            for job in self.jobs:
                wait = min(wait, (self._due(job, now) - now).total_seconds())
        except Exception:
            log.exception("scheduler: could not compute the next wake-up")
        return max(wait, 0.01)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._woken.is_set():
                    self._woken.clear()  # first: a wake during the work below asks for another round
                    self.run_woken()
                self.run_pending()
                if self.board is not None:
                    self.board.flush()  # statuses the database refused earlier
                wait = self._wait_seconds()
            except Exception:  # the thread must never end: whatever happened, wait and go round again
                log.exception("scheduler: unexpected failure; carrying on")
                wait = self.poll_seconds
            self._woken.wait(wait)  # until the next job is due, a wake, or stop

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="paperboy-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._woken.set()
        if self._thread is not None:
            self._thread.join(timeout)
