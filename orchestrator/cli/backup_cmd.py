"""`simrs backup ...`: backups on the external disk that a failover can trust (SOP step 5).

Runs the backup playbooks through the gateway and shows what ``orchestrator.backups`` makes of
their results. Refusals (disk missing, unmarked, read-only, full) are one line and exit code 2.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrator import backups, monthly
from orchestrator.ansible import PlayResult
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.errors import InputError, SimrsError
from orchestrator.i18n import _


def _tasks(kind: str, host: str, task: str) -> None:
    """Progress for runs that take a while: each step done (skipped ones are noise), and hosts
    that drop out."""
    if kind == "runner_on_ok" and task and not task.startswith("Validating arguments"):
        progress(f"[dim]  {escape(_('done: {task}', task=task))}[/]")
    elif kind == "runner_on_unreachable":
        progress(f"  [red]{escape(_('{host} unreachable', host=host))}[/] ({escape(task)})")
    elif kind == "running":  # the gateway's heartbeat every 15 s
        progress(f"[dim]  {escape(_('still running: {task}', task=task))}[/]")


def _run(ctx: click.Context, playbook: str, extravars: dict, quiet: bool) -> PlayResult:
    gateway = base.make_gateway(ctx)
    site = base.load_site(gateway)  # the whole inventory checked before the disk is touched
    ctx.obj["_journal"] = lambda: base.make_journal(gateway, site.raw)
    if extravars.get("backup_verify_test_restore"):
        problem = backups.restore_key_problem(site.raw, "the test restore")
        if problem:
            raise InputError(problem)
    return gateway.run(playbook, extravars=extravars, progress=None if quiet else _tasks)


def _record(ctx: click.Context, kind: str, facts: dict[str, Any]) -> None:
    """The run's outcome into the journal (stream BACKUPS) for the monthly report. The backup
    itself is done (or failed) already: a journal that cannot be written is said, not fatal."""
    make = ctx.obj.get("_journal")
    if make is None:  # refused before the playbook ran: nothing was attempted
        return
    try:
        make().append(monthly.BACKUPS, kind, facts)
    except SimrsError as exc:
        progress(f"[yellow]{_('not journaled')}[/] ({kind}): {escape(str(exc))}")


def _echo_json(view: object) -> None:
    click.echo(json.dumps(view, indent=2, sort_keys=True, default=str))


def _state_text(row: backups.SetRow) -> str:
    """backups.state_text in the operator's language (the reason is the role's, in English)."""
    if row.state == "ok":
        return "ok" + (" " + _("(test-restored)") if row.test_restored else "")
    word = {"BAD": _("BAD"), "incomplete": _("incomplete"), "not verified": _("not verified")}
    shown = word.get(row.state, row.state)
    return f"{shown}: {row.reason}" if row.state in ("BAD", "incomplete") and row.reason else shown


def _sets_table(rows: tuple[backups.SetRow, ...], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    columns = (_("set"), _("method"), _("created (UTC)"), _("age"), _("size"), _("verified"))
    for i, column in enumerate(columns):
        table.add_column(column, no_wrap=i < len(columns) - 1)
    for row in rows:
        state = _state_text(row)
        color = {"ok": "green", "BAD": "bold red", "incomplete": "red"}.get(row.state, "yellow")
        table.add_row(
            row.name,
            row.method,
            row.created_at.replace("T", " ").removesuffix("Z"),
            backups.human_age(row.age_seconds),
            backups.human_size(row.size),
            f"[{color}]{escape(state)}[/]",
        )
    return table


@main.group("backup")
def backup_group() -> None:
    """Backups of the SIMRS databases on the external disk: run, list, verify, ship-binlogs."""


@backup_group.command("run")
@click.option(
    "--method",
    type=click.Choice(backups.METHODS),
    default="dump",
    show_default=True,
    help="dump: mariadb-dump (logical); physical: mariadb-backup, prepared.",
)
@click.option(
    "--initialize-disk",
    is_flag=True,
    help="Mark a new external disk as the backup disk (writes .simrs-backup-disk once; never overwrites).",
)
@click.option("--json", "as_json", is_flag=True, help="The published result as JSON.")
@click.pass_context
@handle_errors
def backup_run(ctx: click.Context, method: str, initialize_disk: bool, as_json: bool) -> None:
    """Take a backup set onto the external disk, then apply the retention."""
    extravars = backups.run_extravars(method, initialize_disk)
    if not as_json:
        progress(_("taking a {method} backup onto the external disk", method=method))
    try:
        host, entry = backups.published(_run(ctx, backups.RUN, extravars, as_json))
    except SimrsError as exc:
        _record(ctx, "backup_run", {"ok": False, "method": method, "detail": str(exc)[:300]})
        raise
    _record(
        ctx,
        "backup_run",
        {
            "ok": True,
            "method": method,
            "set": entry.get("set"),
            "created_at": entry.get("created_at"),
            "detail": str(entry.get("detail") or "")[:300],
        },
    )
    if as_json:
        _echo_json({"host": host, **entry})
        return
    out.print(f"[green]ok[/] {escape(host)}: {escape(str(entry.get('detail', '')))}")
    if entry.get("path"):
        out.print(f"{_('set')}: {escape(str(entry['path']))}")
    for warning in entry.get("warnings") or []:
        out.print(f"[bold yellow]{_('WARNING:')}[/] {escape(str(warning))}")


@backup_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def backup_list(ctx: click.Context, as_json: bool) -> None:
    """The sets on the external disk: age, size, method, verified state (reads only)."""
    found = backups.listing(_run(ctx, backups.LIST, {}, quiet=True))
    if as_json:
        _echo_json(found.as_dict())
        return
    if not found.sets:
        none = _("no backup sets of {host} on {disk} yet", host=found.source_host, disk=found.mount_point)
        out.print(escape(none))
    else:
        out.print(
            _sets_table(
                found.sets,
                _(
                    "backups of {host} on {disk} ({free} free)",
                    host=found.source_host,
                    disk=found.mount_point,
                    free=backups.human_size(found.free_bytes),
                ),
            )
        )
    for item in found.in_progress:
        out.print(f"[yellow]{_('in progress:')}[/] {escape(item)}")
    logs = found.binlogs
    if logs.get("count"):
        said = _(
            "shipped binary logs: {count}, newest {newest} ({age} ago)",
            count=logs["count"],
            newest=logs.get("newest"),
            age=backups.human_age(logs.get("newest_age_seconds")),
        )
        out.print(escape(said))
    unverified = [s.name for s in found.sets if s.state == "not verified"]
    if unverified:
        said = _("not verified yet: `simrs backup verify` re-hashes {count} set(s)", count=len(unverified))
        out.print(f"[dim]{escape(said)}[/]")


@backup_group.command("verify")
@click.argument("set_name", metavar="[SET]", required=False)
@click.option(
    "--test-restore",
    is_flag=True,
    help="Also restore the newest good set (or SET) into scratch databases and compare row counts.",
)
@click.option(
    "--restore-host",
    help="Host for the test restore (it must have the disk mounted; default: the host that verifies).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def backup_verify(
    ctx: click.Context, set_name: str | None, test_restore: bool, restore_host: str | None, as_json: bool
) -> None:
    """Re-hash the sets against their manifests and record the verdict (exit 1 when any is bad)."""
    extravars = backups.verify_extravars(set_name, test_restore, restore_host)
    if not as_json:
        what = _("verifying {sets}", sets=set_name) if set_name else _("verifying every set")
        progress(what + (_(" with a test restore") if test_restore else ""))
    found = backups.verdict(_run(ctx, backups.VERIFY, extravars, as_json))
    _record(
        ctx,
        "backup_verify",
        {
            "ok": found.ok,
            "sets": [{"name": r.name, "created_at": r.created_at, "state": r.state} for r in found.sets],
        },
    )
    if as_json:
        _echo_json(found.as_dict())
        sys.exit(found.exit_code)
    if found.sets:
        out.print(_sets_table(found.sets, _("verify on {host}", host=found.host)))
    mark = "[green]ok[/]" if found.ok else f"[bold red]{_('NOT OK')}[/]"
    out.print(f"{mark} {escape(found.detail)}")
    if not found.ok and found.newest_good:
        out.print(escape(_("a restore would use {set}, the newest good set", set=found.newest_good)))
    sys.exit(found.exit_code)


@backup_group.command("ship-binlogs")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def backup_ship_binlogs(ctx: click.Context, as_json: bool) -> None:
    """Copy the closed binary logs to the external disk (point-in-time recovery)."""
    host, entry = backups.published(_run(ctx, backups.SHIP, {}, quiet=True))
    if as_json:
        _echo_json({"host": host, **entry})
        return
    color = "yellow" if entry.get("gap") else "green"
    out.print(f"[{color}]ok[/] {escape(host)}: {escape(str(entry.get('detail', '')))}")
