"""A run's folder and its processes, beside the gateway: what an ended run may keep (no
environment, no variables), and which processes of a run still live (ansible-playbook leads its own
process group; a run can outlive the orchestrator that started it)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

# What ansible-runner leaves in a run's folder that may hold a secret: env/ (envvars, extravars,
# settings, cmdline, passwords, ssh_key), the environment in artifacts/<id>/command, and the
# fact cache (a host's facts carry its environment). Removed as soon as the run has ended.
ENV_FILES = ("envvars", "extravars", "settings", "cmdline", "passwords", "ssh_key")


def scrub_run(private: Path) -> None:
    """Leave no environment and no variables in an ended run's folder: env/* removed, the
    environment dropped from artifacts/*/command (the command line stays: extravars go by file,
    never on it), the fact cache removed; what stays is the owner's only (dirs 0700, files 0600).
    Best effort: a file that cannot be changed is removed."""
    for name in ENV_FILES:
        with contextlib.suppress(FileNotFoundError):
            (private / "env" / name).unlink()
    for command in private.glob("artifacts/*/command"):
        try:
            data = json.loads(command.read_text(encoding="utf-8"))
            kept = {k: data[k] for k in ("command", "cwd") if isinstance(data, dict) and k in data}
            tmp = command.with_name(".command.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(kept, out)
            tmp.replace(command)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                command.unlink()
    for cache in private.glob("artifacts/*/fact_cache"):
        shutil.rmtree(cache, ignore_errors=True)
    for path in [private, *private.rglob("*")]:
        with contextlib.suppress(OSError):
            if path.is_symlink():
                continue
            path.chmod(0o700 if path.is_dir() else 0o600)


def process_start(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22), or None when
    there is no such process: with the pid it names one process, never a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[19]) if len(fields) > 19 and fields[0] != "Z" else None


def run_members(marker: str) -> list[int]:
    """The processes of one run, wherever they are: ansible-playbook, its workers (which lead
    sessions of their own, so its process group does not hold them) and their local children all
    carry the run's own SIMRS_STOP_FILE in their environment. ``marker``: that path."""
    if not marker:
        return []
    needle = f"SIMRS_STOP_FILE={marker}".encode()
    members = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            data = environ.read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in data.split(b"\0"):
            members.append(int(environ.parent.name))
    return members


def end_members(marker: str, grace: float = 10.0) -> None:
    """End what is left of a run: SIGTERM to its processes, SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in run_members(marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while run_members(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not run_members(marker):
            return
