"""Command-line values no command can take are refused before it runs: a usage error naming the argument or
option (exit status 2), never a traceback from deep inside.

Python hands a command line's undecodable bytes over as lone surrogates (`$'\\xff'`), which cannot be
written to the database, a log or the terminal; control characters (`$'a\\x01b'`) are never meant; an
integer beyond 64 bits fits no column. `paperboy.textcheck` judges them, as it does for HTTP requests. A
NUL cannot reach a command at all (the operating system ends an argument at it). Paths are left alone: a
file name may be any bytes, and Python opens it as it was given.
"""

from __future__ import annotations

from typing import Any

import click

from paperboy.errors import InvalidInput
from paperboy.textcheck import check_int, check_text


def check_params(ctx: click.Context) -> None:
    """click.BadParameter for the first parsed value of `ctx` that `textcheck` refuses."""
    for param in ctx.command.params:
        if isinstance(param.type, (click.Path, click.File)):
            continue
        value = ctx.params.get(param.name or "")
        values = value if isinstance(value, (tuple, list)) else (value,)
        try:
            for item in values:
                _check(param.name or "value", item)
        except InvalidInput as exc:
            message = str(exc).partition(": ")[2] or str(exc)
            raise click.BadParameter(message, ctx=ctx, param=param) from exc


def _check(name: str, value: Any) -> None:
    if isinstance(value, str):
        check_text(name, value)
    elif isinstance(value, int) and not isinstance(value, bool):
        check_int(name, value)


class CheckedCommand(click.Command):
    """A command whose parsed values go through `check_params` before it runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        check_params(ctx)
        return rest


class CheckedGroup(click.Group):
    """A group whose own values, and those of every command and group made under it, are checked."""

    command_class = CheckedCommand
    group_class = type  # groups made with @group.group() are CheckedGroups too

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        check_params(ctx)
        return rest
