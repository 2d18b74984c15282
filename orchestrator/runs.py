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


def group_members(pgid: int, since: int | None) -> list[int]:
    """The processes of a run's process group (ansible-playbook leads its own group: its workers
    and their podman/ssh children finish the task in flight after it died) that started no earlier
    than the run itself (``since``: its start time), so that a reused number is never mistaken."""
    if pgid <= 1 or since is None:
        return []
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 19 and fields[0] != "Z" and int(fields[2]) == pgid and int(fields[19]) >= since:
            members.append(int(stat.parent.name))
    return members


def end_group(pgid: int, since: int | None, grace: float = 10.0) -> None:
    """End what is left of a run: SIGTERM to its processes, SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in group_members(pgid, since):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while group_members(pgid, since) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(pgid, since):
            return
