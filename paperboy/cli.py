"""The `paperboy` command. An entry point: it reads Settings, builds engine and clients, passes them down."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Engine

from paperboy import __version__, db
from paperboy.config import Settings
from paperboy.errors import PaperboyError
from paperboy.ingest import IngestFailed, IngestResult, Progress
from paperboy.models import Page, UpsertCounts
from paperboy.sources.http import PoliteClient


def utcnow() -> datetime:
    return datetime.now(UTC)


class DateParam(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date in YYYY-MM-DD form", param, ctx)


DATE = DateParam()


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as exc:  # pydantic's ValidationError lists every bad setting
        raise click.ClickException(f"invalid settings:\n{exc}") from exc


def open_engine(settings: Settings) -> Engine:
    engine = db.make_engine(settings.resolved_database_url)
    db.upgrade(engine)
    return engine


def arxiv_client(settings: Settings) -> PoliteClient:
    return PoliteClient(
        min_interval=settings.arxiv_min_interval, retries=settings.http_retries, timeout=settings.http_timeout
    )


def hf_client(settings: Settings) -> PoliteClient:
    return PoliteClient(retries=settings.http_retries, timeout=settings.http_timeout)


@contextmanager
def progress_bar(label: str) -> Iterator[Progress]:
    """A rich progress bar on a terminal; one log line per page elsewhere (cron, CI)."""
    if not sys.stderr.isatty():

        def log(page: Page, counts: UpsertCounts) -> None:
            click.echo(
                f"{label}: +{counts.inserted} new, {counts.updated} updated, {counts.featured} featured"
                f" ({len(page.records)} records)",
                err=True,
            )

        yield log
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(page: Page, counts: UpsertCounts) -> None:
            if page.total is not None:
                bar.update(task, total=page.total)
            bar.update(task, advance=1, description=f"{label} (+{counts.inserted} new, {counts.updated} upd)")

        yield update


def report(result: IngestResult) -> None:
    c = result.counts
    click.echo(
        json.dumps(
            {
                "source": result.source,
                "run": result.run_id,
                "pages": result.pages,
                "inserted": c.inserted,
                "updated": c.updated,
                "unchanged": c.unchanged,
                "featured": c.featured,
            }
        )
    )


def run_job(label: str, job: Any) -> None:
    """Run an ingest job with a progress bar; failures exit 1 with the reason and what was kept."""
    try:
        with progress_bar(label) as progress:
            result = job(progress)
    except IngestFailed as exc:
        kept = exc.counts
        raise click.ClickException(
            f"{exc}\nKept {kept.inserted} new and {kept.updated} updated papers stored before the failure; "
            "run the same command again to resume."
        ) from exc
    except PaperboyError as exc:
        raise click.ClickException(str(exc)) from exc
    report(result)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paperboy")
def main() -> None:
    """paperboy: a self-hosted Daily Papers hub.

    Settings come from PAPERBOY_* environment variables (or a TOML file named by PAPERBOY_CONFIG);
    `paperboy config` lists them.
    """


@main.command()
def config() -> None:
    """Show every setting, its current value and what it does."""
    settings = load_settings()
    for name, field in Settings.model_fields.items():
        click.echo(f"PAPERBOY_{name.upper()} = {getattr(settings, name)!r}")
        click.echo(f"    {field.description}")


def rate_limits(settings: Settings) -> Any:
    from paperboy.web.security import RateLimits

    return RateLimits(
        signin=settings.rate_signin,
        signup=settings.rate_signup,
        vote=settings.rate_vote,
        comment=settings.rate_comment,
        submit=settings.rate_submit,
        claim=settings.rate_claim,
        subscribe=settings.rate_subscribe,
    )


@main.command()
@click.option("--host", help="Address to listen on (default: PAPERBOY_HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: PAPERBOY_PORT or 8000).")
@click.option("--no-sync", is_flag=True, help="No network access: no start-up import, no scheduled ingest.")
def serve(host: str | None, port: int | None, no_sync: bool) -> None:
    """Migrate the database, start the web app and print its URL.

    On an empty database it first imports the last few days from Hugging Face; without a network (or with
    --no-sync) it loads the bundled demo papers instead, so the first page is never empty. While it runs it
    ingests Hugging Face hourly on weekdays and each PAPERBOY_ARXIV_CATEGORIES category after arXiv's
    daily announcement, in this process.
    """
    import logging

    import uvicorn

    from paperboy.community.submit import arxiv_fetcher
    from paperboy.serve import build_digest_scheduler, build_scheduler, first_start, secret_key
    from paperboy.web.app import create_app
    from paperboy.web.deps import Site

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {"host": host, "port": port}
    if no_sync:
        overrides["sync"] = False
    settings = load_settings(**overrides)
    engine = open_engine(settings)
    # The first-start import is a quick probe: an offline machine gets the demo set in seconds, not minutes.
    with PoliteClient(retries=1, backoff=0.5, timeout=min(10.0, settings.http_timeout)) as probe:
        first_start(engine, settings, utcnow, probe, echo=lambda m: click.echo(m, err=True))
    scheduler = build_scheduler(engine, settings, utcnow) if settings.sync else None
    site = Site(name=settings.site_name, public_url=settings.public_url, trending_days=settings.trending_days)
    from paperboy.serve import IndexWorker, load_embedder_or_none, open_search

    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    parts = open_search(settings, engine, embedder=load_embedder_or_none(settings, echo), sync=False)
    worker = IndexWorker(engine, parts, utcnow)
    app = create_app(
        engine,
        site=site,
        clock=utcnow,
        searcher=parts.searcher(),
        secret_key=secret_key(settings),
        rate_limits=rate_limits(settings),
        fetch_paper=arxiv_fetcher(
            settings.arxiv_api_url,
            min_interval=settings.arxiv_min_interval,
            timeout=settings.http_timeout,
            retries=settings.http_retries,
        ),
    )
    click.echo(
        f"paperboy is serving {settings.resolved_database_url} at http://{settings.host}:{settings.port}/papers"
    )
    digests = build_digest_scheduler(engine, settings, utcnow, parts.embedder) if settings.digests else None
    worker.start()
    if scheduler is not None:
        scheduler.start()
    if digests is not None:
        digests.start()
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    finally:
        if scheduler is not None:
            scheduler.stop()
        if digests is not None:
            digests.stop()
        worker.stop()


@main.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create the database or migrate it to the newest schema."""
    settings = load_settings()
    open_engine(settings)
    click.echo(f"database at head: {settings.resolved_database_url}")


