"""`simrs demo`: the whole SOP on the built-in lab hospital."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from orchestrator import backups, procedure, report, settings
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.cli.incident_cmd import RichUI, render_incident
from orchestrator.cli.lab_cmd import render_status
from orchestrator.engine import Engine
from orchestrator.i18n import _
from orchestrator.lab import faults, lab, topology

# Seconds of registrations before the binlogs are shipped, and after, before the power cut: the
# visits of the last few seconds are the ones a failover loses (the RPO the report shows).
BEFORE_SHIP_S = 15
AFTER_SHIP_S = 5


@main.command("demo")
@click.option(
    "--fault",
    type=click.Choice(["primary-off", "db-crash", "disk-full", "client-net"]),
    default="primary-off",
    show_default=True,
    help="What breaks in the lab hospital before the SOP runs (primary-off ends in a failover).",
)
@click.option(
    "--window",
    default="60s",
    show_default=True,
    help="The repair window before the failover (the hospital's is 60 minutes; short for the demo).",
)
@click.option(
    "--lang",
    type=click.Choice(["id", "en"]),
    default="id",
    show_default=True,
    help="Language of the printed report.",
)
@click.pass_context
@handle_errors
def demo(ctx: click.Context, fault: str, window: str, lang: str) -> None:
    """The main job on the built-in hospital: break it, run the SOP, print the report.

    A fresh lab -> the nightly backup on the external disk -> the registration desk registers
    visits -> binlogs shipped to the disk -> a fault (default: the main server loses power) ->
    `incident open --reporter kasir-01` with a short repair window and the auto failover policy ->
    triage, server check, paper-mode notice, repair attempts while the standby is pre-staged, the
    failover at the deadline, verification from every PC, the back-to-normal notice -> the service
    IP guard -> the evaluation report. Runs again cleanly: every run starts from a fresh lab.
    """
    window_s = settings.parse_duration(window)
    state = lab.load_state()
    if state is not None:
        progress(_("taking down the lab of an earlier run (every demo starts from a fresh hospital)"))
        lab.down(progress)
    started = time.monotonic()
    lab.up(topology.LabSpec(), progress)
    progress(_("lab up in {seconds} s", seconds=f"{time.monotonic() - started:.0f}"))
    ctx.obj["inventory"] = Path(lab.current()[1]["inventory"])
    engine = base.make_engine(ctx, RichUI())
    leftover = engine.active_incident()
    if leftover is not None:
        engine.close(leftover.id, "closed by `simrs demo`: left open by an earlier run", settings.operator())
    _maintenance(engine, backups.RUN, _("the nightly backup onto the external disk (SIMRS-BACKUP)"))
    render_status(lab.status())
    lab.workload_start(0.5)
    progress(_("the registration desk (pendaftaran-01) keeps registering visits through the service IP"))
    time.sleep(BEFORE_SHIP_S)
    _maintenance(engine, backups.SHIP, _("shipping the binary logs to the external disk (every 5 min)"))
    time.sleep(AFTER_SHIP_S)
    host = "kasir-01" if fault == "client-net" else None
    faults.break_fault(fault, host, "dns")
    outage_at = time.time()
    where = _(" on {host}", host=host) if host else ""
    said = _("lab fault: {fault}{where}", fault=fault, where=where)
    progress(f"[bold]{said}[/] -- " + _("kasir-01 calls IT:") + ' "SIMRS tidak bisa dibuka"')
    incident_id = engine.open("kasir-01", "kasir tidak bisa membuka SIMRS (demo)", window_s, "auto")
    inc = engine.drive(incident_id)
    if "ip_takeover" in inc.failover_done:
        facts, _done = engine.guard()
        progress(_("service IP guard: {detail}", detail=facts["detail"]))
    lab.workload_stop()
    _workload_summary(inc, outage_at)
    if inc.phase in (procedure.Phase.RESOLVED,):
        engine.close(incident_id, f"lab fault {fault} (simrs demo)", settings.operator())
    render_status(lab.status())
    out.print(
        report.render(incident_id, engine.journal.events(incident_id), engine.hospital.info, lang, "md")
    )
    render_incident(engine.incident(incident_id), as_json=False)
    sys.exit(procedure.exit_code(engine.incident(incident_id)))


def _maintenance(engine: Engine, playbook: str, what: str) -> None:
    """The hospital's routine jobs, as `simrs backup run` / `ship-binlogs` run them (same checks)."""
    progress(what)
    backups.published(engine.gateway.run(playbook, timeout=600))


def _workload_summary(inc: procedure.Incident, outage_at: float) -> None:
    """The desk's own record against what the failover restored: the visits lost (the RPO)."""
    spec = lab.current()[0]
    records = lab.workload_record(spec)
    committed = [r for r in records if "no_rawat" in r]
    before = [r for r in committed if float(r.get("t", 0)) < outage_at]
    progress(
        _(
            "workload: {committed} visits committed, {failed} attempts failed during the outage "
            "(the desk used paper meanwhile)",
            committed=len(committed),
            failed=len(records) - len(committed),
        )
    )
    restore = inc.restored
    last = (restore.get("last_visit") or {}).get("no_rawat")
    if last and before:
        lost = [r for r in before if r["no_rawat"] > last]
        last_t = next((float(r["t"]) for r in committed if r["no_rawat"] == last), None)
        true_loss = f"{outage_at - last_t:.1f} s" if last_t is not None else "?"
        progress(
            _(
                "before the power cut the desk's last visit was {desk_last}; the standby's data ends at "
                "{last}: {lost} visits to re-enter from paper; work lost: {loss} by the desk's own record "
                "(the report's RPO, {rpo} s, is an upper bound: to the first report of the outage)",
                desk_last=before[-1]["no_rawat"],
                last=last,
                lost=len(lost),
                loss=true_loss,
                rpo=restore.get("rpo_seconds"),
            )
        )
