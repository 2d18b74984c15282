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
from orchestrator.i18n import _, marked


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
            raise InputError(
                _("not a terminal: confirm the failback with --yes (or look first with --dry-run)")
            )
        click.confirm(
            _(
                "Seed {primary} from {standby} and move the SIMRS back to it?",
                primary=engine.hospital.primary,
                standby=engine.hospital.standby,
            ),
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
        mark = f"[green]{_('ok')}[/]" if facts["ok"] else f"[red]{_('FAILED')}[/]"
        out.print(f"{mark} {marked(facts['detail'])} ({_('journaled in {id}', id=incident_id)})")
        render_comparison(facts.get("comparison") or {})
    if dry_run:
        sys.exit(0 if facts["ready"] else 1)
    sys.exit(0 if facts["ok"] else 1)


def render_comparison(cmp: dict) -> None:
    if not cmp:
        return
    mark = f"[green]{_('equal')}[/]" if cmp.get("same") else f"[red]{_('DIFFERENT')}[/]"
    out.print(
        "  "
        + _(
            "comparison: {tables} tables, {rows} rows on the standby",
            tables=cmp.get("tables"),
            rows=cmp.get("rows"),
        )
        + f": {mark}"
    )
    for d in cmp.get("differ") or []:
        out.print(
            "    "
            + _(
                "{table}: standby {standby}, primary {primary}",
                table=d["table"],
                standby=d["standby"],
                primary=d["primary"],
            )
        )


def render_failback_plan(plan: dict) -> None:
    if "seed" not in plan:  # the service IP is back on the primary already
        left = ", ".join(plan["steps"]) or _("nothing")
        out.print(f"[bold]failback[/]: {_('the cutover is done; left: {left}', left=left)}")
        return
    out.print(
        f"[bold]{_('failback plan')}[/]: {plan['standby']} -> {plan['primary']} "
        f"({_('incident {id}', id=plan['incident'])})"
    )
    seed = plan["seed"]
    if seed["done"]:
        lag = plan["lag"]
        out.print(
            "  "
            + _(
                "seed: done; replicating: {replicating}, {behind} s behind, {differ} table(s) still differ",
                replicating=lag["replicating"],
                behind=lag.get("seconds_behind"),
                differ=lag.get("differing_tables"),
            )
        )
    else:
        out.print("  " + _("seed: {how}", how=marked(seed["how"])))
        out.print(
            "        "
            + _(
                "from {source} at GTID {gtid}: {tables} tables, {rows} rows",
                source=seed["source"],
                gtid=seed["standby_gtid"],
                tables=seed["tables"],
                rows=seed["rows"],
            )
        )
    out.print(
        "  "
        + _("steps: {steps}", steps=", ".join(plan["steps"]))
        + (" (" + _("done: {steps}", steps=", ".join(plan["done"])) + ")" if plan["done"] else "")
    )
    out.print("  " + _("expected freeze: {freeze}", freeze=marked(str(plan["expected_freeze"]))))
    out.print("  " + _("compared: {what}", what=marked(str(plan["compared"]))))
    newer = plan.get("primary_newer")
    if newer is not None:
        out.print(
            "  "
            + _(
                "visits on the main server after {after} (the standby never had them): {count}",
                after=newer["after"],
                count=newer["count"],
            )
        )
    if plan["refusal"]:
        out.print(f"[red]{_('not ready')}[/]: {marked(plan['refusal'])}")
    else:
        out.print(f"[green]{_('ready to fail back')}[/]")
