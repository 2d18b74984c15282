"""`simrs demo`: the whole SOP on the built-in lab hospital."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from orchestrator import procedure, report, settings
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.cli.incident_cmd import RichUI, render_incident
from orchestrator.cli.lab_cmd import render_status
from orchestrator.lab import faults, lab, topology


@main.command("demo")
@click.option(
    "--fault",
    type=click.Choice(["db-crash", "disk-full", "client-net"]),
    default="db-crash",
    show_default=True,
    help="What breaks in the lab hospital before the SOP runs.",
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
def demo(ctx: click.Context, fault: str, lang: str) -> None:
    """The main job on the built-in hospital: break it, run the SOP, print the report.

    Lab up (if needed) -> the registration desk keeps registering visits -> a fault ->
    `incident open --reporter kasir-01` -> triage, server check, paper-mode notice, repair,
    verification from every PC, back-to-normal notice -> the evaluation report. Runs again
    cleanly: an earlier demo's leftovers are healed and closed first.
    """
    state = lab.load_state()
    if state is None or state.get("phase") != "ready":
        started = time.monotonic()
        lab.up(topology.LabSpec(), progress)
        progress(f"lab up in {time.monotonic() - started:.0f} s")
    elif state.get("faults"):
        progress("healing what an earlier run left broken: " + ", ".join(state["faults"]))
        faults.heal()
    ctx.obj["inventory"] = Path(lab.current()[1]["inventory"])
    engine = base.make_engine(ctx, RichUI())
    leftover = engine.active_incident()
    if leftover is not None:
        engine.close(leftover.id, "closed by `simrs demo`: left open by an earlier run", settings.operator())
    render_status(lab.status())
    if not lab.workload_running(lab.current()[0]):
        lab.workload_start(0.5)
        progress("the registration desk (pendaftaran-01) keeps registering visits through the service IP")
    host = "kasir-01" if fault == "client-net" else None
    faults.break_fault(fault, host, "dns")
    progress(
        f"[bold]lab fault: {fault}{' on ' + host if host else ''}[/] -- kasir-01 calls IT: "
        '"SIMRS tidak bisa dibuka"'
    )
    incident_id = engine.open("kasir-01", "kasir tidak bisa membuka SIMRS (demo)", 300, None)
    inc = engine.drive(incident_id)
    lab.workload_stop()
    summary = lab.workload_summary(lab.current()[0])
    progress(
        f"workload: {summary['committed']} visits committed, {summary['errors']} attempts failed "
        "during the outage (the desk used paper meanwhile)"
    )
    if inc.phase in (procedure.Phase.RESOLVED,):
        engine.close(incident_id, f"lab fault {fault} (simrs demo)", settings.operator())
    render_status(lab.status())
    out.print(
        report.render(incident_id, engine.journal.events(incident_id), engine.hospital.info, lang, "md")
    )
    render_incident(engine.incident(incident_id), as_json=False)
    sys.exit(procedure.exit_code(engine.incident(incident_id)))
