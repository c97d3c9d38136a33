"""`paperboy digest …`: plan and send what is due, preview one, unsubscribe an address."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from functools import partial
from typing import Any

import click

from paperboy.cli import (  # the shared helpers and the `main` group these commands hang on
    load_settings,
    main,
    open_engine,
    utcnow,
)
from paperboy.config import Settings


@main.group()
def digest() -> None:
    """Email digests: plan and send what is due, preview one, unsubscribe an address."""


def _digest_parts(settings: Settings) -> tuple[Any, Any]:
    """The mail context and the Jinja environment digests render with. Refuses (exit 1, one line) when the
    settings do not say where the server is: every link in a mail would point to the wrong place."""
    from paperboy.serve import digest_context
    from paperboy.templating import make_environment

    if settings.named_url is None:
        raise click.ClickException(
            "cannot tell where the server is for the links in mail: set PAPERBOY_BASE_URL to its public "
            "address (e.g. PAPERBOY_BASE_URL=https://papers.example.org)"
        )
    ctx = digest_context(settings)
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
    help="Compose and render what is due and print what would be planned and mailed; write and send nothing.",
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
    period, mail = preview(engine, sub, when, ctx, env, embedder, now=utcnow())
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


@digest.command("unsuppress")
@click.argument("email")
def digest_unsuppress(email: str) -> None:
    """Let EMAIL get mail again after a hard bounce suppressed it (it must subscribe again to get digests)."""
    from paperboy.store import outbox

    engine = open_engine(load_settings())
    with engine.begin() as conn:
        if not outbox.unsuppress(conn, email.strip().lower()):
            raise click.ClickException(f"{email} is not suppressed")
    click.echo(f"{email.strip().lower()} may get mail again")
