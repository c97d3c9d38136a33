"""The `paperboy` command. An entry point: it reads Settings, builds engine and clients, passes them down.

This module holds the `main` group, the helpers every command shares, and `config`, `serve`, `db`; each
other group lives in a module of its own (members, digest, ingest, indexes) imported at the end.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import click
import sqlalchemy.exc
from sqlalchemy.engine import Engine

from paperboy import __version__, db
from paperboy.cli import explain
from paperboy.cli.arguments import CheckedGroup
from paperboy.config import Settings
from paperboy.errors import PaperboyError
from paperboy.ingest import IngestFailed, IngestResult, Progress
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
    except Exception as exc:  # pydantic's ValidationError lists every bad setting: one line for each
        raise click.ClickException(explain.settings_error(exc)) from exc


def open_engine(settings: Settings) -> Engine:
    """The migrated database, or a one-line ClickException saying what is wrong with it and what to do
    (a malformed URL, an unsupported database, a missing driver, a server that does not answer)."""
    url = settings.resolved_database_url
    problem = explain.check_database_url(url)
    if problem is not None:
        raise click.ClickException(problem)
    try:
        engine = db.make_engine(url, pool_size=db.pool_size_for(settings.threads))
        db.upgrade(engine)
    except (ImportError, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        raise click.ClickException(explain.database_error(url, exc)) from exc
    return engine


def arxiv_client(settings: Settings) -> PoliteClient:
    return PoliteClient(
        min_interval=settings.arxiv_min_interval, retries=settings.http_retries, timeout=settings.http_timeout
    )


def hf_client(settings: Settings) -> PoliteClient:
    return PoliteClient(retries=settings.http_retries, timeout=settings.http_timeout)


@contextmanager
def progress_bar(label: str) -> Iterator[Progress]:
    """A rich progress bar on a terminal (done/total, %, time left when the source knows its size); a few
    plain lines with the same figures elsewhere (cron, CI): see cli/progress.py."""
    from paperboy.cli.progress import ingest_progress

    with ingest_progress(label) as update:
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
    if result.demo_removed is not None and result.demo_removed.papers:
        click.echo(
            f"real data is here: removed the {len(result.demo_removed.papers)} bundled demo papers", err=True
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


@click.group(cls=CheckedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paperboy")
def main() -> None:
    """paperboy: a self-hosted Daily Papers hub.

    Settings come from PAPERBOY_* environment variables (or a TOML file named by PAPERBOY_CONFIG);
    `paperboy config` lists them. An argument holding a control character or bytes that are not UTF-8
    is refused before any command runs (exit status 2).
    """


@main.command()
def config() -> None:
    """Show every setting, its current value and what it does.

    Values are printed plainly (paths and text as they are, lists comma-separated); secrets show as ****,
    and URLs keep everything but their password (the SMTP host stays visible).
    """
    settings = load_settings()
    for name, field in Settings.model_fields.items():
        value = explain.plain_value(getattr(settings, name))
        if name == "database_url" and settings.database_url is None:
            value = f"(not set: {explain.safe_url(settings.resolved_database_url)})"
        click.echo(f"PAPERBOY_{name.upper()} = {value}")
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
        collect=settings.rate_collect,
        subscribe=settings.rate_subscribe,
    )


@main.command()
@click.option("--host", help="Address to listen on (default: PAPERBOY_HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: PAPERBOY_PORT or 8000).")
@click.option("--no-sync", is_flag=True, help="No network access: no start-up import, no scheduled ingest.")
@click.option(
    "--forwarded-allow-ips",
    metavar="ADDRESSES",
    help=(
        "Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto to believe, comma-separated (default: "
        "PAPERBOY_FORWARDED_ALLOW_IPS, else none: the connecting address is the client)."
    ),
)
def serve(host: str | None, port: int | None, no_sync: bool, forwarded_allow_ips: str | None) -> None:
    """Migrate the database, start the web app and print its URL.

    It takes its port before anything else: a port in use (or not allowed) ends it at once with a message
    saying so, and once it prints "paperboy is serving" the port accepts connections.

    On an empty database it first imports the last few days from Hugging Face; without a network (or with
    --no-sync) it loads the bundled demo papers instead, so the first page is never empty. While it runs it
    ingests Hugging Face hourly on weekdays and each PAPERBOY_ARXIV_CATEGORIES category after arXiv's
    daily announcement, in this process.

    Listening where others can reach it (not loopback) on a hub with no member yet, it prints a one-time
    setup code that the first sign-up, which makes the admin, must give.

    Behind a reverse proxy, name it with --forwarded-allow-ips and have it set X-Forwarded-For and
    X-Forwarded-Proto (docs/deploying.md); otherwise those headers are ignored, whoever sends them.
    """
    import logging

    import uvicorn

    from paperboy.community.submit import arxiv_fetcher
    from paperboy.serve import (
        build_digest_scheduler,
        build_scheduler,
        first_account_code,
        first_start,
        secret_key,
        serving_settings,
        start_comment_html,
    )
    from paperboy.web.app import create_app
    from paperboy.web.deps import Site

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {"host": host, "port": port, "forwarded_allow_ips": forwarded_allow_ips}
    if no_sync:
        overrides["sync"] = False
    # links in mail and feeds: PAPERBOY_BASE_URL, else the address this server listens on
    settings = serving_settings(load_settings(**overrides), echo=lambda m: click.echo(m, err=True))
    # The port first: a taken one fails now, not after the migrations, the first import and the model load.
    listening = bind_listener(settings.host, settings.port)
    engine = open_engine(settings)
    # The first-start import is a quick probe: an offline machine gets the demo set in seconds, not minutes.
    with PoliteClient(retries=1, backoff=0.5, timeout=min(10.0, settings.http_timeout)) as probe:
        first_start(engine, settings, utcnow, probe, echo=lambda m: click.echo(m, err=True))
    start_comment_html(engine)  # comments stored before their HTML was, or by an older renderer
    from paperboy.scheduler import StatusBoard

    board = StatusBoard(engine, utcnow)  # every loop's last success, last error and backlog (/readyz)
    scheduler = build_scheduler(engine, settings, utcnow, board) if settings.sync else None
    site = Site(name=settings.site_name, public_url=settings.public_url, trending_days=settings.trending_days)
    from paperboy.serve import IndexWorker, load_embedder_or_none, open_search

    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    parts = open_search(settings, engine, embedder=load_embedder_or_none(settings, echo), sync=False)
    worker = IndexWorker(engine, parts, utcnow, board=board)
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
        setup_code=first_account_code(engine, settings, echo),  # when others can reach an empty hub
        max_body_bytes=settings.max_body_bytes,
        metrics_token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        fetch_paper=arxiv_fetcher(
            settings.arxiv_api_url,
            min_interval=settings.arxiv_min_interval,
            timeout=settings.http_timeout,
            retries=settings.http_retries,
        ),
    )
    click.echo(
        f"paperboy is serving {explain.safe_url(settings.resolved_database_url)}"
        f" at http://{settings.host}:{settings.port}/papers"
    )
    app.state.background = board
    digests = (
        build_digest_scheduler(engine, settings, utcnow, parts.embedder, board) if settings.digests else None
    )
    if digests is not None:
        app.state.on_outbox = digests.wake  # a mail a request queued leaves at once, not at the next round
    worker.start()
    if scheduler is not None:
        scheduler.start()
    if digests is not None:
        digests.start()
    try:
        uvicorn.Server(uvicorn_config(app, settings)).run(sockets=[listening])
    finally:
        if scheduler is not None:
            scheduler.stop()
        if digests is not None:
            digests.stop()
        worker.stop()


def uvicorn_config(app: Any, settings: Settings) -> Any:
    """How uvicorn serves the app. Proxy headers (X-Forwarded-For, X-Forwarded-Proto) are believed only from
    PAPERBOY_FORWARDED_ALLOW_IPS: uvicorn's own default trusts 127.0.0.1 (or $FORWARDED_ALLOW_IPS), so behind
    a local proxy that does not set them anyone could name any address, and without one every visitor would
    share the proxy's address and its sign-in quota. Its httptools parser takes a request head of any size:
    `HeadLimitedHttpTools` stops at 64 KiB (431). uvicorn's other limits stay: 5 s for an idle keep-alive
    connection, 64 KiB of unread body buffered per connection before it stops reading (bodies themselves:
    PAPERBOY_MAX_BODY_BYTES, web/body_limit.py)."""
    import uvicorn

    from paperboy.web.head_limit import HeadLimitedHttpTools

    trusted = settings.forwarded_allow_ips
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        http=HeadLimitedHttpTools,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or [],
    )


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and listening (connections wait in its backlog until the app serves), or
    a one-line ClickException when the address is taken or not allowed. uvicorn serves on it."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:  # gaierror: a host name that does not resolve
        raise click.ClickException(explain.port_in_use(host, port, exc)) from exc
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: no wait after a restart
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise click.ClickException(explain.port_in_use(host, port, exc)) from exc
    sock.set_inheritable(True)
    return sock


@main.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create the database or migrate it to the newest schema."""
    settings = load_settings()
    open_engine(settings)
    click.echo(f"database at head: {settings.resolved_database_url}")


# The command groups live in their own modules; importing them registers their commands on `main`
# (in this order, which `paperboy --help` and docs/cli.md follow).
from paperboy.cli import members, digest, ingest, indexes, demo, roles, database  # noqa: E402, F401, I001
