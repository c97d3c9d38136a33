"""The background work of a deployment on many machines, as jobs on a PostgreSQL queue (procrastinate).

`paperboy serve` runs everything in one process with timers (serve.py). Several web processes and workers
on one PostgreSQL cannot: every timer would run in every process. Here each piece of work is a job that
exactly one worker takes (`SELECT … FOR UPDATE SKIP LOCKED`), and what must happen once per deployment is
decided by the database, never by a process:

- **Scheduled ingests** are procrastinate periodic tasks: each slot is deferred once however many workers
  are up (a unique constraint on task, schedule and timestamp). Every arXiv job holds the lock `arxiv`, so
  one arXiv client talks to arXiv per deployment, and it waits out arXiv's interval before letting go of
  it, so its pacing holds across workers.
- **Embedding** is cut into batch jobs of `EMBED_BATCH` papers, planned newest first (`plan_embedding`,
  every minute and after each batch), taken by any number of workers at once; a batch taken twice (its
  worker killed) only embeds what is still missing. Vectors go to the shared `embeddings` table; every web
  node adds them to its own index.
- **Digests**: `plan_digests` (every 5 minutes) splits the subscribers into `DIGEST_SHARDS` shards, one job
  each; a digest per subscriber and period is written once (a unique constraint), whoever plans it.
  **Mail** is one job at a time deployment-wide (the lock `mail`) at PAPERBOY_MAIL_RATE, from the outbox,
  whose lease gives the mail of a killed sender to the next one.
- **Index upkeep** (`index_upkeep`, hourly, one at a time): the worker that takes it brings its own replica
  up to date (from the newest snapshot when it has none) and publishes a snapshot of it in the database
  (search/snapshot.py) when the indexes moved since the last one, so a new web node starts from it in
  seconds to minutes instead of rebuilding for an hour.
- **Jobs of a killed worker**: workers beat every `HEARTBEAT` seconds; `retry_stalled` (every 10 s) puts
  back the running jobs of a worker silent for `STALLED_AFTER` seconds. Old finished jobs are pruned daily.

Each job reports to the `StatusBoard` under the name `paperboy serve` uses (`huggingface`, `arxiv:cs.CL`,
`digests`, `index`), so /readyz, /admin and `paperboy index status` read the same table either way.
An entry-point helper like serve.py: it reads Settings and builds the clients the jobs need.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine, make_url

from paperboy import jobs
from paperboy.config import Settings
from paperboy.scheduler import StatusBoard
from paperboy.sources.http import PoliteClient
from paperboy.store import embeddings as embedding_store
from paperboy.store import queue as queue_store

if TYPE_CHECKING:
    import procrastinate

    from paperboy.ingest import IngestResult
    from paperboy.search.embed import Embedder
    from paperboy.serve import SearchParts

log = logging.getLogger("paperboy.tasks")
Clock = Callable[[], datetime]

# task names: what `paperboy jobs` and /admin show
INGEST_HF = "ingest_huggingface"
INGEST_ARXIV = "ingest_arxiv"
PLAN_EMBEDDING = "plan_embedding"
EMBED_BATCH = "embed_batch"
PLAN_DIGESTS = "plan_digests"
DIGEST_SHARD = "digest_shard"
SEND_MAIL = "send_mail"
INDEX_UPKEEP = "index_upkeep"
RETRY_STALLED = "retry_stalled"
PRUNE_JOBS = "prune_jobs"

EMBED_BATCH_SIZE = 256  # papers per embedding job: ~10 s of one core
EMBED_QUEUED = 8  # embedding batches queued or running at most (the planner tops the queue up to this)
DIGEST_SHARDS = 8  # digest planning jobs per round
HEARTBEAT = 5.0  # seconds between a worker's heartbeats
STALLED_AFTER = 20.0  # a worker silent this long is dead: its running jobs are taken again
KEEP_FINISHED_HOURS = 7 * 24  # finished jobs kept this long for `paperboy jobs` and /admin
# arXiv announces at 20:00 US Eastern, Sunday to Thursday: 20:30 Eastern is 00:30 UTC in summer and 01:30
# UTC in winter, Monday to Friday. Cron speaks UTC: both slots run; the later one finds nothing new.
ARXIV_CRON = "30 0,1 * * 1-5"
DIGEST_CRON = "*/5 * * * *"
EMBED_CRON = "* * * * *"
MAIL_CRON = "* * * * *"
STALLED_CRON = "* * * * * */10"  # procrastinate: a sixth column is seconds
PRUNE_CRON = "17 3 * * *"
INDEX_CRON = (
    "41 * * * *"  # hourly: a new web node restores a snapshot at most an hour behind, then catches up
)


def hf_cron(minutes: int) -> str:
    """The cron line of the Hugging Face slots, every `minutes` (a divisor of an hour, or whole hours that
    divide a day). Every day: on a weekend the run finds Friday's list again, which changes nothing."""
    if minutes <= 0:
        raise ValueError("PAPERBOY_HF_SYNC_MINUTES must be positive")
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return f"0 */{minutes // 60} * * *"
    raise ValueError(
        f"PAPERBOY_HF_SYNC_MINUTES={minutes}: the worker runs Hugging Face on a clock schedule, so it must "
        "divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) or be whole hours that divide a day (60, 120, "
        "180, 240, 360, 480, 720, 1440); or set PAPERBOY_HF_SYNC_CRON"
    )


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (the queue speaks psycopg directly)."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        raise ValueError("the job queue needs PostgreSQL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def arxiv_pacer(settings: Settings, max_wait: float = 300.0) -> Callable[[], None]:
    """arXiv's interval held across the deployment's processes: web nodes looking up a submitted paper and
    the worker running an arXiv job take turns on one key of the shared rate-limit storage (Redis)."""
    from paperboy.sources.pacing import SharedPacer

    return SharedPacer(settings.rate_limit_storage, "arxiv", settings.arxiv_min_interval, max_wait=max_wait)