@main.group()
def user() -> None:
    """Members, for administrators working from a shell."""


def _read_password() -> str:
    """The new password: from standard input (one line) when piped, else typed twice without echo."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@user.command("create")
@click.argument("name")
@click.option("--email", required=True, help="The member's email address (never shown to others).")
@click.option("--admin", is_flag=True, help="Make the member an admin (the first member always is).")
def user_create(name: str, email: str, admin: bool) -> None:
    """Create member NAME; the password is read from standard input.

    \b
    echo "$PASSWORD" | paperboy user create ada --email ada@example.org --admin
    """
    from paperboy import accounts
    from paperboy.errors import InvalidInput

    settings = load_settings()
    engine = open_engine(settings)
    password = _read_password()
    try:
        with engine.begin() as conn:
            made = accounts.create_user(
                conn,
                accounts.new_hasher(),
                username=name,
                email=email,
                password=password,
                now=utcnow(),
                admin=True if admin else None,
            )
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from exc
    role = "admin" if made.is_admin else "member"
    click.echo(f"created {role} {made.username} <{made.email}>")


@user.command("list")
def user_list() -> None:
    """Every member: id, name, role, state, email."""
    from paperboy.store import users as store

    engine = open_engine(load_settings())
    with engine.connect() as conn:
        for u in store.list_users(conn, limit=100_000):
            role = "admin" if u.is_admin else "member"
            state = "disabled" if u.disabled else "active"
            click.echo(f"{u.id:>6}  {u.username:<40} {role:<6} {state:<8} {u.email}")


@user.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Re-enable instead.")
def user_disable(name: str, enable: bool) -> None:
    """Disable member NAME (their sessions end and their tokens stop working), or --enable again."""
    from paperboy.store import users as store

    engine = open_engine(load_settings())
    with engine.begin() as conn:
        found = _member(conn, name)
        store.set_disabled(conn, found.id, not enable)
    click.echo(f"{'enabled' if enable else 'disabled'} {found.username}")


def _member(conn: Any, name: str) -> Any:
    from paperboy.store import users as store

    found = store.get_user_by_name(conn, name)
    if found is None:
        raise click.ClickException(f"no member named {name!r}")
    return found


@main.group()
def token() -> None:
    """Personal API tokens, for administrators working from a shell."""


@token.command("create")
@click.argument("name")
@click.option(
    "--label", default="cli", show_default=True, help="What the token is for, as /settings lists it."
)
def token_create(name: str, label: str) -> None:
    """Print a new API token for member NAME (shown once; scripts send it as `Authorization: Bearer …`)."""
    from paperboy import accounts
    from paperboy.errors import InvalidInput

    engine = open_engine(load_settings())
    with engine.begin() as conn:
        found = _member(conn, name)
        try:
            made = accounts.create_token(conn, found, label, utcnow())
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(made.secret)


@token.command("revoke")
@click.argument("name")
@click.argument("token_id", type=int)
def token_revoke(name: str, token_id: int) -> None:
    """Revoke token TOKEN_ID of member NAME (ids are listed on the member's /settings page)."""
    from paperboy import accounts
    from paperboy.errors import NotFound

    engine = open_engine(load_settings())
    with engine.begin() as conn:
        found = _member(conn, name)
        try:
            accounts.revoke_token(conn, found, token_id)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked token {token_id} of {found.username}")


@main.group()
def digest() -> None:
    """Email digests: plan and send what is due, preview one, unsubscribe an address."""


def _digest_parts(settings: Settings) -> tuple[Any, Any]:
    """The mail context and the Jinja environment digests render with."""
    from paperboy.digest.plan import Context
    from paperboy.search.embed import DEFAULT_MODEL
    from paperboy.serve import secret_key
    from paperboy.templating import make_environment

    ctx = Context(
        site_name=settings.site_name,
        public_url=settings.public_url,
        sender=settings.sender,
        key=secret_key(settings),
        model=settings.embedding_model or DEFAULT_MODEL,
    )
    return ctx, make_environment()


def _as_of(value: str | None) -> datetime:
    if not value:
        return utcnow()
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an ISO date-time like 2026-11-27T14:00Z", param_hint="--as-of"
        ) from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


