"""What `paperboy serve` does around the web app: the first-start import and the sync schedule.

An entry-point helper (like cli): it reads Settings and builds the clients the jobs need.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.engine import Engine

from paperboy import jobs
from paperboy.config import Settings
from paperboy.errors import PaperboyError
from paperboy.scheduler import Job, Scheduler, next_arxiv_run, next_hf_run
from paperboy.sources.http import PoliteClient
from paperboy.store.papers import count_papers

Clock = Callable[[], datetime]


def first_start(
    engine: Engine, settings: Settings, now: Clock, client: PoliteClient, echo: Callable[[str], None]
) -> str:
    """Fill an empty database: recent Hugging Face days when sync is on and the network allows, else the
    bundled demo papers. Returns what it did ("existing", "huggingface" or "demo")."""
    with engine.connect() as conn:
        if count_papers(conn) > 0:
            return "existing"
    if settings.sync:
        echo(
            f"empty database: importing the last {settings.hf_initial_days} days"
            f" from {settings.hf_endpoint} …"
        )
        try:
            result = jobs.ingest_hf_api(
                engine, client, settings.hf_endpoint, now, default_days=settings.hf_initial_days
            )
            if result.counts.inserted > 0:
                echo(f"imported {result.counts.inserted} papers from Hugging Face")
                return "huggingface"
            echo("Hugging Face returned no papers")
        except PaperboyError as exc:
            echo(f"could not reach Hugging Face ({exc})")
    result = jobs.load_demo(engine, now)
    echo(f"loaded {result.counts.inserted} bundled demo papers (run `paperboy ingest …` for real data)")
    return "demo"


def build_scheduler(engine: Engine, settings: Settings, now: Clock) -> Scheduler:
    """The jobs of the sync schedule, from the settings: Hugging Face, then each followed arXiv category."""
    sched_jobs: list[Job] = []
    if settings.hf_sync:
        hf = PoliteClient(retries=settings.http_retries, timeout=settings.http_timeout)
        every = timedelta(minutes=settings.hf_sync_minutes)
        sched_jobs.append(
            Job(
                "huggingface",
                lambda last, current: next_hf_run(last, current, every),
                partial(jobs.ingest_hf_api, engine, hf, settings.hf_endpoint, now, default_days=1),
            )
        )
    if settings.arxiv_categories:
        arxiv = PoliteClient(
            min_interval=settings.arxiv_min_interval,
            retries=settings.http_retries,
            timeout=settings.http_timeout,
        )
        for category in settings.arxiv_categories:
            sched_jobs.append(
                Job(
                    f"arxiv:{category}",
                    next_arxiv_run,
                    partial(
                        jobs.ingest_arxiv,
                        engine,
                        arxiv,
                        settings.arxiv_rss_url,
                        settings.arxiv_api_url,
                        category,
                        now,
                        cross_lists=settings.arxiv_cross_lists,
                        feature_new=settings.feature_arxiv_new,
                    ),
                )
            )
    return Scheduler(sched_jobs, now)
