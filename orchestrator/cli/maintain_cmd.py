"""`simrs maintain check | log | restart`: the SOP's preventive measures (step 5)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import click
from rich.markup import escape
from rich.table import Table

from orchestrator import ledger, maintenance, settings
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.i18n import N_, _, marked
from orchestrator.journal import Journal

STATE_STYLE = {"due": "bold red", "unknown": "yellow", "soon": "yellow", "ok": "green"}
STATE_WORD = {"due": N_("DUE"), "unknown": N_("UNKNOWN"), "soon": N_("soon"), "ok": "ok"}


def _local_now() -> dt.datetime:
    return dt.datetime.now()


# Tasks of maintain_check.yml and maintain_restart.yml that the operator sees begin.
MILESTONES = {
    "Check that Ansible reaches the server": N_("reading the servers"),
    "Refuse to restart a SIMRS that is not healthy now": N_("checking that the SIMRS is healthy now"),
    "Try the backup disk's lock": N_("checking that no backup is being written"),
    "Give the units the announced time to save their work": N_("announced; waiting the announced time"),
    "Shut the server down cleanly": N_("shutting the server down cleanly"),
    "Switch the server on and wait until it has booted": N_("switching it on, waiting for the boot"),
    "Start the SIMRS and wait until it is healthy": N_("starting the SIMRS"),
    "Publish the admin machine's verdict": N_("checked from the admin machine; now from every client PC"),
}


def _progress(kind: str, host: str, task: str) -> None:
    if kind == "playbook_on_task_start" and task in MILESTONES:
        progress(marked(MILESTONES[task]))
    elif kind == "runner_on_unreachable":
        progress(f"  [yellow]{escape(_('{host} does not answer', host=host))}[/] ({escape(task)})")
    elif kind == "running":  # the gateway's heartbeat every 15 s
        progress(f"[dim]  {escape(_('still running: {task}', task=task))}[/]")


def backfill_items(journal: Journal, units: dict[str, str], due_days: int) -> list[maintenance.Item]:
    """Paper records not yet typed in (the paper-mode ledger), one item per unit and incident. The
    journal keeps the English; the table shows it in the operator's language (``marked``)."""
    incidents = {i: journal.events(i) for i in journal.incidents()}
    return [
        maintenance.Item(
            "backfill",
            "",
            "due" if b.due else "soon",
            N_("{id}: {unit} has paper records not typed in, {days} days after the SIMRS came back").format(
                id=b.incident, unit=b.unit, days=f"{b.days:g}"
            ),
            (
                N_("type them in, then `simrs incident backfill {id} --unit {unit} --done`")
                if b.due
                else N_(
                    "type them in, then `simrs incident backfill {id} --unit {unit} --done` "
                    "(due after {days} days)"
                )
            ).format(id=b.incident, unit=b.unit, days=due_days),
        )
        for b in ledger.open_backfills(incidents, units, time.time(), due_days)
    ]


@main.group("maintain")
def maintain_group() -> None:
    """SOP step 5, prevention: what is due, the maintenance record, the planned restart."""