AS_OF_HELP = (
    "The moment to act as of (ISO 8601; no offset means UTC). Default: now. A past moment replays it."
)


@digest.command("send")
@click.option("--as-of", "as_of", metavar="ISO-DATETIME", help=AS_OF_HELP)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Compose and render what is due, print the counts, write and send nothing.",
)
def digest_send(as_of: str | None, dry_run: bool) -> None:
    """Plan every digest due at --as-of and send what the outbox holds (cron-friendly; run it as often as
    you like: each subscriber gets one digest per period). Exits 1 when the SMTP server cannot be reached."""
    from paperboy.digest.run import digest_round
    from paperboy.mailer import SmtpMailer
    from paperboy.serve import load_embedder_or_none

    settings = load_settings()
    engine = open_engine(settings)
    ctx, env = _digest_parts(settings)
    when = _as_of(as_of)
    # loaded only when a topic still lacks its vector: most rounds run no model
    embedder = partial(load_embedder_or_none, settings, lambda m: click.echo(m, err=True))
    mailer = None
    if settings.smtp_url is not None and not dry_run:
        mailer = SmtpMailer(settings.smtp_url.get_secret_value(), connections=settings.smtp_connections)
    elif not dry_run:
        click.echo("PAPERBOY_SMTP_URL is not set: digests are planned into the outbox, not sent", err=True)
    try:
        result = digest_round(
            engine,
            when,
            ctx,
            env,
            mailer,
            utcnow,
            rate=settings.mail_rate,
            embedder=embedder,
            dry_run=dry_run,
        )
    finally:
        if mailer is not None:
            mailer.close()
    click.echo(json.dumps({"as_of": when.isoformat(), "dry_run": dry_run, **result.summary()}))
    if result.send is not None and result.send.stopped:
        sys.exit(1)


