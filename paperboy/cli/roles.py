"""The roles of a deployment on many machines (docs/deploying.md, "Many machines"): `paperboy web` (HTTP
only, any number of them) and `paperboy worker` (jobs only, any number), sharing one PostgreSQL, and
`paperboy jobs`, what the queue holds. `paperboy serve` stays the one-process default."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

import click

from paperboy.cli import (
    bind_listener,
    explain,
    load_settings,
    main,
    open_engine,
    rate_limits,
    utcnow,
    uvicorn_config,
)
from paperboy.config import Settings


def cluster_settings(settings: Settings, role: str) -> Settings:
    """The settings of a web or worker process, or a one-line ClickException saying why it cannot start:
    these roles share PostgreSQL (not an SQLite file on one disk) and one secret key (a key each process
    made for itself would make a form signed by one node be refused by the next)."""
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        raise click.ClickException(
            f"paperboy {role} runs beside other processes on one PostgreSQL: set PAPERBOY_DATABASE_URL to"
            " a postgresql+psycopg:// URL (docs/deploying.md). On one machine with SQLite, run `paperboy"
            " serve`, which does everything in one process."
        )
    if settings.secret_key is None:
        raise click.ClickException(
            f"paperboy {role} needs PAPERBOY_SECRET_KEY: without it each process would make a key of its own,"
            " and a form or link signed by one node would be refused by the next. Set the same value (32 or"
            ' more random characters: python3 -c "import secrets; print(secrets.token_hex(32))") on every web'
            " process and worker."
        )
    return settings


@main.command()
@click.option("--host", help="Address to listen on (default: PAPERBOY_HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: PAPERBOY_PORT or 8000).")
@click.option(
    "--forwarded-allow-ips",
    metavar="ADDRESSES",
    help="Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto to believe (as for serve).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes serving the one port (each its own search replica in data_dir/index/web-N: memory × N).",
)
def web(host: str | None, port: int | None, forwarded_allow_ips: str | None, workers: int) -> None:
    """Serve HTTP only, as one of several web processes on one PostgreSQL.

    Needs PAPERBOY_DATABASE_URL (PostgreSQL) and PAPERBOY_SECRET_KEY, the same on every node. It runs no
    schedule and sends no mail: `paperboy worker` does (a mail a request queues is handed to a worker at
    once). Its search indexes are a replica, kept current from the database: new papers are findable by
    keyword within seconds of their ingest, by meaning within seconds of a worker storing their vector.
    Rate limits are shared when PAPERBOY_RATE_LIMIT_STORAGE names a Redis server; otherwise each process
    counts alone (told at start).

    With --workers N it forks N processes that accept connections on the one port (the kernel spreads
    them), restarts one that dies, and stops them all on SIGTERM or Ctrl-C. Routes are synchronous and
    Python runs one thread at a time per process, so N processes use N cores.
    """
    import logging
    from functools import partial

    import uvicorn

    from paperboy.community.submit import arxiv_fetcher
    from paperboy.scheduler import StatusBoard
    from paperboy.search.snapshot import restore_latest
    from paperboy.serve import (
        IndexWorker,
        first_account_code,
        index_dir,
        load_embedder_or_none,
        open_search,
        secret_key,
        serving_settings,
    )
    from paperboy.tasks import arxiv_pacer, defer_mail, queue_client
    from paperboy.web.app import create_app
    from paperboy.web.deps import Site

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    overrides: dict[str, Any] = {"host": host, "port": port, "forwarded_allow_ips": forwarded_allow_ips}
    settings = cluster_settings(serving_settings(load_settings(**overrides), echo=echo), "web")
    if settings.rate_limit_storage.startswith("memory"):
        echo(
            "PAPERBOY_RATE_LIMIT_STORAGE is memory://: this process counts sign-ins, votes and sign-ups on"
            " its own, so N web processes allow N times the limits; set it to redis://… to share them"
        )
    listening = bind_listener(settings.host, settings.port)
    slot = None
    if workers > 1:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics adds up the processes' counters
            import tempfile

            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="paperboy-metrics-")
        slot = supervise(workers, echo)  # returns only in a child: its number
    engine = open_engine(settings)  # migrations wait on one another (an advisory lock)
    board = StatusBoard(engine, utcnow)
    node = f"{socket.gethostname()}:{settings.port}"
    root = index_dir(settings) / f"web-{slot}" if slot is not None else None
    embedder = load_embedder_or_none(settings, echo)
    # An empty (or far behind) replica starts from the newest snapshot a worker published, not a rebuild
    restore_latest(engine, root or index_dir(settings), embedder.model if embedder is not None else None)
    parts = open_search(settings, engine, embedder=embedder, sync=False, root=root)
    if slot is not None:
        node = f"{node}/{slot}"
    follower = IndexWorker(engine, parts, utcnow, board=board, embed=False, name=f"index@{node}")
    queue = queue_client(settings)
    site = Site(name=settings.site_name, public_url=settings.public_url, trending_days=settings.trending_days)
    app = create_app(
        engine,
        site=site,
        clock=utcnow,
        searcher=parts.searcher(),
        secret_key=secret_key(settings),
        rate_limits=rate_limits(settings),
        threads=settings.threads,
        page_cache_seconds=settings.page_cache_seconds,
        rate_limit_storage=settings.rate_limit_storage,
        signup_verify_email=settings.signup_verify_email,
        setup_code=first_account_code(engine, settings, echo, shared=True),
        max_body_bytes=settings.max_body_bytes,
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        fetch_paper=arxiv_fetcher(
            settings.arxiv_api_url,
            min_interval=settings.arxiv_min_interval,
            timeout=settings.http_timeout,
            retries=settings.http_retries,
            pacer=arxiv_pacer(settings, max_wait=10.0),  # one arXiv client per deployment; a member waits
        ),
    )
    app.state.background = board
    app.state.on_outbox = partial(defer_mail, queue)
    click.echo(
        f"paperboy web is serving {explain.safe_url(settings.resolved_database_url)}"
        f" at http://{settings.host}:{settings.port}/papers (pid {os.getpid()})"
    )
    follower.start(idle_seconds=FOLLOW_SECONDS)
    try:
        uvicorn.Server(uvicorn_config(app, settings)).run(sockets=[listening])
    finally:
        follower.stop()
        queue.close()


FOLLOW_SECONDS = 5.0  # how often an idle web node looks for new papers and vectors in the database


def supervise(workers: int, echo: Any) -> int:
    """Fork `workers` children, each to serve on the listening socket the parent bound; in a child, return
    its number (0..workers-1). The parent never returns: it restarts a child that dies (after a pause, so a
    child that cannot start does not spin), forwards SIGTERM/SIGINT to them all and exits when they have.
    Forking happens before any thread, engine or model exists, so each child builds its own."""
    import signal
    import sys
    import time

    children: dict[int, int] = {}  # pid -> slot
    stopping = False

    def spawn(slot: int) -> int | None:
        # Signals wait while forking: a SIGTERM arriving now reaches the parent once the child is on its
        # list (so it is stopped too), and the child only after it has its default handlers back.
        blocked = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                return slot
            children[pid] = slot
            return None
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for slot in range(workers):
        mine = spawn(slot)
        if mine is not None:
            return mine
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    echo(f"paperboy web: {workers} processes serve the port (pids {', '.join(map(str, children))})")
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait; kept for clarity
            continue
        ended = children.pop(pid, None)
        if ended is None or stopping:
            continue
        slot = ended
        echo(f"paperboy web: process {pid} (slot {slot}) ended with status {status}; starting another")
        time.sleep(1.0)
        if stopping:  # told to stop meanwhile
            continue
        mine = spawn(slot)
        if mine is not None:
            return mine
    sys.exit(0)


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Jobs this process runs at once (each in a thread; embedding uses PAPERBOY_EMBEDDING_THREADS).",
)
def worker(concurrency: int) -> None:
    """Take jobs from the PostgreSQL queue: scheduled ingests, embedding batches, digests, mail.

    Run as many as the work needs, on any machines that reach the database: each job is taken by one
    worker, each scheduled slot is queued once however many run, arXiv is spoken to by one of them at a
    time, and mail leaves at PAPERBOY_MAIL_RATE for the whole deployment. A worker that is killed loses
    nothing: after 20 s without its heartbeat its running job is given to another. Stops cleanly on
    SIGTERM or Ctrl-C (the running job finishes first). Needs PAPERBOY_DATABASE_URL (PostgreSQL) and
    PAPERBOY_SECRET_KEY, the same on every node.
    """
    import logging

    from paperboy.scheduler import StatusBoard
    from paperboy.serve import load_embedder_or_none
    from paperboy.tasks import Collaborators, build_worker_app, hf_cron

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    settings = cluster_settings(load_settings(), "worker")
    try:
        cron = settings.hf_sync_cron or hf_cron(settings.hf_sync_minutes)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    import croniter

    if not croniter.croniter.is_valid(cron):
        raise click.ClickException(f"PAPERBOY_HF_SYNC_CRON={cron!r} is not a cron line")
    engine = open_engine(settings)
    collaborators = Collaborators(
        engine, settings, utcnow, StatusBoard(engine, utcnow), lambda: load_embedder_or_none(settings, echo)
    )
    app = build_worker_app(collaborators)
    click.echo(
        f"paperboy worker (pid {os.getpid()}) takes jobs from"
        f" {explain.safe_url(settings.resolved_database_url)}",
        err=True,
    )
    app.run_worker(concurrency=concurrency, install_signal_handlers=True)


@main.command()
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted"]),
    help="Only jobs in this state (repeatable; default: queued, running and failed).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Jobs listed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def jobs(statuses: tuple[str, ...], limit: int, as_json: bool) -> None:
    """What the job queue holds: counts by state, then the newest queued, running and failed jobs."""
    from paperboy.store import queue as queue_store

    settings = load_settings()
    engine = open_engine(settings)
    wanted = statuses or ("todo", "doing", "failed")
    with engine.connect() as conn:
        has_queue = queue_store.has_queue(conn)
        if has_queue:
            counts = queue_store.counts(conn)
            workers = queue_store.live_workers(conn)
            listed = queue_store.recent(conn, wanted, limit)
    engine.dispose()
    if not has_queue:
        raise click.ClickException(
            "this database has no job queue: it is SQLite, where `paperboy serve` runs the background"
            " work in its own process (see `paperboy index status` and `paperboy ingest log`)"
        )
    if as_json:
        out = {
            "counts": counts,
            "workers": workers,
            "jobs": [
                {
                    "id": j.id,
                    "task": j.task,
                    "status": j.status,
                    "attempts": j.attempts,
                    "lock": j.lock,
                    "args": j.args,
                    "scheduled_at": j.scheduled_at.isoformat() if j.scheduled_at else None,
                    "last_event_at": j.last_event_at.isoformat() if j.last_event_at else None,
                }
                for j in listed
            ],
        }
        click.echo(json.dumps(out, default=str))
        return
    click.echo(f"workers alive: {workers}")
    click.echo("  ".join(f"{status} {n}" for status, n in counts.items()))
    for j in listed:
        when = j.last_event_at.strftime("%Y-%m-%d %H:%M:%S") if j.last_event_at else "-"
        args = json.dumps(j.args, default=str)
        if len(args) > 60:
            args = args[:57] + "..."
        click.echo(f"{j.id:>8}  {j.status:<9} {j.task:<20} tries {j.attempts}  {when}  {args}")
