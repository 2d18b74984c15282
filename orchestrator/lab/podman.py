"""The lab's only door to podman: run a podman command with the settings this machine needs.

Podman on some machines (no CAP_SYS_RESOURCE, hybrid cgroups) starts no container with its
defaults. ``podman_env`` decides once, by podman's own smoke test, whether the project's
``containers.conf`` is needed, and remembers the answer next to the image cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SimrsError
from orchestrator.lab import paths

PROJECT_CONTAINERS_CONF = Path(__file__).with_name("containers.conf")


class LabError(SimrsError):
    """A lab operation failed; the message says what to fix. ``exit_code`` 2 means user input."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message, exit_code)


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def require_podman() -> str:
    exe = shutil.which("podman")
    if exe is None:
        raise LabError(
            "podman is not installed. Run scripts/setup (as root) or `apt-get install podman runc`.",
            exit_code=2,
        )
    return exe


def podman_env() -> dict[str, str]:
    """The environment for every podman call (ours and Ansible's podman connection)."""
    env = dict(os.environ)
    marker = paths.cache_dir() / "podman-needs-project-conf"
    if marker.exists() and "CONTAINERS_CONF" not in os.environ:
        env["CONTAINERS_CONF"] = str(PROJECT_CONTAINERS_CONF)
    return env


def extra_env() -> dict[str, str]:
    """Only the variables podman_env adds (for ansible-runner's envvars)."""
    base = dict(os.environ)
    return {k: v for k, v in podman_env().items() if base.get(k) != v}


def run(
    *args: str,
    check: bool = True,
    input_text: str | None = None,
    timeout: float | None = 120,
) -> Result:
    exe = require_podman()
    try:
        proc = subprocess.run(
            [exe, *args],
            input=input_text,
            capture_output=True,
            text=True,
            env=podman_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"podman {' '.join(args[:3])} did not finish in {timeout:.0f} s") from exc
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and not result.ok:
        raise LabError(f"podman {' '.join(args)} failed (rc {proc.returncode}): {proc.stderr.strip()}")
    return result


def ensure_runtime_works(image: str) -> None:
    """Apply the project's containers.conf only where podman's own smoke test fails without it."""
    marker = paths.cache_dir() / "podman-needs-project-conf"
    if run("run", "--rm", "--network=none", image, "true", check=False, timeout=60).ok:
        return
    if marker.exists():
        raise LabError("podman cannot start a container even with the project's containers.conf")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(PROJECT_CONTAINERS_CONF) + "\n")
    probe = run("run", "--rm", "--network=none", image, "true", check=False, timeout=60)
    if not probe.ok:
        marker.unlink()
        raise LabError(
            "podman cannot start a container here, with or without the project's "
            f"containers.conf: {probe.err.strip()}"
        )
