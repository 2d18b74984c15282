"""The `simrs` command's root: options, error handling, the engine factory. Decides nothing.

Exit codes: 0 done, 1 failed, 2 bad input (what to fix is printed), 3 waiting for an operator.
"""

from __future__ import annotations

import functools
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

from orchestrator import backups, interrupt, inventory, settings
from orchestrator.ansible import AnsibleGateway, InventoryError
from orchestrator.cli.version import version_option
from orchestrator.engine import UI, Engine
from orchestrator.errors import SimrsError
from orchestrator.journal import Journal, JournalDamagedError, is_damage
from orchestrator.lab import lab, podman
from orchestrator.secrets import secret_values

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
        except interrupt.Interrupted as exc:
            err.print(f"[yellow]interrupted[/]: {exc}")
            sys.exit(exc.exit_code)
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
            if is_damage(exc):  # the journal's helpers say this already; never "resume" on damage
                damaged = JournalDamagedError(settings.journal_path(), str(exc))
                err.print(f"[bold red]error:[/] {damaged}")
                sys.exit(damaged.exit_code)
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
    ctx.obj = {
        "inventory": inventory,
        "vault_password_file": vault_password_file,
        "ask_vault_pass": ask_vault_pass,
    }
    interrupt.install()  # Ctrl-C / SIGTERM: a clean stop at the next step, a second one forces


def default_inventory() -> Path:
    state = lab.load_state()
    if state and state.get("inventory"):
        return Path(state["inventory"])
    return settings.LAB_INVENTORY


def make_gateway(ctx: click.Context) -> AnsibleGateway:
    """The gateway for the chosen inventory (unit tests replace this with a fake)."""
    inventory = ctx.obj.get("inventory") or default_inventory()
    return AnsibleGateway(
        inventory, settings.runs_dir(), envvars=podman.extra_env(), vault_password_file=vault_password(ctx)
    )


def vault_password(ctx: click.Context) -> Path | None:
    """The vault password file: --vault-password-file / SIMRS_VAULT_PASSWORD_FILE, or what
    --ask-vault-pass was told, kept in a 0600 file of a 0700 folder only while the command runs
    (never in an environment variable or on a command line)."""
    given = ctx.obj.get("vault_password_file")
    if given is not None or not ctx.obj.get("ask_vault_pass"):
        return given
    if ctx.obj.get("_asked") is None:
        secret = click.prompt("Vault password", hide_input=True, err=True)
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
    return inventory.load(gateway.inventory())


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
        raise SimrsError(problem, exit_code=2)
    return Engine(make_journal(gateway, site.raw), gateway, site.hospital, ui=ui)


# ---- lab ------------------------------------------------------------------------------------
