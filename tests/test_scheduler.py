"""When each source syncs (pure functions), and the scheduler's run loop with real callables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from paperboy.scheduler import EASTERN, Backoff, Job, Scheduler, next_arxiv_run, next_hf_run

HOUR = timedelta(hours=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [
        (None, utc(2026, 11, 25, 9), utc(2026, 11, 25, 9)),  # never ran: now
        (utc(2026, 11, 25, 9), utc(2026, 11, 25, 9, 30), utc(2026, 11, 25, 10)),  # Wednesday: an hour later
        (utc(2026, 11, 25, 6), utc(2026, 11, 25, 9), utc(2026, 11, 25, 7)),  # overdue: due already
        (
            utc(2026, 11, 27, 23, 30),
            utc(2026, 11, 27, 23, 40),
            utc(2026, 11, 30, 0, 5),
        ),  # Friday night → Monday
        (None, utc(2026, 11, 28, 12), utc(2026, 11, 30, 0, 5)),  # Saturday start waits for Monday
    ],
)
def test_next_hf_run(last: datetime | None, now: datetime, expected: datetime) -> None:
    assert next_hf_run(last, now, HOUR) == expected


@pytest.mark.parametrize(
    ("last_local", "expected_local"),
    [
        (
            datetime(2026, 11, 24, 10, 0, tzinfo=EASTERN),
            datetime(2026, 11, 24, 20, 30, tzinfo=EASTERN),
        ),  # Tue
        (datetime(2026, 11, 24, 20, 31, tzinfo=EASTERN), datetime(2026, 11, 25, 20, 30, tzinfo=EASTERN)),
        # Thursday evening run → next is Sunday (no announcements Friday and Saturday)
        (datetime(2026, 11, 26, 20, 31, tzinfo=EASTERN), datetime(2026, 11, 29, 20, 30, tzinfo=EASTERN)),
    ],
)
def test_next_arxiv_run_follows_the_eastern_announcement(
    last_local: datetime, expected_local: datetime
) -> None:
    now = last_local.astimezone(UTC)
    got = next_arxiv_run(last_local.astimezone(UTC), now)
    assert got == expected_local
    assert got.tzinfo == UTC


def test_next_arxiv_run_handles_daylight_saving() -> None:
    # Summer: 20:30 EDT is 00:30 UTC; winter: 20:30 EST is 01:30 UTC.
    summer = next_arxiv_run(utc(2026, 7, 1, 12), utc(2026, 7, 1, 12))
    winter = next_arxiv_run(utc(2026, 12, 1, 12), utc(2026, 12, 1, 12))
    assert (summer.hour, summer.minute) == (0, 30)
    assert (winter.hour, winter.minute) == (1, 30)


def test_scheduler_runs_due_jobs_and_backs_off_a_failing_one() -> None:
    clock_now = [utc(2026, 11, 25, 9)]
    calls: list[str] = []
    upstream_down = [True]

    def ok() -> str:
        calls.append("ok")
        return "done"

    def flaky() -> str:
        calls.append("flaky")
        if upstream_down[0]:
            raise RuntimeError("upstream down")
        return "done"

    jobs = [
        Job("hf", lambda last, now: next_hf_run(last, now, HOUR), ok),
        Job("flaky", lambda last, now: next_hf_run(last, now, HOUR), flaky),
    ]
    sched = Scheduler(jobs, lambda: clock_now[0], backoff=Backoff(first=1.0, cap=300.0))
    assert sched.run_pending() == ["hf", "flaky"]
    # The failed job is retried after 1 s, 2 s, 4 s ... (not an hour later); the good one keeps its slot.
    for wait in (1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300):
        clock_now[0] += timedelta(seconds=wait - 0.5)
        assert sched.run_pending() == [], wait
        clock_now[0] += timedelta(seconds=0.5)
        assert sched.run_pending() == ["flaky"], wait
    assert jobs[1].failures == 12
    upstream_down[0] = False
    clock_now[0] += timedelta(seconds=300)
    assert sched.run_pending() == ["flaky"]
    assert jobs[1].failures == 0 and jobs[1].retry_at is None
    # Recovered: back on its hourly slot, like the good one.
    clock_now[0] += timedelta(minutes=10)
    assert sched.run_pending() == []
    clock_now[0] += timedelta(hours=1)
    assert sched.run_pending() == ["hf", "flaky"]
    assert calls.count("ok") == 2


def test_scheduler_thread_starts_and_stops() -> None:
    ran: list[int] = []
    sched = Scheduler(
        [Job("x", lambda last, now: now if last is None else now + HOUR, lambda: ran.append(1))],
        lambda: datetime.now(UTC),
        poll_seconds=0.01,
    )
    sched.start()
    for _ in range(200):
        if ran:
            break
        import time

        time.sleep(0.01)
    sched.stop()
    assert ran == [1]


def test_a_wake_runs_the_on_wake_work_at_once_and_leaves_the_schedule_alone() -> None:
    """The web app wakes the digest loop after it queued a mail: the sender runs now, not at the next slot
    (5 minutes away), and a failure on wake neither ends the thread nor moves the regular run."""
    import threading
    import time

    rounds: list[float] = []
    sends: list[float] = []
    sent = threading.Event()
    fail_next = [True]

    def send_now() -> str:
        sends.append(time.monotonic())
        if fail_next[0]:
            fail_next[0] = False
            raise OSError("the database is restarting")
        sent.set()
        return "sent 1"

    job = Job(
        "digests",
        lambda last, now: now if last is None else last + timedelta(minutes=5),
        lambda: rounds.append(time.monotonic()),
        on_wake=send_now,
    )
    sched = Scheduler([job], lambda: datetime.now(UTC), poll_seconds=30.0)
    sched.start()
    try:
        for _ in range(500):
            if rounds:
                break
            time.sleep(0.01)
        assert len(rounds) == 1  # the first round, at start; the next one is 5 minutes away
        sched.wake()  # fails: logged, the thread carries on
        for _ in range(500):
            if sends:
                break
            time.sleep(0.01)
        woken_at = time.monotonic()
        sched.wake()
        assert sent.wait(5), "a wake did not run the sender"
        assert time.monotonic() - woken_at < 1.0
        assert len(sends) == 2 and len(rounds) == 1  # the regular round did not run again
    finally:
        sched.stop(timeout=5)
    assert sched._thread is not None and not sched._thread.is_alive()
