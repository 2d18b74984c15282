"""`simrs lab ...`: the built-in lab hospital."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table

from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.i18n import _
from orchestrator.lab import faults, images, lab, topology


@main.group("lab")
def lab_group() -> None:
    """The built-in lab hospital in podman: servers, client PCs, an external disk."""


OS_OPTION = click.option(
    "--os",
    "os_release",
    type=click.Choice(topology.OS_RELEASES),
    default=topology.OS_RELEASES[0],
    show_default=True,
    help="Debian release of every lab host: bookworm (12), or bullseye (11: Python 3.9, MariaDB 10.5, "
    "the oldest servers and PCs supported).",
)


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
@click.option(
    "--connection",
    type=click.Choice(topology.CONNECTIONS),
    default="podman",
    show_default=True,
    help="How Ansible reaches the hosts: podman exec, or SSH as a hospital does (an account with "
    "sudo, host keys checked against the lab's known_hosts).",
)
@click.option(
    "--power",
    type=click.Choice(topology.POWER_MODES),
    default="podman",
    show_default=True,
    help="How the inventory switches the servers: podman itself, or their lab BMCs (ipmi, redfish, "
    "wol; mixed = the primary by IPMI, the standby by Wake-on-LAN with Redfish for status and off).",
)
@OS_OPTION
@handle_errors
def lab_up(clients: int, patients: int, connection: str, power: str, os_release: str) -> None:
    """Build (cached) images and start the lab hospital."""
    started = time.monotonic()
    spec = topology.LabSpec(
        clients=clients, patients=patients, connection=connection, power=power, os=os_release
    )
    lab.up(spec, progress)
    progress(_("lab up in {seconds} s", seconds=f"{time.monotonic() - started:.0f}"))
    render_status(lab.status())


@lab_group.command("build")
@OS_OPTION
@handle_errors
def lab_build(os_release: str) -> None:
    """Build the lab's images if they are missing (cached by a hash of their recipe)."""
    started = time.monotonic()
    ref = images.ensure_images(progress, os_release)
    progress(_("{image} ready ({seconds} s)", image=ref, seconds=f"{time.monotonic() - started:.0f}"))


@lab_group.command("down")
@handle_errors
def lab_down() -> None:
    """Remove every lab container, the network and the lab's disks."""
    lab.down(progress)
    progress(_("lab is down"))


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
    table = Table(title=f"{_('SIMRS lab hospital')} (Debian {data.get('os', 'bookworm')})")
    for col in (_("host"), _("role"), _("unit"), _("state"), _("addresses"), _("reaches SIMRS")):
        table.add_column(col)
    for h in data["hosts"]:
        reach = ""
        if h["role"] == "client":
            reach = (
                f"[green]{_('yes')}[/] ({_('via {server}', server=h['served_by'])})"
                if h["reaches_simrs"]
                else f"[red]{_('no')}[/] ({h['failed_check']})"
            )
        state = h["state"] if h["state"] == "running" else f"[yellow]{h['state']}[/]"
        table.add_row(h["name"], h["role"], h["unit"] or "", state, " ".join(h["ips"]), reach)
    out.print(table)
    owners = ", ".join(data["service_ip_owners"]) or f"[red]{_('nobody')}[/]"
    out.print(_("service IP {ip}: held by {owners}", ip=data["service_ip"], owners=owners))
    if data["faults"]:
        out.print(_("active faults: {faults}", faults=", ".join(data["faults"])))
    wl = data.get("workload") or {}
    if wl.get("committed") is not None:
        out.print(
            _(
                "workload: {state}, {committed} visits committed, {errors} failed attempts",
                state=_("running") if wl["running"] else _("stopped"),
                committed=wl["committed"],
                errors=wl["errors"],
            )
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
    progress(
        _("broken: {fault}", fault=record["fault"]) + (f" ({record['mode']})" if "mode" in record else "")
    )


@lab_group.command("heal")
@click.argument("fault", required=False)
@click.argument("host", required=False)
@handle_errors
def lab_heal(fault: str | None, host: str | None) -> None:
    """Undo one fault (or, without arguments, every active fault)."""
    healed = faults.heal(fault, host)
    progress(_("healed: {faults}", faults=", ".join(healed) if healed else _("nothing was broken")))


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
            f"[bold]email[/]   {mail.get('received_at', '')} "
            f"{_('to {rcpt}', rcpt=', '.join(mail.get('rcpt_tos', [])))}: "
            f"{mail.get('subject', '')}"
        )
    if not data["webhook"] and not data["email"]:
        out.print(_("nothing received yet"))


@lab_group.group("workload")
def workload_group() -> None:
    """A registration desk that keeps registering visits through the service IP."""


@workload_group.command("start")
@click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds between registrations.")
@handle_errors
def workload_start(interval: float) -> None:
    """Start registering visits (pendaftaran-01), recording each committed one."""
    lab.workload_start(interval)
    progress(_("workload started"))


@workload_group.command("stop")
@handle_errors
def workload_stop() -> None:
    """Stop the workload (its record stays)."""
    lab.workload_stop()
    progress(_("workload stopped"))


@workload_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def workload_status(as_json: bool) -> None:
    """How many visits the workload saw committed, and how many attempts failed."""
    spec, _state = lab.current()
    data = lab.workload_summary(spec)
    click.echo(
        json.dumps(data, indent=2)
        if as_json
        else f"running={data['running']} committed={data['committed']} errors={data['errors']}"
    )
