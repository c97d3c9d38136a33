"""What the job queue holds (procrastinate's tables, PostgreSQL only): counts by status and recent jobs, for
`paperboy jobs`, /admin and /metrics. The queue itself (deferring, taking, retrying) is procrastinate's;
this module only reads. On SQLite, or before `paperboy db upgrade`, there is no queue: empty answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")


@dataclass(frozen=True)
class QueuedJob:
    id: int
    task: str
    queue: str
    status: str
    attempts: int
    lock: str | None
    args: dict[str, Any]
    scheduled_at: datetime | None
    last_event_at: datetime | None  # when it was deferred, started or ended, whichever came last
    worker: int | None


def has_queue(conn: Connection) -> bool:
    """Whether this database has the queue's tables (PostgreSQL after migration 0013)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar())


def counts(conn: Connection) -> dict[str, int]:
    """Jobs by status, every status present (0 where none); {} where there is no queue."""
    if not has_queue(conn):
        return {}
    rows = conn.exec_driver_sql("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status").all()
    out = dict.fromkeys(STATUSES, 0)
    out.update({status: int(n) for status, n in rows})
    return out


def counts_by_task(conn: Connection) -> dict[tuple[str, str], int]:
    """Jobs by (task name, status); {} where there is no queue."""
    if not has_queue(conn):
        return {}
    rows = conn.exec_driver_sql(
        "SELECT task_name, status::text, count(*) FROM procrastinate_jobs GROUP BY task_name, status"
    ).all()
    return {(task, status): int(n) for task, status, n in rows}


def recent(conn: Connection, statuses: tuple[str, ...] = STATUSES, limit: int = 50) -> list[QueuedJob]:
    """The newest jobs in `statuses`, newest first (at most `limit`); [] where there is no queue."""
    if not has_queue(conn) or not statuses:
        return []
    rows = conn.execute(
        sa.text(
            "SELECT j.id, j.task_name, j.queue_name, j.status::text AS status, j.attempts, j.lock, j.args,"
            " j.scheduled_at, j.worker_id,"
            " (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS last_event_at"
            " FROM procrastinate_jobs j WHERE j.status::text IN :statuses ORDER BY j.id DESC LIMIT :limit"
        ).bindparams(sa.bindparam("statuses", expanding=True)),
        {"statuses": list(statuses), "limit": limit},
    ).mappings()
    return [
        QueuedJob(
            id=r["id"],
            task=r["task_name"],
            queue=r["queue_name"],
            status=r["status"],
            attempts=r["attempts"],
            lock=r["lock"],
            args=dict(r["args"] or {}),
            scheduled_at=r["scheduled_at"],
            last_event_at=r["last_event_at"],
            worker=r["worker_id"],
        )
        for r in rows
    ]


def live_workers(conn: Connection, within_seconds: float = 60.0) -> int:
    """Workers whose heartbeat is at most `within_seconds` old; 0 where there is no queue."""
    if not has_queue(conn):
        return 0
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM procrastinate_workers"
                " WHERE last_heartbeat > now() - make_interval(secs => :s)"
            ),
            {"s": within_seconds},
        ).scalar()
        or 0
    )


def in_flight(conn: Connection, task: str, key: str) -> set[str]:
    """The values of the list argument `key` of every queued or running `task` job (e.g. the paper ids of
    embedding batches not yet done), so that a planner does not queue them twice; empty without a queue."""
    if not has_queue(conn):
        return set()
    rows = conn.execute(
        sa.text(
            "SELECT jsonb_array_elements_text(args -> :key) FROM procrastinate_jobs"
            " WHERE task_name = :task AND status IN ('todo', 'doing')"
        ),
        {"key": key, "task": task},
    ).scalars()
    return set(rows)


def waiting(conn: Connection, task: str) -> int:
    """How many `task` jobs are queued or running; 0 without a queue."""
    if not has_queue(conn):
        return 0
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE task_name = :task AND status IN ('todo', 'doing')"
            ),
            {"task": task},
        ).scalar()
        or 0
    )