def queue_client(settings: Settings) -> procrastinate.App:
    """A queue handle for deferring jobs from synchronous code (a web process): opened, no tasks."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(
            conninfo=conninfo(settings.resolved_database_url), min_size=0, max_size=2
        )
    )
    app.open()
    return app


def defer_mail(app: procrastinate.App) -> None:
    """Ask a worker to send the outbox now (a request has queued a mail). One such job waits at most: a
    second ask while one is queued is the same ask."""
    from procrastinate.exceptions import AlreadyEnqueued

    with contextlib.suppress(AlreadyEnqueued):
        app.configure_task(SEND_MAIL, lock="mail", queueing_lock="mail").defer()


@dataclass
class Collaborators:
    """What the jobs of one worker process share: built once, used by every job it takes."""

    engine: Engine
    settings: Settings
    now: Clock
    board: StatusBoard
    load_embedder: Callable[[], Embedder | None]
    _embedder: list[Embedder | None] = field(default_factory=list)
    _search: list[SearchParts] = field(default_factory=list)  # this worker's replica, once opened
    _lock: threading.Lock = field(default_factory=threading.Lock)
    hf: PoliteClient | None = None
    arxiv: PoliteClient | None = None

    def embedder(self) -> Embedder | None:
        """The embedding model, loaded on first use (a few seconds) and kept."""
        with self._lock:
            if not self._embedder:
                self._embedder.append(self.load_embedder())
            return self._embedder[0]


def _report(c: Collaborators, name: str, work: Callable[[], Any]) -> Any:
    """Run `work`, tell the status board how it went under `name`, and re-raise a failure (procrastinate
    records it and retries by the task's strategy)."""
    health = c.board.loop(name)
    try:
        result = work()
    except Exception as exc:
        health.failed(exc)
        health.flush()
        raise
    health.succeeded()
    health.flush()
    return result


def build_worker_app(c: Collaborators) -> procrastinate.App:
    """The queue with every task of a worker registered, and the periodic schedules from the settings."""
    import procrastinate
    from procrastinate import RetryStrategy

    settings = c.settings
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.resolved_database_url), min_size=1, max_size=4
        ),
        worker_defaults={
            "update_heartbeat_interval": HEARTBEAT,
            "stalled_worker_timeout": STALLED_AFTER,
        },
    )
    retry = RetryStrategy(max_attempts=5, exponential_wait=5)

    # --- ingest ------------------------------------------------------------------------------------------
    if settings.sync and settings.hf_sync:
        c.hf = PoliteClient(retries=settings.http_retries, timeout=settings.http_timeout)

        def ingest_huggingface(timestamp: int) -> dict[str, Any]:
            assert c.hf is not None  # noqa: S101 - set above
            client = c.hf
            result = _report(
                c,
                "huggingface",
                # resumes from the stored cursor; an empty deployment's first slot imports the last days
                lambda: jobs.ingest_hf_api(
                    c.engine, client, settings.hf_endpoint, c.now, default_days=settings.hf_initial_days
                ),
            )
            return {"slot": timestamp, **_summary(result)}

        task = app.task(
            name=INGEST_HF, lock="ingest:huggingface", queueing_lock="ingest:huggingface", retry=retry
        )(ingest_huggingface)
        app.periodic(cron=settings.hf_sync_cron or hf_cron(settings.hf_sync_minutes))(task)

    if settings.sync and settings.arxiv_categories:
        c.arxiv = PoliteClient(
            min_interval=settings.arxiv_min_interval,
            retries=settings.http_retries,
            timeout=settings.http_timeout,
            pacer=arxiv_pacer(settings),
        )

        def ingest_arxiv(timestamp: int, category: str) -> dict[str, Any]:
            assert c.arxiv is not None  # noqa: S101 - set above
            client = c.arxiv
            try:
                result = _report(
                    c,
                    f"arxiv:{category}",
                    lambda: jobs.ingest_arxiv(
                        c.engine,
                        client,
                        settings.arxiv_rss_url,
                        settings.arxiv_api_url,
                        category,
                        c.now,
                        cross_lists=settings.arxiv_cross_lists,
                        feature_new=settings.feature_arxiv_new,
                    ),
                )
            finally:
                # Still holding the lock `arxiv`: the next arXiv job, on any worker, starts no sooner than
                # arXiv's interval after this one's last request.
                time.sleep(settings.arxiv_min_interval)
            return {"slot": timestamp, "category": category, **_summary(result)}

        # procrastinate's stubs know periodic tasks of one argument (the timestamp); this one takes two
        arxiv_task: Any = app.task(name=INGEST_ARXIV, lock="arxiv", retry=retry)(ingest_arxiv)
        for category in settings.arxiv_categories:
            app.periodic(
                cron=ARXIV_CRON,
                periodic_id=category,
                queueing_lock=f"arxiv:{category}",
                task_kwargs={"category": category},
            )(arxiv_task)

    # --- embedding ---------------------------------------------------------------------------------------
    def plan_embedding(timestamp: int | None = None) -> dict[str, int]:
        embedder = c.embedder()
        if embedder is None:
            return {"queued": 0}
        with c.engine.connect() as conn:
            busy = queue_store.in_flight(conn, EMBED_BATCH, "ids")
            room = EMBED_QUEUED - queue_store.waiting(conn, EMBED_BATCH)
            ids = (
                embedding_store.pending_ids(conn, embedder.model, room * EMBED_BATCH_SIZE, busy)
                if room > 0
                else []
            )
        batches = [ids[i : i + EMBED_BATCH_SIZE] for i in range(0, len(ids), EMBED_BATCH_SIZE)]
        for batch in batches:
            ids_arg: list[Any] = list(batch)
            embed_task.configure(lock=f"embed:{batch[0]}", priority=-1).defer(ids=ids_arg)
        return {"queued": len(batches)}

    def embed_batch(ids: list[str]) -> dict[str, int]:
        from paperboy.search import indexer

        embedder = c.embedder()
        if embedder is None:
            return {"embedded": 0}
        done = _report(c, "index", lambda: indexer.embed_ids(c.engine, embedder, ids, c.now))
        _defer_once(app, PLAN_EMBEDDING, "plan:embedding")  # the pipeline stays full between minutes
        return {"embedded": done}

    plan_task = app.task(name=PLAN_EMBEDDING, lock="plan:embedding", queueing_lock="plan:embedding")(
        plan_embedding
    )
    app.periodic(cron=EMBED_CRON)(plan_task)
    embed_task = app.task(name=EMBED_BATCH, retry=retry)(embed_batch)

    # --- index upkeep: a fresh snapshot for new web nodes ---------------------------------------------------
    def index_upkeep(timestamp: int | None = None) -> dict[str, Any]:
        return dict(_report(c, "index-snapshot", lambda: upkeep_index(c)))

    upkeep_task = app.task(name=INDEX_UPKEEP, lock="index-upkeep", queueing_lock="index-upkeep", retry=retry)(
        index_upkeep
    )
    app.periodic(cron=INDEX_CRON)(upkeep_task)

    # --- digests and mail --------------------------------------------------------------------------------
    if settings.digests:
        _register_digests(app, c, retry)

    # --- the queue's own upkeep --------------------------------------------------------------------------
    async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> dict[str, int]:
        manager = context.app.job_manager
        stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER))
        retried = 0
        for job in stalled:
            retried += await _retry_stalled_job(manager, job)
        await manager.prune_stalled_workers(seconds_since_heartbeat=STALLED_AFTER)
        return {"retried": retried, "stalled": len(stalled)}

    stalled_task = app.task(name=RETRY_STALLED, pass_context=True, queueing_lock=RETRY_STALLED)(retry_stalled)
    app.periodic(cron=STALLED_CRON)(stalled_task)

    async def prune_jobs(context: procrastinate.JobContext, timestamp: int) -> dict[str, int]:
        await context.app.job_manager.delete_old_jobs(nb_hours=KEEP_FINISHED_HOURS, include_failed=False)
        return {"kept_hours": KEEP_FINISHED_HOURS}

    prune_task = app.task(name=PRUNE_JOBS, pass_context=True, queueing_lock=PRUNE_JOBS)(prune_jobs)
    app.periodic(cron=PRUNE_CRON)(prune_task)
    return app