@digest.command("preview")
@click.argument("email")
@click.option("--as-of", "as_of", metavar="ISO-DATETIME", help=AS_OF_HELP)
@click.option("--html", "as_html", is_flag=True, help="Print the HTML part instead of the plain text.")
def digest_preview(email: str, as_of: str | None, as_html: bool) -> None:
    """Print the digest EMAIL would get for the period at --as-of (the next one when none is due then),
    whatever the subscription's state; nothing is written or sent."""
    from datetime import timedelta

    from paperboy.digest.plan import preview
    from paperboy.digest.schedule import due
    from paperboy.serve import load_embedder_or_none
    from paperboy.store import subscriptions as sub_store

    settings = load_settings()
    engine = open_engine(settings)
    ctx, env = _digest_parts(settings)
    with engine.connect() as conn:
        sub = sub_store.get_by_email(conn, email.strip().lower())
    if sub is None:
        raise click.ClickException(f"no subscription for {email}")
    when = _as_of(as_of)
    for _ in range(8 * 24):  # the next moment a digest is due, within a week
        if due(sub.cadence, sub.send_hour, sub.weekly_day, sub.timezone, when) is not None:
            break
        when += timedelta(hours=1)
    embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    period, mail = preview(engine, sub, when, ctx, env, embedder)
    if period is None or mail is None:
        click.echo(
            f"nothing to send to {sub.email} for {period.period if period else 'the coming week'}", err=True
        )
        sys.exit(1)
    click.echo(f"Subject: {mail.subject}", err=True)
    for name, value in mail.headers.items():
        click.echo(f"{name}: {value}", err=True)
    click.echo(mail.html if as_html else mail.text)


@digest.command("unsubscribe")
@click.argument("email")
def digest_unsubscribe(email: str) -> None:
    """Unsubscribe EMAIL at once (for unsubscribe requests mailed to the From address)."""
    from paperboy.digest import subscriptions as subs
    from paperboy.store import subscriptions as sub_store

    engine = open_engine(load_settings())
    with engine.begin() as conn:
        sub = sub_store.get_by_email(conn, email.strip().lower())
        if sub is None:
            raise click.ClickException(f"no subscription for {email}")
        subs.unsubscribe(conn, sub, utcnow())
    click.echo(f"unsubscribed {sub.email}")


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


@main.group()
def index() -> None:
    """Search indexes: BM25 (keyword) and HNSW (meaning), kept beside the database in data_dir/index."""


@index.command("status")
def index_status() -> None:
    """How many papers are indexed by keyword and by meaning, and how many wait for their vector."""
    from paperboy.search.keyword import KeywordIndex
    from paperboy.serve import index_dir, load_embedder_or_none
    from paperboy.store import embeddings as embedding_store
    from paperboy.store.papers import count_papers

    settings = load_settings()
    engine = open_engine(settings)
    embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    with engine.connect() as conn:
        status: dict[str, Any] = {"papers": count_papers(conn)}
        if embedder is not None:
            status["model"] = embedder.model
            status["vectors"] = embedding_store.count(conn, embedder.model)
            status["pending"] = embedding_store.count_pending(conn, embedder.model)
    try:
        status["keyword_docs"] = KeywordIndex.open(index_dir(settings) / "keyword").count()
    except PaperboyError as exc:
        status["keyword_docs"] = None
        status["keyword_error"] = str(exc)
    vector_file = index_dir(settings) / "vectors.hnsw"
    status["vector_index_bytes"] = vector_file.stat().st_size if vector_file.exists() else 0
    click.echo(json.dumps(status))


