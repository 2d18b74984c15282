"""`simrs schedule ...`: the scheduled runs (backups, binlog shipping, the monthly drill) as
systemd timers, or cron where there is no systemd. ``orchestrator.schedule`` renders the files."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from orchestrator import schedule
from orchestrator.cli import base
from orchestrator.cli.base import handle_errors, main, out, progress
from orchestrator.errors import SimrsError
from orchestrator.i18n import _


def inventory_settings(ctx: click.Context) -> tuple[Path, Any]:
    """(the inventory's absolute path, its simrs_schedule) (unit tests replace this)."""
    site = base.load_site(base.make_gateway(ctx))
    hostvars = site.hostvars.get(site.hospital.primary, {})
    inventory = Path(ctx.obj.get("inventory") or base.default_inventory()).resolve()
    return inventory, hostvars.get("simrs_schedule")


def simrs_executable(given: Path | None) -> Path:
    if given is not None:
        return given.absolute()
    beside = Path(sys.executable).absolute().with_name("simrs")  # the venv's, not a resolved symlink
    if beside.exists():
        return beside
    found = shutil.which("simrs")
    if not found:
        raise SimrsError(_("cannot find the simrs executable: give its absolute path with --simrs PATH"))
    return Path(found).absolute()


def choose_kind(kind: str) -> str:
    if kind != "auto":
        return kind
    return "systemd" if schedule.SYSTEMD_RUNNING.is_dir() else "cron"


def unit_dir_for(kind: str, unit_dir: Path | None) -> Path:
    if unit_dir is not None:
        return unit_dir.absolute()
    return schedule.SYSTEM_UNIT_DIR if kind == "systemd" else schedule.CRON_DIR


def manages_systemd(kind: str, unit_dir: Path) -> bool:
    """systemctl only for the system's own unit folder on a machine where systemd runs."""
    return (
        kind == "systemd"
        and unit_dir == schedule.SYSTEM_UNIT_DIR
        and schedule.SYSTEMD_RUNNING.is_dir()
        and shutil.which("systemctl") is not None
    )


def _analyzer() -> Any:
    if shutil.which("systemd-analyze") is None:
        return None
    return lambda expr: schedule.analyze_calendar(expr)[0]


def _timers(names: list[str] | tuple[str, ...]) -> list[str]:
    return [name for name in names if name.endswith(".timer")]


KIND = click.option(
    "--kind",
    type=click.Choice(["auto", "systemd", "cron"]),
    default="auto",
    show_default=True,
    help="systemd timers, or cron; auto: systemd when /run/systemd/system exists.",
)
UNIT_DIR = click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the files go (default /etc/systemd/system, or /etc/cron.d for cron).",
)
DRY_RUN = click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")


@main.group("schedule")
def schedule_group() -> None:
    """Scheduled runs: backups, binlog shipping, the monthly DR drill (systemd timers or cron)."""