def upkeep_index(c: Collaborators) -> dict[str, Any]:
    """Bring this worker's replica up to date and publish a snapshot of it when it moved since the newest
    one. The replica is opened once per process: from the newest snapshot when this worker has none (or
    its own is far behind), else rebuilt from the database (the first time, at a million papers, an hour)."""
    from paperboy.search import indexer
    from paperboy.search.snapshot import publish_snapshot, restore_latest
    from paperboy.serve import index_dir, open_search
    from paperboy.store import index_snapshots

    embedder = c.embedder()
    model = embedder.model if embedder is not None else None
    if not c._search:
        restore_latest(c.engine, index_dir(c.settings), model)
        c._search.append(open_search(c.settings, c.engine, embedder=embedder, sync=False))
    parts = c._search[0]
    indexer.sync_keyword(c.engine, parts.keyword)
    if parts.vector is not None and model is not None:
        indexer.sync_vector(c.engine, parts.vector, model)
    with c.engine.connect() as conn:
        newest = index_snapshots.latest(conn, model)
    keyword_seq = parts.keyword.synced_seq
    vector_seq = parts.vector.synced_seq if parts.vector is not None else None
    if newest is not None and (newest.keyword_seq, newest.vector_seq) == (keyword_seq, vector_seq):
        return {"published": False, "snapshot": newest.id, "why": "nothing changed since it"}
    published = publish_snapshot(c.engine, parts.keyword, parts.vector, now=c.now)
    return {
        "published": True,
        "snapshot": published.id,
        "bytes": published.bytes,
        "seconds": round(published.seconds, 1),
        "keyword_seq": published.keyword_seq,
        "vector_seq": published.vector_seq,
    }