@contextmanager
def progress_counter(label: str) -> Iterator[Any]:
    """A rich progress bar for (done, total) callbacks on a terminal; nothing elsewhere."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _update_indexes(
    settings: Settings,
    engine: Engine,
    *,
    embedder: Any = None,
    batch: int = 32,
    limit: int | None = None,
) -> None:
    """Open (rebuilding when unusable) and sync both indexes, embed pending papers, print a JSON summary."""
    from paperboy.search import indexer
    from paperboy.serve import load_embedder_or_none, open_search

    if embedder is None:
        embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    try:
        with progress_counter("keyword index") as progress:
            parts = open_search(settings, engine, embedder=embedder, progress=progress)
        embedded = 0
        if parts.vector is not None and embedder is not None:
            with progress_counter("embedding") as progress:
                embedded = indexer.embed_pending(
                    engine, embedder, parts.vector, utcnow, batch=batch, limit=limit, progress=progress
                )
        parts.keyword.close()
    except PaperboyError as exc:
        raise click.ClickException(str(exc)) from exc
    vectors = len(parts.vector) if parts.vector is not None else 0
    click.echo(json.dumps({"keyword_docs": parts.keyword.count(), "vectors": vectors, "embedded": embedded}))


@index.command("update")
@click.option("--limit", type=click.IntRange(1), help="Embed at most this many papers in this run.")
@click.option(
    "--batch", type=click.IntRange(1, 1024), default=32, show_default=True, help="Papers per batch."
)
def index_update(limit: int | None, batch: int) -> None:
    """Bring both indexes up to date: changed papers into the keyword index, missing vectors embedded.

    Resumable: vectors are stored in the database batch by batch, so an interrupted run continues where it
    stopped. Stop `paperboy serve` first or let its own indexer do this work (one writer at a time).
    """
    settings = load_settings()
    _update_indexes(settings, open_engine(settings), batch=batch, limit=limit)


@index.command("rebuild")
@click.option(
    "--keep-vectors",
    is_flag=True,
    help="Rebuild the index files from the stored vectors instead of embedding every paper again.",
)
@click.confirmation_option(prompt="Rebuild the search indexes (embedding every paper again can take hours)?")
def index_rebuild(keep_vectors: bool) -> None:
    """Delete both index files and rebuild them from the database; re-embeds every paper with the configured
    model unless --keep-vectors (needed after changing PAPERBOY_EMBEDDING_MODEL: vectors are per model)."""
    import shutil

    from paperboy.search import indexer
    from paperboy.serve import index_dir, load_embedder_or_none

    settings = load_settings()
    engine = open_engine(settings)
    embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    root = index_dir(settings)
    shutil.rmtree(root / "keyword", ignore_errors=True)
    for leftover in root.glob("vectors.hnsw*"):
        leftover.unlink()
    if embedder is not None and not keep_vectors:
        indexer.forget_vectors(engine, embedder.model)
    _update_indexes(settings, engine, embedder=embedder)


@main.command("search")
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True, help="How many results.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line: rank, id, title, score, authors, published, upvotes, url.",
)
@click.option("--from", "start", type=DATE, help="Only papers whose arXiv date is on or after this day.")
@click.option("--to", "end", type=DATE, help="Only papers whose arXiv date is on or before this day.")
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="CAT",
    help="Only papers in this arXiv category (cs.CL) or archive (cs); repeatable or comma-separated.",
)
def search(
    query: str,
    limit: int,
    as_json: bool,
    start: date | None,
    end: date | None,
    categories: tuple[str, ...],
) -> None:
    """Search the hub as /papers?q= does: words, an author's name or an arXiv id; best first.

    Prints rank, arXiv id, arXiv date, title and authors, or with --json one JSON object per line; the
    filters are the search page's. Exits 1 when nothing matches, 2 on bad input (a query that starts with
    "-" goes after "--").
    """
    from paperboy.errors import InvalidInput
    from paperboy.search.query import has_words
    from paperboy.web import listings

    try:
        q = listings.search_query(query, start=start, end=end, categories=list(categories), limit=limit)
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from exc
    if not has_words(q.text):
        raise click.UsageError(f"nothing to search for in {query!r}: give a word, a name or an arXiv id")
    settings = load_settings()
    engine = open_engine(settings)
    from paperboy.serve import load_embedder_or_none, open_search

    embedder = load_embedder_or_none(settings, lambda m: click.echo(m, err=True))
    try:
        try:  # bring the indexes up to date with the database first (new papers since the last sync)
            parts = open_search(settings, engine, embedder=embedder, sync=True)
        except PaperboyError:  # a running server holds the writer: read what its indexer has indexed
            parts = open_search(settings, engine, embedder=embedder, sync=False)
        parts.keyword.close()  # release the writer; searching goes on
        searcher = parts.searcher()
    except PaperboyError as exc:
        click.echo(f"search indexes unavailable ({exc}); scanning the database instead", err=True)
        searcher = None
    with engine.connect() as conn:
        results = listings.search(conn, searcher, q)
    if not results.hits:
        click.echo(f"no papers match {q.text!r}", err=True)
        sys.exit(1)
    base = settings.public_url.rstrip("/")
    if not as_json:
        click.echo(f"{results.total} matching · by {listings.modes_label(results.modes)}", err=True)
    for rank, hit in enumerate(results.hits, 1):
        paper = hit.item.paper
        published = paper.published_at.date().isoformat() if paper.published_at else None
        if as_json:
            record = {
                "rank": rank,
                "id": paper.arxiv_id,
                "title": paper.title,
                "score": round(hit.score, 6),
                "authors": list(paper.authors),
                "published": published,
                "upvotes": hit.item.upvotes,
                "url": f"{base}/papers/{paper.arxiv_id}",
            }
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
        title = " ".join(paper.title.split())
        click.echo(f"{rank:>3}  {paper.arxiv_id:<16} {published or '':<10}  {title}")
        click.echo(f"{'':>3}  {'':<16} {'':<10}  {authors}")
