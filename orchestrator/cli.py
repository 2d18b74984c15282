"""The `simrs` command: options, rendering, exit codes. It decides nothing itself.

Exit codes: 0 done, 1 failed, 2 bad input (what to fix is printed), 3 waiting for an operator.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from orchestrator import procedure, report, settings
from orchestrator.ansible import AnsibleGateway, InventoryError
from orchestrator.engine import Engine, Hospital
from orchestrator.errors import SimrsError
from orchestrator.journal import Journal, JournalError
from orchestrator.lab import faults, images, lab, podman, topology
from orchestrator.procedure import Action, Incident

# Not a terminal (a log, CI, a pipe): wide enough that host names and commands are never cut.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)

EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 1, 2, 3


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the orchestrator's errors into one clear line and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SimrsError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            sys.exit(exc.exit_code)
        except InventoryError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            err.print(
                "[yellow]interrupted[/]: every finished step is in the journal; "
                "`simrs incident resume` (or the same lab command) continues from there"
            )
            sys.exit(130)
        except Exception as exc:  # the last line of defence: one clear line, the details on request
            if os.environ.get("SIMRS_DEBUG"):
                raise
            err.print(f"[bold red]failed:[/] {type(exc).__name__}: {exc}")
            err.print(
                "every finished step is in the journal; fix the cause and run "
                "`simrs incident resume` (SIMRS_DEBUG=1 shows the traceback)"
            )
            sys.exit(EXIT_FAILED)

    return wrapper


def progress(msg: str) -> None:
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    envvar="SIMRS_INVENTORY",
    help="The hospital's inventory (default: $SIMRS_INVENTORY, else the built-in lab).",
)
@click.pass_context
def main(ctx: click.Context, inventory: Path | None) -> None:
    """simrs: the hospital's SIMRS downtime SOP, automated (Ansible does the remote work)."""
    ctx.obj = {"inventory": inventory}


def default_inventory() -> Path:
    state = lab.load_state()
    if state and state.get("inventory"):
        return Path(state["inventory"])
    return settings.LAB_INVENTORY


def make_engine(ctx: click.Context, ui: RichUI | None = None) -> Engine:
    inventory = ctx.obj.get("inventory") or default_inventory()
    gateway = AnsibleGateway(inventory, settings.runs_dir(), envvars=podman.extra_env())
    hospital = Hospital.from_inventory(gateway.inventory())
    return Engine(Journal(settings.journal_path()), gateway, hospital, ui=ui)


# ---- lab ------------------------------------------------------------------------------------


@main.group("lab")
def lab_group() -> None:
    """The built-in lab hospital in podman: servers, client PCs, an external disk."""


@lab_group.command("up")
@click.option(
    "--clients",
    type=click.IntRange(1, topology.MAX_CLIENTS),
    default=3,
    show_default=True,
    help="Number of client PCs (kasir-01, pendaftaran-01, ...).",
)
@click.option(
    "--patients",
    type=click.IntRange(1, topology.MAX_PATIENTS),
    default=500,
    show_default=True,
    help="Synthetic patients to seed (two visits each).",
)
@handle_errors
def lab_up(clients: int, patients: int) -> None:
    """Build (cached) images and start the lab hospital."""
    started = time.monotonic()
    lab.up(topology.LabSpec(clients=clients, patients=patients), progress)
    progress(f"lab up in {time.monotonic() - started:.0f} s")
    render_status(lab.status())


@lab_group.command("build")
@handle_errors
def lab_build() -> None:
    """Build the lab's images if they are missing (cached by a hash of their recipe)."""
    started = time.monotonic()
    ref = images.ensure_images(progress)
    progress(f"{ref} ready ({time.monotonic() - started:.0f} s)")


@lab_group.command("down")
@handle_errors
def lab_down() -> None:
    """Remove every lab container, the network and the lab's disks."""
    lab.down(progress)
    progress("lab is down")


@lab_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def lab_status(as_json: bool) -> None:
    """Show each host, its addresses, and whether each client PC reaches the SIMRS."""
    data = lab.status()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        render_status(data)