def _register_digests(app: procrastinate.App, c: Collaborators, retry: Any) -> None:
    from paperboy.digest.plan import plan_due
    from paperboy.digest.send import send_pending
    from paperboy.mailer import SmtpMailer
    from paperboy.serve import digest_context
    from paperboy.store import subscriptions as sub_store
    from paperboy.templating import make_environment

    settings = c.settings
    env = make_environment()
    mailer = (
        SmtpMailer(settings.smtp_url.get_secret_value(), connections=settings.smtp_connections)
        if settings.smtp_url is not None
        else None
    )

    def plan_digests(timestamp: int) -> dict[str, int]:
        as_of = datetime.fromtimestamp(timestamp, UTC)
        for shard in range(DIGEST_SHARDS):
            shard_task.configure(lock=f"digests:{shard}").defer(
                shard=shard, of=DIGEST_SHARDS, as_of=as_of.isoformat()
            )
        return {"shards": DIGEST_SHARDS}

    def digest_shard(shard: int, of: int, as_of: str) -> dict[str, Any]:
        embedder = c.embedder()
        ctx = digest_context(settings, embedder.model if embedder is not None else None)
        with c.engine.connect() as conn:
            mine = [s for s in sub_store.active_subscriptions(conn) if s.id % of == shard]
        report = _report(
            c,
            "digests",
            lambda: plan_due(
                c.engine,
                datetime.fromisoformat(as_of),
                ctx,
                env,
                now=c.now,
                embedder=c.embedder,
                only=mine,
            ),
        )
        if report.mails and mailer is not None:
            _defer_once(app, SEND_MAIL, "mail")
        return {"shard": shard, "due": report.due, "planned": report.planned, "mails": report.mails}

    def send_mail(timestamp: int | None = None) -> dict[str, Any]:
        if mailer is None:
            return {"sent": 0, "why": "PAPERBOY_SMTP_URL is not set"}
        sender = digest_context(settings).sender
        rate = settings.mail_rate
        report = _report(
            c, "digests", lambda: send_pending(c.engine, mailer, c.now, sender=sender, rate=rate)
        )
        return {
            "sent": report.sent,
            "retried": report.retried,
            "failed": report.failed,
            "cancelled": report.cancelled,
        }

    plan = app.task(name=PLAN_DIGESTS, queueing_lock=PLAN_DIGESTS)(plan_digests)
    app.periodic(cron=settings.digest_cron or DIGEST_CRON)(plan)
    shard_task = app.task(name=DIGEST_SHARD, retry=retry)(digest_shard)
    send = app.task(name=SEND_MAIL, lock="mail", queueing_lock="mail", retry=retry)(send_mail)
    app.periodic(cron=MAIL_CRON)(send)


