"""`simrs report [ID]` (an incident's evaluation report) and `simrs report monthly --month YYYY-MM`
(the month's availability): written from the journal only, md, html or an A4 pdf."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path
from typing import Any

import click

from orchestrator import maintenance, monthly, monthly_render, pdf, report
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, progress
from orchestrator.cli.incident_cmd import _pick
from orchestrator.errors import SimrsError
from orchestrator.i18n import _
from orchestrator.journal import Journal

FORMATS = ("md", "html", "pdf")


class DefaultIncident(click.Group):
    """`simrs report [ID] ...` stays what it was: anything that is not a subcommand is the
    incident's report (`simrs report incident [ID]`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not any(a in ("-h", "--help") for a in args[:1]) and (not args or args[0] not in self.commands):
            args = ["incident", *args]
        return super().parse_args(ctx, args)


def write(text: str | bytes, output: Path | None, fmt: str) -> None:
    """To the file (whole or not at all: written beside it, then renamed) or to stdout."""
    if output is None:
        if fmt == "pdf":
            raise SimrsError(_("--format pdf needs -o FILE (a PDF is not for the terminal)"), exit_code=2)
        click.echo(text, nl=False)
        return
    if output.parent and not output.parent.is_dir():
        raise SimrsError(
            _("-o {output}: the folder {folder} does not exist", output=output, folder=output.parent),
            exit_code=2,
        )
    tmp = output.with_name(f".{output.name}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text)
    tmp.replace(output)
    progress(_("report written to {output}", output=output))


def _as(fmt: str, html: str | None, text: str) -> str | bytes:
    return pdf.html_to_pdf(html) if fmt == "pdf" and html is not None else text


@main.group("report", cls=DefaultIncident, invoke_without_command=False)
def report_group() -> None:
    """Reports from the journal: `simrs report [ID]` (an incident), `simrs report monthly`."""


@report_group.command("incident")
@click.argument("incident_id", required=False)
@click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
@handle_errors
def report_cmd(ctx: click.Context, incident_id: str | None, lang: str, fmt: str, output: Path | None) -> None:
    """The evaluation report of an incident, written from its journal (SOP's own report shape)."""
    if fmt == "pdf" and output is None:
        raise SimrsError(_("--format pdf needs -o FILE (a PDF is not for the terminal)"), exit_code=2)
    engine = base.make_engine(ctx)
    chosen = _pick(engine, incident_id)
    events = engine.journal.events(chosen)
    args = (chosen, events, engine.hospital.info, lang)
    text = report.render(*args, "html" if fmt == "pdf" else fmt, engine.hospital.units)
    write(_as(fmt, text, text), output, fmt)


def gather(journal: Journal) -> dict[str, Any]:
    """The journal's records by stream, as orchestrator.monthly.summarize takes them."""
    upkeep = journal.events(maintenance.STREAM)
    restart_ids = [str(e.data["id"]) for e in upkeep if e.kind == "restart_id"]
    return {
        "incidents": {i: journal.events(i) for i in journal.incidents()},
        "drills": {d: journal.events(d) for d in journal.drills()},
        "restarts": {r: journal.events(r) for r in dict.fromkeys(restart_ids)},
        "maintenance": upkeep,
        "backups": journal.events(monthly.BACKUPS),
    }


@report_group.command("monthly")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month, e.g. 2026-11.")
@click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
@handle_errors
def report_monthly(ctx: click.Context, month: str, lang: str, fmt: str, output: Path | None) -> None:
    """The month's availability: incidents, downtime, MTTR, failovers, drills, backups, upkeep."""
    year, number = monthly.parse_month(month, dt.date.today())  # bad input: exit 2, nothing read
    if fmt == "pdf" and output is None:
        raise SimrsError(_("--format pdf needs -o FILE (a PDF is not for the terminal)"), exit_code=2)
    engine = base.make_engine(ctx)
    in_service: dict[str, dt.date | None] = {}
    life = 5.0
    with contextlib.suppress(maintenance.MaintenanceError):
        policy = maintenance.Policy.from_inventory(engine.gateway.inventory())
        in_service, life = dict(policy.in_service), policy.service_life_years
    numbers = monthly.summarize(
        year,
        number,
        **gather(engine.journal),
        now=dt.datetime.now().timestamp(),
        units=engine.hospital.units,
        in_service=in_service,
        life_years=life,
    )
    html = monthly_render.render(numbers, engine.hospital.info, lang, "html") if fmt != "md" else None
    text = html if html is not None else monthly_render.render(numbers, engine.hospital.info, lang, "md")
    write(_as(fmt, html, text), output, fmt)
