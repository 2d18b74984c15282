"""`simrs preflight`: is this hospital ready? One table, exit 2 naming each thing to fix. Thin:
the reading is playbooks/preflight.yml (under --check), the deciding orchestrator/preflight.py."""

from __future__ import annotations

import json
import shutil
import sys

import click
from rich.markup import escape
from rich.table import Table

from orchestrator import inventory, preflight, schedule
from orchestrator.ansible import InventoryError
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.errors import SimrsError
from orchestrator.i18n import _

STYLE = {preflight.OK: "green", preflight.WARN: "yellow", preflight.SKIP: "dim", preflight.FAIL: "bold red"}
TIMEOUT_S = 300


def _analyzer():  # None, or systemd-analyze calendar's error for a time
    if shutil.which("systemd-analyze") is None:
        return None
    return lambda expr: schedule.analyze_calendar(expr)[0]


def _verdict(ctx: click.Context, quiet: bool) -> tuple[preflight.Verdict, dict[str, int]]:
    """The verdict, and what the run would have changed per host (under --check: must be nothing)."""
    gateway = base.make_gateway(ctx)
    vault = str(gateway.vault_password_file) if gateway.vault_password_file else None
    try:
        raw = gateway.inventory()
    except InventoryError as exc:
        return preflight.unreadable_inventory(str(exc), vault), {}
    try:
        site = inventory.load(raw)
    except inventory.BadInventoryError as exc:
        return preflight.bad_inventory(exc.problems), {}
    primary_vars = site.hostvars.get(site.hospital.primary, {})
    try:
        times: dict[str, str] | str = schedule.resolve(primary_vars.get("simrs_schedule"))
    except SimrsError as exc:
        times = str(exc)
    hospital = site.hospital
    if not quiet:
        progress(_("asking {count} hosts (read only, under --check)", count=len(hospital.clients) + 2))
    result = gateway.run("preflight", check=True, timeout=TIMEOUT_S)
    findings = result.data  # simrs_preflight, the playbook's published findings
    rows = preflight.judge(findings, hospital.primary, hospital.standby, list(hospital.clients))
    if not result.complete or not findings:
        rows.append(
            preflight.Row(
                "run",
                "-",
                preflight.FAIL,
                _("the check did not end: {why}", why=result.explanation or result.status),
                _("see the run's log (SIMRS_DEBUG=1)"),
            )
        )
    hosts = len(site.groups.get("simrs_clients", [])) + 1 + (1 if hospital.standby else 0)
    verdict = preflight.verdict(
        preflight.inventory_rows(hosts, vault), preflight.schedule_rows(times, _analyzer()), rows
    )
    return verdict, {h: n for h, n in result.changed.items() if n}


@main.command("preflight")
@click.option("--json", "as_json", is_flag=True, help="Print the rows and the verdict as JSON.")
@click.pass_context
@handle_errors
def preflight_cmd(ctx: click.Context, as_json: bool) -> None:
    """Check that the hospital is ready, changing nothing on any host: the inventory (and its vault)
    reads, every host answers and runs tasks as root (sudo), the clocks agree, the standby's power
    driver answers, the service IP is on the primary and no one else answers for it, the drill IP
    is free, the external backup disk is mounted and is the hospital's, the schedule's times parse.

    Exit 0 when ready, 2 with each variable or host to fix named in the table."""
    verdict, changed = _verdict(ctx, as_json)
    if as_json:
        click.echo(json.dumps({**verdict.as_dict(), "changed": changed}, indent=2))
        sys.exit(verdict.exit_code)
    table = Table(show_lines=False)
    for column in (_("check"), _("host"), _("status"), _("detail"), _("fix")):
        table.add_column(column, overflow="fold")
    for row in verdict.rows:
        style = STYLE.get(row.status, "")
        table.add_row(row.check, row.host, f"[{style}]{row.status}[/]", escape(row.detail), escape(row.fix))
    out.print(table)
    if verdict.ok:
        out.print(f"[green]{_('ready')}[/]: " + _("nothing to fix (nothing was changed on any host)"))
    else:
        names = "; ".join(dict.fromkeys(r.fix or r.check for r in verdict.problems))
        said = _("{count} to fix: {names}", count=len(verdict.problems), names=names)
        out.print(f"[bold red]{_('not ready')}[/]: {escape(said)}")
    sys.exit(verdict.exit_code)
