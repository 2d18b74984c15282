"""`simrs failover` (SOP 4b on its own), `simrs guard` (never two owners of the service IP),
`simrs failback` (back to the repaired main server)."""

from __future__ import annotations

import json
import sys

import click

from orchestrator import procedure, settings
from orchestrator.cli import base
from orchestrator.cli.base import err, handle_errors, main, out
from orchestrator.cli.incident_cmd import RichUI, render_incident
from orchestrator.errors import InputError
from orchestrator.i18n import _


@main.command("failover")
@click.option("--reason", default="", help="Why the SIMRS moves to the standby (goes into the report).")
@click.option("--dry-run", is_flag=True, help="Print the plan and check what can be checked; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scheduled or scripted use).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def failover(ctx: click.Context, reason: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """SOP 4b on its own: fence the main server, power on the standby, restore the newest good backup,
    give the standby the service IP, start and verify the SIMRS, tell the users.

    Inside an open incident use `simrs incident failover-now` / `approve` instead: this command is
    for when a person has already decided that the main server is lost."""
    engine = base.make_engine(
        ctx, RichUI(), restores="" if dry_run else "the failover (it restores the newest backup)"
    )
    if dry_run:
        plan = engine.failover_plan()
        if as_json:
            click.echo(json.dumps(plan, indent=2, default=str))
        else:
            render_plan(plan)
        sys.exit(0 if plan["ready"] else 1)
    if not reason.strip():
        raise InputError(_("say why the SIMRS moves to the standby: --reason TEXT (it goes into the report)"))
    h = engine.hospital
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(
                _("not a terminal: confirm the failover with --yes (or look first with --dry-run)")
            )
        click.confirm(
            _(
                "Fence {primary} (it is switched off) and move the SIMRS to {standby}?",
                primary=h.primary,
                standby=h.standby,
            ),
            abort=True,
            err=True,
        )
    incident_id = engine.open_failover(settings.operator(), reason)
    err.print(
        _("opened {id}: failover to {standby} ({reason})", id=incident_id, standby=h.standby, reason=reason)
    )
    inc = engine.drive(incident_id)
    render_incident(inc, as_json)
    sys.exit(procedure.exit_code(inc))


def render_plan(plan: dict) -> None:
    out.print(
        f"[bold]{_('failover plan')}[/]: {plan['primary']} -> {plan['standby']}, "
        + _("verified from the admin machine and {count} PCs", count=len(plan["clients"]))
    )
    for i, step in enumerate(plan["steps"], 1):
        out.print(f"  {i}. {step['step']:12} {step['what']}")
        if step.get("check"):
            mark = "[green]ok[/]" if step["check"]["ok"] else f"[red]{_('PROBLEM')}[/]"
            out.print(f"     {mark} {step['check']['detail']}")
    backup = plan.get("backup")
    if backup:
        out.print(
            _(
                "backup to restore: {set} of {created} ({age} old",
                set=backup.get("set"),
                created=backup.get("created_at"),
                age=backup.get("age"),
            )
            + (_(", as {host} sees the disk)", host=backup["seen_from"]) if backup.get("seen_from") else ")")
            + (f" [yellow]{_('newer bad sets skipped')}[/]" if backup.get("skipped_bad") else "")
        )
    for note in plan["notes"]:
        out.print(f"[yellow]{_('note')}[/]: {note}")
    out.print(
        f"[green]{_('ready to fail over')}[/]"
        if plan["ready"]
        else f"[red]{_('not ready: see the problems above')}[/]"
    )


@main.command("guard")
@click.option(
    "--owner",
    help="The server that must hold the service IP (default: the standby while the current incident's "
    "failover is in force, else the main server).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def guard(ctx: click.Context, owner: str | None, as_json: bool) -> None:
    """Never two owners of the service IP: see who answers for it (ARP from every PC), then take it from a
    server that must not hold it, only while its owner holds it and serves. The owner: --owner, else
    the standby when the current incident's failover took over, else the main server; a server that
    serves is never stripped without one of those. Refuses while a failover runs (exit 2)."""
    engine = base.make_engine(ctx)
    facts, incident_id = engine.guard(owner)
    if as_json:
        click.echo(json.dumps({"incident": incident_id, **facts}, indent=2, default=str))
    else:
        mark = "[green]ok[/]" if facts["ok"] else f"[red]{_('PROBLEM')}[/]"
        out.print(f"{mark} {facts['detail']}")
        for host, s in sorted(facts["servers"].items()):
            state = (
                _("silent")
                if not s.get("answers")
                else _(
                    "holds the service IP: {holds}, SIMRS running: {running}",
                    holds=_("yes") if s.get("holds_service_ip") else _("no"),
                    running=_("yes") if s.get("simrs_running") else _("no"),
                )
            )
            done = "; " + _("done: {task}", task=", ".join(s["done"])) if s.get("done") else ""
            out.print(f"  {host:16} {state}{done}")
        for note in facts.get("notes", []):
            out.print(f"[yellow]{_('note')}[/]: {note}")
        if incident_id:
            out.print(_("journaled in {id}", id=incident_id))
    sys.exit(0 if facts["ok"] else 1)


@main.command("failback")
@click.option(
    "--dry-run", is_flag=True, help="Print the plan (seed, lag, freeze, what is compared); change nothing."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripted use).")
@click.option(
    "--discard-primary-data",
    is_flag=True,
    help="Go on although the main server holds visits the standby never had (they are overwritten).",
)
@click.option(
    "--data-synced",
    is_flag=True,
    help="The old path: move only the service and its IP; you confirm you copied the standby's data by hand.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def failback(
    ctx: click.Context, dry_run: bool, yes: bool, discard_primary_data: bool, data_synced: bool, as_json: bool
) -> None:
    """Back to the repaired main server after a failover, with nothing lost: the main server is
    seeded from the standby while the standby serves and replicates from it; then, in a short write
    freeze, it catches up, both are compared table by table and the service IP moves; the standby
    returns to cold. Journaled step by step in the failover's incident; run again to resume."""
    engine = base.make_engine(ctx)
    if not (dry_run or yes or data_synced):
        if not sys.stdin.isatty():
            raise InputError("not a terminal: confirm the failback with --yes (or look first with --dry-run)")
        click.confirm(
            f"Seed {engine.hospital.primary} from {engine.hospital.standby} and move the SIMRS back to it?",
            abort=True,
            err=True,
        )
    facts, incident_id = engine.failback(
        settings.operator(), data_synced, dry_run=dry_run, discard_primary_data=discard_primary_data
    )
    if as_json:
        click.echo(json.dumps({"incident": incident_id, **facts}, indent=2, default=str))
    elif dry_run:
        render_failback_plan(facts)
    else:
        mark = "[green]ok[/]" if facts["ok"] else "[red]FAILED[/]"
        out.print(f"{mark} {facts['detail']} (journaled in {incident_id})")
        render_comparison(facts.get("comparison") or {})
    if dry_run:
        sys.exit(0 if facts["ready"] else 1)
    sys.exit(0 if facts["ok"] else 1)


def render_comparison(cmp: dict) -> None:
    if not cmp:
        return
    mark = "[green]equal[/]" if cmp.get("same") else "[red]DIFFERENT[/]"
    out.print(f"  comparison: {cmp.get('tables')} tables, {cmp.get('rows')} rows on the standby: {mark}")
    for d in cmp.get("differ") or []:
        out.print(f"    {d['table']}: standby {d['standby']}, primary {d['primary']}")


def render_failback_plan(plan: dict) -> None:
    if "seed" not in plan:  # the service IP is back on the primary already
        out.print(f"[bold]failback[/]: the cutover is done; left: {', '.join(plan['steps']) or 'nothing'}")
        return
    out.print(f"[bold]failback plan[/]: {plan['standby']} -> {plan['primary']} (incident {plan['incident']})")
    seed = plan["seed"]
    if seed["done"]:
        lag = plan["lag"]
        out.print(
            f"  seed: done; replicating: {lag['replicating']}, {lag.get('seconds_behind')} s behind, "
            f"{lag.get('differing_tables')} table(s) still differ"
        )
    else:
        out.print(f"  seed: {seed['how']}")
        out.print(
            f"        from {seed['source']} at GTID {seed['standby_gtid']}: "
            f"{seed['tables']} tables, {seed['rows']} rows"
        )
    out.print(
        f"  steps: {', '.join(plan['steps'])}"
        + (f" (done: {', '.join(plan['done'])})" if plan["done"] else "")
    )
    out.print(f"  expected freeze: {plan['expected_freeze']}")
    out.print(f"  compared: {plan['compared']}")
    newer = plan.get("primary_newer")
    if newer is not None:
        out.print(
            f"  visits on the main server after {newer['after']} "
            f"(the standby never had them): {newer['count']}"
        )
    if plan["refusal"]:
        out.print(f"[red]not ready[/]: {plan['refusal']}")
    else:
        out.print("[green]ready to fail back[/]")
