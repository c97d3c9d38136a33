"""`paperboy demo …`: the bundled demo papers a first start loads when it has no data and no network."""

from __future__ import annotations

import click

from paperboy.cli import load_settings, main, open_engine, utcnow


@main.group()
def demo() -> None:
    """The bundled demo papers (loaded by a first `serve` with no data and no network)."""


@demo.command("remove")
def demo_remove() -> None:
    """Take the demo papers away now: off every list, and out of the hub unless a member voted on,
    commented on or claimed one (those stay, labelled "demo").

    The first successful real ingest does this by itself; the search indexes of a running server drop the
    deleted papers on their next sync.
    """
    from paperboy.ingest import remove_demo

    engine = open_engine(load_settings())
    removal = remove_demo(engine, utcnow)
    if removal is None:
        click.echo("no demo papers here: nothing to remove")
        return
    click.echo(f"removed {len(removal.papers)} demo papers ({removal.featurings} list entries)")
    if removal.kept:
        click.echo(
            f"kept {len(removal.kept)} that members voted on, discussed or claimed: {', '.join(removal.kept)}"
        )