def render_status(data: dict) -> None:
    table = Table(title="SIMRS lab hospital")
    for col in ("host", "role", "unit", "state", "addresses", "reaches SIMRS"):
        table.add_column(col)
    for h in data["hosts"]:
        reach = ""
        if h["role"] == "client":
            reach = (
                f"[green]yes[/] (via {h['served_by']})"
                if h["reaches_simrs"]
                else f"[red]no[/] ({h['failed_check']})"
            )
        state = h["state"] if h["state"] == "running" else f"[yellow]{h['state']}[/]"
        table.add_row(h["name"], h["role"], h["unit"] or "", state, " ".join(h["ips"]), reach)
    out.print(table)
    owners = ", ".join(data["service_ip_owners"]) or "[red]nobody[/]"
    out.print(f"service IP {data['service_ip']}: held by {owners}")
    if data["faults"]:
        out.print("active faults: " + ", ".join(data["faults"]))
    wl = data.get("workload") or {}
    if wl.get("committed") is not None:
        out.print(
            f"workload: {'running' if wl['running'] else 'stopped'}, "
            f"{wl['committed']} visits committed, {wl['errors']} failed attempts"
        )


@lab_group.command("break")
@click.argument("fault", metavar="FAULT")
@click.argument("host", required=False)
@click.option(
    "--mode",
    type=click.Choice(faults.CLIENT_NET_MODES),
    default="route",
    show_default=True,
    help="client-net only: what breaks on that PC.",
)
@handle_errors
def lab_break(fault: str, host: str | None, mode: str) -> None:
    """Break the lab: primary-off, db-crash, disk-full, client-net HOST, backup-corrupt."""
    record = faults.break_fault(fault, host, mode)
    progress(f"broken: {record['fault']}" + (f" ({record['mode']})" if "mode" in record else ""))


@lab_group.command("heal")
@click.argument("fault", required=False)
@click.argument("host", required=False)
@handle_errors
def lab_heal(fault: str | None, host: str | None) -> None:
    """Undo one fault (or, without arguments, every active fault)."""
    healed = faults.heal(fault, host)
    progress("healed: " + (", ".join(healed) if healed else "nothing was broken"))


@lab_group.command("inbox")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def lab_inbox(as_json: bool) -> None:
    """What the lab's message gateway (webhook) and mail server received (SOP 4c notices)."""
    lab.current()
    data = lab.inbox()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for post in data["webhook"]:
        body = post.get("json") or {}
        out.print(
            f"[bold]webhook[/] {post.get('received_at', '')} {body.get('event')}: "
            f"{(body.get('text') or '').splitlines()[0] if body.get('text') else ''}"
        )
    for mail in data["email"]:
        out.print(
            f"[bold]email[/]   {mail.get('received_at', '')} to {', '.join(mail.get('rcpt_tos', []))}: "
            f"{mail.get('subject', '')}"
        )
    if not data["webhook"] and not data["email"]:
        out.print("nothing received yet")


@lab_group.group("workload")
def workload_group() -> None:
    """A registration desk that keeps registering visits through the service IP."""


@workload_group.command("start")
@click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds between registrations.")
@handle_errors
def workload_start(interval: float) -> None:
    """Start registering visits (pendaftaran-01), recording each committed one."""
    lab.workload_start(interval)
    progress("workload started")


@workload_group.command("stop")
@handle_errors
def workload_stop() -> None:
    """Stop the workload (its record stays)."""
    lab.workload_stop()
    progress("workload stopped")


@workload_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def workload_status(as_json: bool) -> None:
    """How many visits the workload saw committed, and how many attempts failed."""
    spec, _ = lab.current()
    data = lab.workload_summary(spec)
    click.echo(
        json.dumps(data, indent=2)
        if as_json
        else f"running={data['running']} committed={data['committed']} errors={data['errors']}"
    )


# ---- incidents ------------------------------------------------------------------------------