async def _retry_stalled_job(manager: Any, job: Any) -> int:
    """Put a dead worker's running job back in the queue; 1 when it is, 0 when it could not be (logged).

    A job with a queueing lock may find the next one of its kind already waiting: the next slot of its
    schedule, queued while this one ran and unable to start while this one holds the lock. Only one may
    wait (procrastinate's unique index), so retrying this one would fail on every try and the schedule
    would stop for good. The waiting one is the same work (an ingest resumes from its cursor, a round
    plans what is due, a send sends the outbox): it is cancelled, as a slot is skipped when one of its
    kind is already waiting, and this one, older and holding the lock, is taken again."""
    from procrastinate.exceptions import UniqueViolation

    for _ in range(3):
        try:
            await manager.retry_job(job)
            return 1
        except UniqueViolation:
            if job.queueing_lock is None:
                raise
            for waiting in await manager.list_jobs_async(queueing_lock=job.queueing_lock, status="todo"):
                await manager.cancel_job_by_id_async(waiting.id)
    log.warning("job %s (%s) of a dead worker could not be queued again", job.id, job.task_name)
    return 0


def _defer_once(app: procrastinate.App, task: str, lock: str) -> None:
    """Queue `task` unless one is already waiting: `lock` is both its lock (one runs at a time) and its
    queueing lock (one waits at a time), as where the task is registered."""
    from procrastinate.exceptions import AlreadyEnqueued

    with contextlib.suppress(AlreadyEnqueued):
        app.configure_task(task, lock=lock, queueing_lock=lock).defer()


def _summary(result: IngestResult) -> dict[str, Any]:
    """An ingest's figures as a job's result (kept with the job: `paperboy jobs`)."""
    counts = result.counts
    return {
        "run": result.run_id,
        "pages": result.pages,
        "inserted": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "featured": counts.featured,
    }
