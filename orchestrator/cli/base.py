"""The `simrs` command's root: options, error handling, the engine factory. Decides nothing.

Exit codes: 0 done, 1 failed, 2 bad input (what to fix is printed), 3 waiting for an operator.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from orchestrator import backups, i18n, interrupt, inventory, settings
from orchestrator.ansible import AnsibleGateway
from orchestrator.cli.version import version_option
from orchestrator.engine import UI, Engine
from orchestrator.errors import HostError, InputError, InventoryError, JournalError, SimrsError
from orchestrator.i18n import _
from orchestrator.journal import Journal, JournalDamagedError, is_damage
from orchestrator.secrets import secret_values

# Not a terminal (a log, CI, a pipe): wide enough that host names and commands are never cut.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, soft_wrap=True)

EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 1, 2, 3
# Each kind of error has its exit code here and nowhere else (orchestrator/errors.py names them).
EXIT_CODES: tuple[tuple[type[SimrsError], int], ...] = (
    (JournalDamagedError, EXIT_FAILED),  # before JournalError: it is one
    (HostError, EXIT_FAILED),
    (InputError, EXIT_USAGE),
    (InventoryError, EXIT_USAGE),
    (JournalError, EXIT_USAGE),
)


def exit_code(exc: SimrsError) -> int:
    """The exit code of an error: by its kind; an error of no kind (the lab's, an interrupt) says its own."""
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return exc.exit_code if exc.exit_code is not None else EXIT_USAGE


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the orchestrator's errors into one clear line and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except interrupt.Interrupted as exc:
            err.print(f"[yellow]{_('interrupted')}[/]: {i18n.translate_error(str(exc))}")
            sys.exit(exit_code(exc))
        except SimrsError as exc:
            err.print(f"[bold red]{_('error:')}[/] {i18n.translate_error(str(exc))}")
            sys.exit(exit_code(exc))
        except KeyboardInterrupt:
            err.print(
                f"[yellow]{_('interrupted')}[/]: "
                + _(
                    "every finished step is in the journal; "
                    "`simrs incident resume` (or the same lab command) continues from there"
                )
            )
            sys.exit(130)
        except Exception as exc:  # the last line of defence: one clear line, the details on request
            if os.environ.get("SIMRS_DEBUG"):
                raise
            if is_damage(exc):  # the journal's helpers say this already; never "resume" on damage
                damaged = JournalDamagedError(settings.journal_path(), str(exc))
                err.print(f"[bold red]{_('error:')}[/] {i18n.translate_error(str(damaged))}")
                sys.exit(exit_code(damaged))
            err.print(f"[bold red]{_('failed:')}[/] {type(exc).__name__}: {exc}")
            err.print(
                _(
                    "every finished step is in the journal; fix the cause and run "
                    "`simrs incident resume` (SIMRS_DEBUG=1 shows the traceback)"
                )
            )
            sys.exit(EXIT_FAILED)

    return wrapper


def progress(msg: str) -> None:
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}")


LAB_COMMANDS = {"lab": "orchestrator.cli.lab_cmd", "demo": "orchestrator.cli.demo_cmd"}


class Commands(click.Group):
    """The command groups. Each registers itself on ``main`` when imported; the lab's own (`lab`,
    `demo`) are imported only when one of them is named, so production commands never load it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAB_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAB_COMMANDS and cmd_name not in self.commands:
            importlib.import_module(LAB_COMMANDS[cmd_name])
        return super().get_command(ctx, cmd_name)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path),
    envvar="SIMRS_INVENTORY",
    help="The hospital's inventory (default: $SIMRS_INVENTORY, else the built-in lab).",
)
@click.option(
    "--vault-password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="SIMRS_VAULT_PASSWORD_FILE",
    help="The file holding the Ansible Vault password of the inventory's secrets "
    "(default: $SIMRS_VAULT_PASSWORD_FILE, else the inventory's own ansible.cfg).",
)
@click.option("--ask-vault-pass", is_flag=True, help="Ask for the Ansible Vault password.")
@version_option
@click.pass_context
def main(
    ctx: click.Context, inventory: Path | None, vault_password_file: Path | None, ask_vault_pass: bool
) -> None:
    """simrs: the hospital's SIMRS downtime SOP, automated (Ansible does the remote work)."""
    try:
        i18n.lang()  # a bad SIMRS_LANG is refused before anything runs
    except SimrsError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)
    ctx.obj = {
        "inventory": inventory,
        "vault_password_file": vault_password_file,
        "ask_vault_pass": ask_vault_pass,
    }
    interrupt.install()  # Ctrl-C / SIGTERM: a clean stop at the next step, a second one forces