@schedule_group.command("install")
@KIND
@UNIT_DIR
@DRY_RUN
@click.option(
    "--simrs",
    "simrs_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The simrs executable the jobs run (default: this one).",
)
@click.pass_context
@handle_errors
def schedule_install(
    ctx: click.Context, kind: str, unit_dir: Path | None, dry_run: bool, simrs_path: Path | None
) -> None:
    """Install (or update) the timers from the inventory's simrs_schedule."""
    kind = choose_kind(kind)
    folder = unit_dir_for(kind, unit_dir)
    inventory, settings = inventory_settings(ctx)
    times = schedule.resolve(settings)
    simrs = simrs_executable(simrs_path)
    if ctx.obj.get("ask_vault_pass"):
        raise SimrsError(
            _(
                "scheduled jobs cannot be asked for the vault password: give a root-only file with "
                "--vault-password-file FILE (it reaches the jobs as a systemd credential, "
                "or by its path in cron)"
            )
        )
    vault = ctx.obj.get("vault_password_file")
    vault = Path(vault).absolute() if vault else None
    if kind == "systemd":
        schedule.validate(times, _analyzer())
        files = schedule.render_systemd(times, simrs, inventory, vault)
    else:
        files = schedule.render_cron(times, simrs, inventory, vault)
    change = schedule.plan(files, schedule.installed(folder))
    manage = manages_systemd(kind, folder)
    if dry_run:
        for name, text in change.write.items():
            out.print(f"[bold]{escape(_('would write {path}', path=folder / name))}[/]")
            out.print(escape(text), highlight=False)
        for name in change.remove:
            out.print(f"[bold]{escape(_('would remove {path}', path=folder / name))}[/]")
        if not change.changes:
            out.print(escape(_("nothing to change in {folder}", folder=folder)))
        return
    if manage and change.remove:
        schedule.Systemctl().disable(_timers(change.remove))
    schedule.apply(folder, change)
    for name in change.write:
        progress(escape(_("wrote {path}", path=folder / name)))
    for name in change.remove:
        progress(escape(_("removed {path}", path=folder / name)))
    if manage:
        systemctl = schedule.Systemctl()
        systemctl.reload()
        systemctl.enable(_timers(list(files)))
        progress(_("enabled and started {timers}", timers=", ".join(_timers(list(files)))))
    elif kind == "systemd":
        said = _(
            "{folder} is not this machine's running systemd: run `systemctl daemon-reload` and "
            "`systemctl enable --now simrs-*.timer` where these files are used",
            folder=folder,
        )
        progress(escape(said))
    said = _(
        "{count} scheduled job(s) ({jobs}) in {folder}; {written} file(s) written, {removed} removed, "
        "{unchanged} unchanged",
        count=len(times),
        jobs=", ".join(times) or _("none"),
        folder=folder,
        written=len(change.write),
        removed=len(change.remove),
        unchanged=len(change.unchanged),
    )
    out.print(escape(said))


@schedule_group.command("remove")
@KIND
@UNIT_DIR
@DRY_RUN
@handle_errors
def schedule_remove(kind: str, unit_dir: Path | None, dry_run: bool) -> None:
    """Remove the timers `schedule install` wrote (no other file is touched)."""
    kind = choose_kind(kind)
    folder = unit_dir_for(kind, unit_dir)
    change = schedule.plan({}, schedule.installed(folder))
    if not change.remove:
        out.print(escape(_("no scheduled SIMRS jobs in {folder}", folder=folder)))
        return
    if dry_run:
        for name in change.remove:
            out.print(escape(_("would remove {path}", path=folder / name)))
        return
    manage = manages_systemd(kind, folder)
    if manage:
        schedule.Systemctl().disable(_timers(change.remove))
    schedule.apply(folder, change)
    if manage:
        schedule.Systemctl().reload()
    said = _(
        "removed {count} file(s) from {folder}: {files}",
        count=len(change.remove),
        folder=folder,
        files=", ".join(change.remove),
    )
    out.print(escape(said))


def _rows(kind: str, folder: Path, files: dict[str, str]) -> list[dict[str, str]]:
    if kind == "cron":
        return [row for text in files.values() for row in schedule.cron_jobs(text)]
    rows = []
    manage = manages_systemd(kind, folder)
    analyzer = shutil.which("systemd-analyze") is not None
    for name, text in files.items():
        if not name.endswith(".timer"):
            continue
        unit = name.removesuffix(".timer")
        calendar = schedule.timer_calendar(text) or "?"
        next_run = ""
        if manage:
            next_run = schedule.Systemctl().next_run(name)
        elif analyzer:
            next_run = schedule.analyze_calendar(calendar)[1]
        rows.append(
            {
                "job": unit,
                "when": calendar,
                "next": next_run,
                "command": schedule.service_command(files.get(f"{unit}.service", "")) or "?",
            }
        )
    return rows


@schedule_group.command("show")
@KIND
@UNIT_DIR
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def schedule_show(kind: str, unit_dir: Path | None, as_json: bool) -> None:
    """The installed jobs, their times and (with systemd) their next run."""
    kind = choose_kind(kind)
    folder = unit_dir_for(kind, unit_dir)
    rows = _rows(kind, folder, schedule.installed(folder))
    if as_json:
        click.echo(json.dumps({"kind": kind, "unit_dir": str(folder), "jobs": rows}, indent=2))
        return
    if not rows:
        out.print(
            escape(
                _("no scheduled SIMRS jobs in {folder} (`simrs schedule install` adds them)", folder=folder)
            )
        )
        return
    table = Table(title=f"{kind}: {folder}", title_justify="left")
    for column in (_("job"), _("when"), _("next run"), _("command")):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape(row[k]) for k in ("job", "when", "next", "command")))
    out.print(table)
