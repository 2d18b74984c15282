"""`simrs drill`: the DR drill on the cold standby (a test address, never the service IP)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from orchestrator import backups, drill, settings
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.errors import SimrsError
from orchestrator.i18n import N_, _, marked

PHASE_WORDS = {
    "power_on": N_("switching the standby on"),
    "restore": N_("restoring the newest good backup"),
    "start": N_("starting the SIMRS on the standby"),
    "address": N_("adding the test address"),
    "verify": N_("checking the application on the test address"),
    "power_off": N_("removing the test address, stopping the SIMRS, switching the standby off"),
}


def _phases(kind: str, host: str, task: str) -> None:
    """Progress: one line as each phase begins, and hosts that drop out."""
    if kind == "playbook_on_task_start" and task in drill.PHASE_TASKS:
        progress(marked(PHASE_WORDS[drill.PHASE_TASKS[task]]))
    elif kind == "runner_on_unreachable":
        progress(f"  [red]{escape(_('{host} unreachable', host=host))}[/] ({escape(task)})")
    elif kind == "running":  # the gateway's heartbeat every 15 s
        progress(f"[dim]  {escape(_('still running: {task}', task=task))}[/]")


@main.command("drill")
@click.option("--json", "as_json", is_flag=True, help="Print the drill's journal record as JSON.")
@click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the drill report here."
)
@click.pass_context
@handle_errors
def drill_run(ctx: click.Context, as_json: bool, lang: str, output: Path | None) -> None:
    """A failover test the users never see: power the cold standby on, restore the newest good backup,
    start the SIMRS on a TEST address (simrs_drill_ip, never the service IP), check it from the admin
    machine, then switch the standby off again. Measures RTO by phase and RPO; journaled.

    Refused (exit 2, nothing changed) while an incident is open, when the standby is on or the primary
    does not serve the SIMRS, or when simrs_drill_ip is missing or not a free address."""
    gateway = base.make_gateway(ctx)
    site = base.load_site(gateway)
    hospital = site.hospital
    setup = drill.DrillSettings.from_inventory(site.raw)
    problem = backups.restore_key_problem(site.raw, "the drill (it restores the newest backup)")
    if problem:
        raise SimrsError(problem, exit_code=2)
    journal = base.make_journal(gateway, site.raw)
    if not as_json:
        said = _(
            "drill on {standby}, test address {ip} (users stay on {primary})",
            standby=setup.standby,
            ip=setup.drill_ip,
            primary=setup.primary,
        )
        progress(escape(said))
    drill_id, facts = drill.run(
        journal, gateway, setup, by=settings.operator(), progress=None if as_json else _phases
    )
    text = drill.render_report(drill_id, journal.events(drill_id), hospital.info, lang)
    if output is not None:
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(text)
        tmp.replace(output)  # never a half-written report under the final name
    if as_json:
        click.echo(json.dumps({"id": drill_id, **facts}, indent=2, sort_keys=True, default=str))
    elif output is None:
        out.print(text, markup=False, highlight=False)
    else:
        mark = "[green]ok[/]" if facts["ok"] else f"[red]{_('NOT OK')}[/]"
        out.print(f"{drill_id} {mark}: {escape(facts['detail'])}")
        progress(escape(_("drill report written to {output}", output=output)))
    sys.exit(drill.exit_code(facts))