@maintain_group.command("check")
@click.option("--notify", is_flag=True, help="Tell the IT team (webhook, e-mail) when something is due.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def maintain_check(ctx: click.Context, notify: bool, as_json: bool) -> None:
    """What SOP 5 asks for now: server age (replace after about 5 years), the planned restart, the
    routine upkeep of the servers, the UPS and the generator (from `simrs maintain log`), disks and
    the UPS's own state. Journaled. Exit 0: nothing is due; 3: something needs a person."""
    gateway = base.make_gateway(ctx)
    site = base.load_site(gateway)
    raw = site.raw
    policy = maintenance.Policy.from_inventory(raw)
    journal = base.make_journal(gateway, raw)
    items, facts = maintenance.check(
        journal,
        gateway,
        policy,
        _local_now,
        settings.operator(),
        progress=None if as_json else _progress,
        notify=notify,
        extra=backfill_items(journal, site.hospital.units, policy.backfill_due_days),
    )
    if as_json:
        click.echo(json.dumps(facts, indent=2, sort_keys=True, default=str))
    else:
        table = Table(title=_("SOP 5: preventive maintenance"), show_lines=False)
        for column in (_("state"), _("what"), _("host"), _("detail"), _("to do")):
            table.add_column(column, overflow="fold")
        for item in items:
            table.add_row(
                f"[{STATE_STYLE[item.state]}]{marked(STATE_WORD[item.state])}[/]",
                item.key,
                item.host or _("(hospital)"),
                escape(marked(item.detail)),
                escape(marked(item.action)),
            )
        out.print(table)
        due = facts["due"]
        if due:
            out.print(_("{id}: {count} item(s) due", id=facts["id"], count=due))
        else:
            out.print(f"{facts['id']}: [green]{_('nothing is due')}[/]")
        if "notified" in facts:
            told = facts["notified"]
            channels = ", ".join(
                f"{n} {'ok' if c.get('ok') else _('FAILED')}" for n, c in told["channels"].items()
            )
            out.print(_("IT team told: {channels}", channels=channels or _("no webhook or e-mail channel")))
    sys.exit(maintenance.check_exit_code(items))


@maintain_group.command("log")
@click.argument("what", type=click.Choice(sorted(maintenance.ROUTINES)))
@click.option(
    "--host", "hosts", multiple=True, help="For `log server`: which server (default: every server)."
)
@click.option("--date", "on", help="When it was done, YYYY-MM-DD (default: today).")
@click.option("--note", default="", help="What was done or found (goes into the journal).")
@click.pass_context
@handle_errors
def maintain_log(ctx: click.Context, what: str, hosts: tuple[str, ...], on: str | None, note: str) -> None:
    """Record routine maintenance that was done: server (cleaning, fans, disks), ups (battery test),
    genset (the generator's test run). `simrs maintain check` counts the next one from it."""
    gateway = base.make_gateway(ctx)
    raw = base.load_site(gateway).raw
    policy = maintenance.Policy.from_inventory(raw)
    today = _local_now().date()
    day = maintenance.parse_date(on, "--date") if on else today
    events = maintenance.record_done(
        base.make_journal(gateway, raw), policy, what, list(hosts), day, today, note, settings.operator()
    )
    for event in events:
        where = _(" on {host}", host=event.data["host"]) if event.data["host"] else ""
        said = _(
            "recorded: {what}{where}, done {on} (by {by})",
            what=what,
            where=where,
            on=event.data["on"],
            by=event.data["by"],
        )
        out.print(escape(said))


@maintain_group.command("restart")
@click.option("--now", "now_ok", is_flag=True, help="Restart outside the quiet times (the units agreed).")
@click.option("--if-due", is_flag=True, help="Only when the server has run restart_every_days or longer.")
@click.option("--announce", "announce", type=int, help="Minutes between the notice and the restart.")
@click.option(
    "--incident-on-failure",
    is_flag=True,
    help="If the SIMRS does not come back, open an incident and run the SOP (for unattended runs).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def maintain_restart(
    ctx: click.Context,
    now_ok: bool,
    if_due: bool,
    announce: int | None,
    incident_on_failure: bool,
    as_json: bool,
) -> None:
    """SOP 5.2: restart the SIMRS server at a quiet time (simrs_maintenance: quiet_hours,
    quiet_weekdays, holidays), announced to the units, then check it from the admin machine and every
    client PC. Refused (exit 2, nothing changed) outside the quiet times without --now, while an
    incident is open or a drill runs, when the SIMRS is not healthy now, or while a backup writes."""
    gateway = base.make_gateway(ctx)
    raw = base.load_site(gateway).raw
    policy = maintenance.Policy.from_inventory(raw)
    journal = base.make_journal(gateway, raw)
    if if_due:
        up = maintenance.primary_up_seconds(gateway, policy)
        if not maintenance.restart_due(policy, up):
            said = _(
                "not due: {host} has run {days} days (restart every {every} days); nothing was changed",
                host=policy.primary,
                days=f"{up / 86400:.1f}",
                every=policy.restart_every_days,
            )
            out.print(escape(said))
            return
    restart_id, facts = maintenance.restart(
        journal,
        gateway,
        policy,
        local_now=_local_now,
        now_ok=now_ok,
        announce_minutes=announce,
        by=settings.operator(),
        progress=None if as_json else _progress,
    )
    if as_json:
        click.echo(json.dumps({"id": restart_id, **facts}, indent=2, sort_keys=True, default=str))
    else:
        mark = "[green]ok[/]" if facts["ok"] else f"[red]{_('FAILED')}[/]"
        out.print(f"{restart_id} {mark}: {escape(facts['detail'])}")
    if not facts["ok"] and facts["restarted"] and incident_on_failure:
        engine = base.make_engine(ctx)
        note = f"planned restart {restart_id} did not bring the SIMRS back: {facts['detail']}"
        incident_id = engine.open(engine.hospital.clients[0], note[:500])
        progress(_("opened {id}: the SOP runs from triage", id=incident_id))
        inc = engine.drive(incident_id)
        out.print(f"{incident_id}: {escape(inc.phase)}")
    sys.exit(maintenance.restart_exit_code(facts))