# ---- the built-in lab plugs in here, and only here ---------------------------------------------
# A hospital's inventory never loads orchestrator.lab: the lab is loaded when no inventory is given
# (the built-in lab is the default) or when the inventory read says its hosts are the lab's podman
# containers (the inventory `simrs lab up` writes).
LAB_CONNECTION = "simrs.downtime.podman"


def default_inventory() -> Path:
    """No --inventory / SIMRS_INVENTORY: the built-in lab's, as `simrs lab up` wrote it."""
    from orchestrator.lab import lab  # noqa: PLC0415  (the lab only where the lab is the inventory)

    state = lab.load_state()
    if state and state.get("inventory"):
        return Path(state["inventory"])
    return settings.LAB_INVENTORY


def plug_in_the_lab(gateway: Any, site: inventory.Site) -> None:
    """The lab's hosts are podman containers: every run gets the podman settings this machine
    needs (orchestrator/lab/podman.py). Nothing happens for any other inventory."""
    if not any(v.get("ansible_connection") == LAB_CONNECTION for v in site.hostvars.values()):
        return
    if not hasattr(gateway, "envvars"):  # a fake gateway (unit tests)
        return
    from orchestrator.lab import podman  # noqa: PLC0415  (the lab only where the lab is the inventory)

    gateway.envvars.update(podman.extra_env())


def make_gateway(ctx: click.Context) -> AnsibleGateway:
    """The gateway for the chosen inventory (unit tests replace this with a fake)."""
    inventory = ctx.obj.get("inventory") or default_inventory()
    return AnsibleGateway(inventory, settings.runs_dir(), vault_password_file=vault_password(ctx))


def vault_password(ctx: click.Context) -> Path | None:
    """The vault password file: --vault-password-file / SIMRS_VAULT_PASSWORD_FILE, or what
    --ask-vault-pass was told, kept in a 0600 file of a 0700 folder only while the command runs
    (never in an environment variable or on a command line)."""
    given = ctx.obj.get("vault_password_file")
    if given is not None or not ctx.obj.get("ask_vault_pass"):
        return given
    if ctx.obj.get("_asked") is None:
        secret = click.prompt(_("Vault password"), hide_input=True, err=True)
        folder = Path(tempfile.mkdtemp(prefix="simrs-vault-"))
        path = folder / "password"
        path.touch(mode=0o600)
        path.write_text(secret + "\n")
        ctx.obj["_asked"] = path
        ctx.call_on_close(lambda: shutil.rmtree(folder, ignore_errors=True))
    return ctx.obj["_asked"]


def load_site(gateway: AnsibleGateway) -> inventory.Site:
    """The inventory, read once and validated as a whole: every problem named, exit 2, before any
    host is touched or anything is journaled (orchestrator/inventory.py)."""
    site = inventory.load(gateway.inventory())
    plug_in_the_lab(gateway, site)
    i18n.use_inventory_lang(site.hospital.notify_lang)  # the CLI speaks it unless SIMRS_LANG says
    return site


def make_journal(gateway: Any, raw_inventory: dict[str, Any]) -> Journal:
    """The journal, told the inventory's secret values (passwords, tokens, keys, Vault's), so that
    no event ever holds one, wherever it appears. Every command that journals builds it here."""
    settings.prepare_state()
    journal = Journal(settings.journal_path())
    journal.learn_secrets(secret_values(raw_inventory, getattr(gateway, "vault_password_file", None)))
    return journal


def make_engine(ctx: click.Context, ui: UI | None = None, restores: str = "") -> Engine:
    """The engine on the checked inventory. ``restores`` names a command that will restore a backup:
    without the backup private key it is refused here (exit 2), before anything is journaled."""
    gateway = make_gateway(ctx)
    site = load_site(gateway)
    problem = backups.restore_key_problem(site.raw, restores) if restores else None
    if problem:
        raise InputError(problem)
    return Engine(make_journal(gateway, site.raw), gateway, site.hospital, ui=ui)


# ---- lab ------------------------------------------------------------------------------------
