"""`simrs --version`: simrs, the collection it runs (and where it is) and ansible-core."""

from __future__ import annotations

import click

from orchestrator import collection


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, version in collection.versions().items():
        click.echo(f"{name} {version}")
    ctx.exit()


version_option = click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the versions of simrs, the collection simrs.downtime and ansible-core, and exit.",
)
