"""`paperboy ingest …`: every source, and the ingest log."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine

from paperboy.cli import (  # the shared helpers and the `main` group these commands hang on
    DATE,
    arxiv_client,
    hf_client,
    load_settings,
    main,
    open_engine,
    run_job,
    utcnow,
)
from paperboy.config import Settings
from paperboy.errors import PaperboyError


@main.group()
def ingest() -> None:
    """Pull papers from a source. Every ingest is idempotent and resumes from where the last run stopped."""


@ingest.result_callback()
def _after_ingest(*_args: Any, **_kwargs: Any) -> None:
    """After a successful ingest, new papers go into the keyword index at once (vectors follow later)."""
    if click.get_current_context().invoked_subcommand == "log":
        return
    settings = load_settings()
    sync_keyword_index(settings, open_engine(settings))


def sync_keyword_index(settings: Settings, engine: Engine) -> None:
    from paperboy.search.indexer import open_keyword_index

    try:
        index = open_keyword_index(settings.data_dir / "index" / "keyword", engine, sync=False)
        try:
            from paperboy.search.indexer import sync_keyword

            n = sync_keyword(engine, index)
        finally:
            index.close()
    except PaperboyError as exc:  # e.g. a running `paperboy serve` holds the writer: its indexer syncs them
        click.echo(
            f"keyword index not updated here ({exc}); a running server indexes new papers itself", err=True
        )
        return
    click.echo(
        f"keyword index: {n} papers (re)indexed; `paperboy index update` embeds them for search by meaning",
        err=True,
    )


@ingest.command("log")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="How many runs.")
def ingest_log(limit: int) -> None:
    """The most recent ingest runs (CLI and scheduled), newest first, one JSON object per line."""
    from paperboy.store.ingest_state import recent_runs

    engine = open_engine(load_settings())
    with engine.connect() as conn:
        runs = recent_runs(conn, limit)
    for run in runs:
        click.echo(
            json.dumps(
                {
                    "run": run.id,
                    "source": run.source,
                    "status": run.status,
                    "started_at": run.started_at.isoformat(),
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                    "inserted": run.inserted,
                    "updated": run.updated,
                    "unchanged": run.unchanged,
                    "featured": run.featured,
                    "error": run.error,
                }
            )
        )


@ingest.command("hf")
@click.option("--date", "day", type=DATE, help="Fetch the daily list of this one day.")
@click.option(
    "--since", type=DATE, help="Fetch every weekday from this day to today (resumes from the cursor)."
)
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Load a saved API response: JSON list, JSON lines, or gzipped.",
)
def ingest_hf(day: date | None, since: date | None, path: Path | None) -> None:
    """Hugging Face daily papers, from the API or a saved file."""
    from paperboy import jobs

    if day and since:
        raise click.UsageError("give --date or --since, not both")
    if path and (day or since):
        raise click.UsageError("--file reads a saved file; --date and --since are for the API")
    settings = load_settings()
    engine = open_engine(settings)
    if path is not None:
        run_job("huggingface file", lambda progress: jobs.ingest_hf_file(engine, path, utcnow, progress))
        return
    with hf_client(settings) as client:
        run_job(
            "huggingface",
            lambda progress: jobs.ingest_hf_api(
                engine,
                client,
                settings.hf_endpoint,
                utcnow,
                day=day,
                since=since,
                default_days=settings.hf_initial_days,
                progress=progress,
            ),
        )


@ingest.command("snapshot")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def ingest_snapshot(path: Path) -> None:
    """Bulk JSON lines: the Kaggle arXiv snapshot or the daily-listing format, gzipped or not."""
    from paperboy import jobs

    settings = load_settings()
    engine = open_engine(settings)
    run_job("snapshot", lambda progress: jobs.ingest_snapshot(engine, path, utcnow, progress))


@ingest.command("arxiv")
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="CAT",
    help="arXiv category to follow, e.g. cs.CL (repeatable). Default: PAPERBOY_ARXIV_CATEGORIES.",
)
@click.option(
    "--since",
    type=DATE,
    help="Skip the listing when its announcement day is before this day. The RSS feed only ever holds the "
    "latest announcement day: to backfill older days use `paperboy ingest oai --set … --from DAY`.",
)
@click.option(
    "--cross-lists/--no-cross-lists",
    default=None,
    help="Also store papers cross-listed into the category (default: PAPERBOY_ARXIV_CROSS_LISTS).",
)
@click.option("--force", is_flag=True, help="Ingest the listing even when its day is already stored.")
def ingest_arxiv(
    categories: tuple[str, ...], since: date | None, cross_lists: bool | None, force: bool
) -> None:
    """arXiv categories' newest announcement: the RSS listing, completed by the Atom API.

    The feed holds a single announcement day (the newest), so running this again the same day changes
    nothing. New papers are featured on that day's list when PAPERBOY_FEATURE_ARXIV_NEW is on. Requests to
    arXiv are paced at PAPERBOY_ARXIV_MIN_INTERVAL seconds (3 by default, as arXiv asks).
    """
    from paperboy import jobs
    from paperboy.store import ingest_state

    settings = load_settings()
    chosen = list(categories) or settings.arxiv_categories
    if not chosen:
        raise click.UsageError("give --category (e.g. --category cs.CL) or set PAPERBOY_ARXIV_CATEGORIES")
    engine = open_engine(settings)
    cross = settings.arxiv_cross_lists if cross_lists is None else cross_lists
    with arxiv_client(settings) as client:
        for category in chosen:
            run_job(
                f"arxiv {category}",
                lambda progress, category=category: jobs.ingest_arxiv(
                    engine,
                    client,
                    settings.arxiv_rss_url,
                    settings.arxiv_api_url,
                    category,
                    utcnow,
                    cross_lists=cross,
                    feature_new=settings.feature_arxiv_new,
                    since=since,
                    progress=progress,
                    force=force,
                ),
            )
            if since is None:
                continue
            with engine.connect() as conn:
                cursor = ingest_state.get_cursor(conn, jobs.arxiv_cursor_name(category.strip())) or {}
            day = cursor.get("day")
            if day and date.fromisoformat(day) > since:
                click.echo(
                    f"note: the {category} feed holds {day} only; for the days from {since} before it run "
                    f"`paperboy ingest oai --set <set> --from {since}`",
                    err=True,
                )


@ingest.command("oai")
@click.option(
    "--set",
    "set_spec",
    required=True,
    help="OAI-PMH set, e.g. cs, math, physics:hep-th (arXiv's sets are archives, not categories).",
)
@click.option(
    "--from",
    "from_date",
    type=DATE,
    help="Harvest records changed since this day (starts a new list). Default: resume from the last run.",
)
@click.option(
    "--prefix",
    type=click.Choice(["arXivRaw", "arXiv"]),
    default="arXivRaw",
    show_default=True,
    help="Metadata format: arXivRaw has every version (numbers and dates); arXiv has parsed author names.",
)
def ingest_oai(set_spec: str, from_date: date | None, prefix: str) -> None:
    """Backfill from arXiv's OAI-PMH interface: every record of a set changed since a day.

    Each response page is stored with its resumption token, so an interrupted harvest continues where it
    stopped; a finished one remembers the day it started and the next run asks only for what changed since.
    Without --from the first run harvests the whole set, which takes hours for a large archive.
    """
    from paperboy import jobs

    settings = load_settings()
    engine = open_engine(settings)
    with arxiv_client(settings) as client:
        run_job(
            f"oai {set_spec}",
            lambda progress: jobs.ingest_oai(
                engine,
                client,
                settings.arxiv_oai_url,
                set_spec,
                utcnow,
                from_date=from_date,
                metadata_prefix=prefix,
                progress=progress,
            ),
        )
