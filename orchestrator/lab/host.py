"""Host-side plumbing of the lab that is not podman: loop filesystems and bind mounts.

The primary's database lives on its own small ext4 filesystem (so "disk full" is a real full
disk, never the machine's own), and the external backup disk is another one, labelled like a
real USB disk. It is "plugged into" a server by a bind mount under a shared folder that the
containers see with slave propagation, so it can be attached and detached while they run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from orchestrator.lab.podman import LabError


def _run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (loop filesystems for the data and backup disks, podman networks); "
            "run it as root, e.g. with sudo",
            exit_code=2,
        )


def is_mountpoint(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0


def make_loop_fs(image: Path, mountpoint: Path, size_mb: int, label: str) -> None:
    """A fresh ext4 filesystem of size_mb in a sparse file, mounted at mountpoint."""
    image.parent.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    if is_mountpoint(mountpoint):
        return
    if not image.exists():
        _run("truncate", "-s", f"{size_mb}M", str(image))
        _run("mkfs.ext4", "-q", "-L", label, str(image))
    _run("mount", "-o", "loop", str(image), str(mountpoint))


def make_shared_dir(path: Path) -> None:
    """A folder whose later mounts propagate into containers that bind it with :rslave."""
    path.mkdir(parents=True, exist_ok=True)
    if not is_mountpoint(path):
        _run("mount", "--bind", str(path), str(path))
    _run("mount", "--make-rshared", str(path))


def bind(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if not is_mountpoint(target):
        _run("mount", "--bind", str(source), str(target))


def unmount(path: Path) -> None:
    """Unmount path and everything below it; a path that is not mounted is fine."""
    if not path.exists():
        return
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == str(path) or line.split()[4].startswith(str(path) + "/")
    ]
    for mount in sorted(set(mounts), key=len, reverse=True):
        # Stacked mounts (the shared dir is bound onto itself) need one umount each.
        while is_mountpoint(Path(mount)):
            _run("umount", mount)


def contain_lab_traffic(cidr: str = "198.18.0.0/15") -> None:
    """Traffic to the lab's range never leaves this machine, even when a podman bridge is gone
    (a blackhole route; the bridges' own, more specific routes win over it while they exist)."""
    _run("ip", "route", "replace", "blackhole", cidr)
