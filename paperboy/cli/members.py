"""`paperboy user …` and `paperboy token …`: members and their API tokens, from a shell."""

from __future__ import annotations

import sys
from typing import Any

import click

from paperboy.cli import (  # the shared helpers and the `main` group these commands hang on
    load_settings,
    main,
    open_engine,
    utcnow,
)


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


@user.command("password")
@click.argument("name")
def user_password(name: str) -> None:
    """Set a new password for member NAME (one who forgot theirs), read from standard input; every session
    of theirs ends. The same checks as sign-up: at least 8 characters, not easy to guess.

    \b
    echo "$PASSWORD" | paperboy user password ada
    """
    from paperboy import accounts
    from paperboy.errors import InvalidInput
    from paperboy.store import users as store

    engine = open_engine(load_settings())
    password = _read_password()
    with engine.begin() as conn:
        found = _member(conn, name)
        try:
            accounts.check_password(password, found.username, email=found.email)
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from exc
        store.set_password_hash(conn, found.id, accounts.new_hasher().hash(password))
        ended = store.delete_sessions(conn, found.id)
    click.echo(f"new password for {found.username}; {ended} session(s) ended")


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