class RichUI:
    """The live view: current step, results as they arrive, the countdown to the deadline."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._last_wait_print = 0.0

    def _say(self, text: str) -> None:
        if not self.quiet:
            err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")

    def step(self, inc: Incident, action: Action) -> None:
        self._say(
            f"[bold]{inc.phase}[/] -> {action.kind}{' ' + action.event if action.event else ''}: "
            f"{action.reason}"
        )

    def event(self, kind: str, host: str, task: str) -> None:
        if kind == "runner_on_unreachable":
            self._say(f"  [red]{host} unreachable[/] ({task})")

    def fact(self, kind: str, data: dict) -> None:
        if kind == "triage":
            for host, c in sorted(data["clients"].items()):
                mark = (
                    "[green]ok[/]"
                    if c["ok"]
                    else f"[red]FAIL[/] {c.get('failed_check')}: {c.get('detail', '')}"
                )
                self._say(f"  {host:16} {mark}")
            admin = data["admin"]
            self._say(
                f"  {'admin machine':16} "
                + ("[green]ok[/]" if admin["ok"] else f"[red]FAIL[/] {admin.get('failed_check')}")
            )
        elif kind == "server_check":
            self._say(
                f"  server reachable: {data['reachable']}; problems: {', '.join(data['problems']) or 'none'}"
            )
        elif kind == "repair_attempt":
            done = [a["name"] for a in data.get("actions", []) if a.get("ran")]
            self._say(
                f"  repair: {'[green]healthy[/]' if data['healthy'] else '[red]not healthy[/]'}"
                f" (ran: {', '.join(done) or 'nothing'}) {data.get('detail', '')}"
            )
        elif kind == "client_repair":
            for host, r in data["hosts"].items():
                self._say(
                    f"  {host}: {'[green]repaired[/]' if r['ok'] else '[red]not repaired[/] ' + r['detail']}"
                )
        elif kind == "notice":
            chans = ", ".join(f"{k} {'ok' if v['ok'] else 'FAILED'}" for k, v in data["channels"].items())
            self._say(f"  notice {data['event']}: {chans or 'no channels configured'}")

    def waiting(self, inc: Incident, now: float, until: float) -> None:
        if now - self._last_wait_print < 10:
            return
        self._last_wait_print = now
        left = (inc.deadline or now) - now
        self._say(
            f"  repair window: {int(left // 60):02d}:{int(left % 60):02d} left until failover; "
            f"next attempt in {max(0, until - now):.0f} s"
        )


def incident_view(inc: Incident, now: float) -> dict:
    deadline = inc.deadline
    return {
        "id": inc.id,
        "phase": str(inc.phase),
        "reporter": inc.reporter,
        "note": inc.note,
        "opened_at": inc.opened_at,
        "verdict": str(inc.verdict) if inc.verdict else None,
        "summary": inc.summary,
        "evidence": inc.evidence,
        "failing": list(inc.failing),
        "server": str(inc.server) if inc.server else None,
        "problems": list(inc.problems),
        "outage_confirmed_at": inc.outage_confirmed_at,
        "deadline": deadline,
        "seconds_to_deadline": round(deadline - now) if deadline and inc.active else None,
        "repair_attempts": inc.repair_attempts,
        "notices": list(inc.notices),
        "reason": inc.reason,
        "closed_cause": inc.closed_cause,
        "next": procedure.next_action(inc, now).reason if inc.active else None,
        "exit_code": procedure.exit_code(inc),
    }


def render_incident(inc: Incident, as_json: bool) -> None:
    view = incident_view(inc, time.time())
    if as_json:
        click.echo(json.dumps(view, indent=2, default=str))
        return
    out.print(f"[bold]{inc.id}[/]  {inc.phase}  (reported by {inc.reporter})")
    if inc.verdict:
        out.print(f"triage: {inc.verdict}: {inc.summary}")
        for host, why in inc.evidence.items():
            out.print(f"  {host}: {why}")
    if inc.server:
        out.print(f"server: {inc.server} ({', '.join(inc.problems) or 'no problems'})")
    if view["seconds_to_deadline"] is not None:
        left = view["seconds_to_deadline"]
        out.print(
            f"repair window: {inc.repair_attempts} attempts; failover deadline "
            f"{time.strftime('%H:%M:%S', time.localtime(view['deadline']))} ({max(left, 0)} s left)"
        )
    if inc.notices:
        out.print("users told: " + ", ".join(inc.notices))
    out.print(f"now: {inc.reason}")
    if inc.phase == procedure.Phase.FAILOVER_PENDING:
        out.print(
            "[yellow]next: approve the failover to the standby (SOP 4b): "
            f"`simrs incident approve {inc.id}`[/]"
        )
    elif inc.phase == procedure.Phase.ESCALATED:
        out.print(
            "[yellow]next: a person must act (see above); then "
            f"`simrs incident close {inc.id} --cause ...`[/]"
        )
    elif inc.phase == procedure.Phase.RESOLVED:
        out.print(f"next: record the cause: `simrs incident close {inc.id} --cause ...`")


def _finish(inc: Incident, as_json: bool) -> None:
    render_incident(inc, as_json)
    sys.exit(procedure.exit_code(inc))


@main.group("incident")
def incident_group() -> None:
    """The SOP, step by step: open, status, resume, failover-now, close."""


def _pick(engine: Engine, incident_id: str | None) -> str:
    if incident_id:
        return incident_id
    active = engine.active_incident()
    if active is not None:
        return active.id
    ids = engine.journal.incidents()
    if not ids:
        raise JournalError("there is no incident yet: open one with `simrs incident open --reporter PC`")
    return ids[-1]


@incident_group.command("open")
@click.option("--reporter", required=True, help="The client PC that reported the problem (e.g. kasir-01).")
@click.option("--note", default="", help="What the user said.")
@click.option("--window", help="Repair window before failover (e.g. 2m; default from the inventory, 60m).")
@click.option("--policy", type=click.Choice(["approve", "auto"]), help="Failover policy for this incident.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_open(
    ctx: click.Context, reporter: str, note: str, window: str | None, policy: str | None, as_json: bool
) -> None:
    """Open an incident for a PC that cannot reach the SIMRS, and run the SOP."""
    window_s = settings.parse_duration(window) if window else None
    engine = make_engine(ctx, RichUI(quiet=as_json))
    incident_id = engine.open(reporter, note, window_s, policy)
    if not as_json:
        progress(f"opened {incident_id} (reported by {reporter})")
    _finish(engine.drive(incident_id), as_json)


@incident_group.command("resume")
@click.argument("incident_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_resume(ctx: click.Context, incident_id: str | None, as_json: bool) -> None:
    """Continue an incident where it stopped (after a crash, Ctrl-C or an operator's step)."""
    engine = make_engine(ctx, RichUI(quiet=as_json))
    chosen = _pick(engine, incident_id)
    engine.retry_blocked(chosen, settings.operator())
    _finish(engine.drive(chosen), as_json)


@incident_group.command("approve")
@click.argument("incident_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_approve(ctx: click.Context, incident_id: str | None, as_json: bool) -> None:
    """Approve the failover to the standby (SOP 4b) and run it."""
    engine = make_engine(ctx, RichUI(quiet=as_json))
    inc = engine.approve(_pick(engine, incident_id), settings.operator())
    if not as_json:
        progress(f"{inc.id}: failover approved by {settings.operator()}")
    _finish(engine.drive(inc.id), as_json)


@incident_group.command("status")
@click.argument("incident_id", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_status(ctx: click.Context, incident_id: str | None, as_json: bool) -> None:
    """Where an incident stands (default: the active one, else the latest)."""
    engine = make_engine(ctx)
    render_incident(engine.incident(_pick(engine, incident_id)), as_json)


@incident_group.command("failover-now")
@click.argument("incident_id", required=False)
@click.option("--reason", required=True, help="Why the repair window ends early (goes into the report).")
@click.pass_context
@handle_errors
def incident_failover_now(ctx: click.Context, incident_id: str | None, reason: str) -> None:
    """End the repair window early: the incident goes to FAILOVER_PENDING."""
    engine = make_engine(ctx)
    inc = engine.failover_now(_pick(engine, incident_id), settings.operator(), reason)
    progress(
        f"{inc.id}: repair window ended early by {settings.operator()}; the driving run moves on, "
        f"or run `simrs incident resume {inc.id}`"
    )


@incident_group.command("close")
@click.argument("incident_id", required=False)
@click.option("--cause", required=True, help="What caused the downtime (goes into the report).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def incident_close(ctx: click.Context, incident_id: str | None, cause: str, as_json: bool) -> None:
    """Close an incident with its cause."""
    engine = make_engine(ctx)
    render_incident(engine.close(_pick(engine, incident_id), cause, settings.operator()), as_json)


# ---- report ---------------------------------------------------------------------------------


@main.command("report")
@click.argument("incident_id", required=False)
@click.option("--lang", type=click.Choice(["id", "en"]), default="id", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
@handle_errors
def report_cmd(ctx: click.Context, incident_id: str | None, lang: str, fmt: str, output: Path | None) -> None:
    """The evaluation report of an incident, written from its journal (SOP's own report shape)."""
    engine = make_engine(ctx)
    chosen = _pick(engine, incident_id)
    text = report.render(chosen, engine.journal.events(chosen), engine.hospital.info, lang, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(text)
    tmp.replace(output)  # never a half-written report under the final name
    progress(f"report written to {output}")


# ---- demo ------------------------------------------------------------------------------------


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
    engine = make_engine(ctx, RichUI())
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


if __name__ == "__main__":
    main()
