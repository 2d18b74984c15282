"""The lab's images, built locally (debootstrap, no registry) and cached by a hash of their recipe.

Two layers: ``simrs-os`` (Debian + MariaDB + systemd, slow: about a minute) and ``simrs-host``
(the SIMRS stand-in files from ``image/``, seconds). A change to the stand-in rebuilds only
the second. ``localhost/simrs-host:lab`` always names the current Debian 12 one (Molecule and the
benches use it); ``localhost/simrs-host:lab-bullseye`` the Debian 11 one (`lab up --os bullseye`:
Python 3.9 and MariaDB 10.5, the oldest servers a hospital is supported on).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestrator.lab import paths, podman
from orchestrator.lab.podman import LabError
from orchestrator.lab.topology import OS_RELEASES

SUITE = "bookworm"  # the default: Debian 12
SUITES = OS_RELEASES  # `simrs lab up --os`: Debian 12, Debian 11
BASE_PACKAGES = (
    "python3",
    "python3-apt",
    "iproute2",
    "iputils-ping",
    "iputils-arping",
    "procps",
    "sudo",
    "ca-certificates",
)
SERVER_PACKAGES = (
    "mariadb-server",
    "mariadb-client",
    "mariadb-backup",
    "openssh-server",
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3-pymysql",
    "curl",
    "netcat-openbsd",
    "zstd",
    "gzip",
    "age",
)
RECIPE_VERSION = "2"  # bump when the build steps below change meaning
IMAGE_DIR = Path(__file__).with_name("image")
HOST_IMAGE_ALIAS = "localhost/simrs-host:lab"


def host_image_alias(suite: str = SUITE) -> str:
    """The moving tag of the current host image of a suite (the default one keeps the short name)."""
    return HOST_IMAGE_ALIAS if suite == SUITE else f"{HOST_IMAGE_ALIAS}-{suite}"


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise LabError(f"--os must be one of {', '.join(SUITES)}, not {suite!r}", exit_code=2)
    return suite


Progress = Callable[[str], None]


def os_recipe_hash(suite: str = SUITE) -> str:
    text = "\n".join([RECIPE_VERSION, suite, *BASE_PACKAGES, "--", *SERVER_PACKAGES])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def host_recipe_hash(os_tag: str) -> str:
    digest = hashlib.sha256(os_tag.encode())
    for path in sorted(p for p in IMAGE_DIR.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(IMAGE_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def debian_mirror() -> str:
    """The Debian mirror this machine already uses (so the build goes where apt goes)."""
    override = os.environ.get("SIMRS_DEBIAN_MIRROR")
    if override:
        return override
    for source in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if not source.exists():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and words[1].rstrip("/").endswith("/debian"):
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and words[-2] != "" and "security" not in line:
                return next((w for w in words if w.startswith("http")), "")
    return "http://deb.debian.org/debian"


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    lock_path = paths.cache_dir() / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _image_exists(ref: str) -> bool:
    return podman.run("image", "exists", ref, check=False).ok


def _sh(cmd: list[str], what: str, timeout: float = 900) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise LabError(f"{what} failed (rc {proc.returncode}):\n{tail}")


def build_os_image(progress: Progress, suite: str = SUITE) -> str:
    ref = f"localhost/simrs-os:{os_recipe_hash(suite)}"
    if _image_exists(ref):
        return ref
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is missing: run scripts/setup (as root)", exit_code=2)
    work = Path(tempfile.mkdtemp(prefix="simrs-os-", dir=paths.cache_dir()))
    rootfs = work / "rootfs"
    try:
        progress(f"building {ref}: debootstrap {suite} (about 40 s)")
        _sh(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                suite,
                str(rootfs),
                debian_mirror(),
            ],
            "debootstrap",
        )
        policy = rootfs / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts inside the chroot
        policy.chmod(0o755)
        shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        progress(f"building {ref}: MariaDB, systemd and tools (about 20 s)")
        chroot_env = ["env", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"]
        _sh(["chroot", str(rootfs), *chroot_env, "apt-get", "update", "-qq"], "apt-get update")
        _sh(
            [
                "chroot",
                str(rootfs),
                *chroot_env,
                "apt-get",
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                *SERVER_PACKAGES,
            ],
            "apt-get install",
        )
        _sh(["chroot", str(rootfs), "apt-get", "clean"], "apt-get clean")
        policy.unlink()
        (rootfs / "etc/resolv.conf").write_text("")
        (rootfs / "etc/machine-id").write_text("")
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        progress(f"building {ref}: importing into podman")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            [podman.require_podman(), "import", "--change", 'CMD ["/bin/bash"]', "-", ref],
            stdin=tar.stdout,
            capture_output=True,
            env=podman.podman_env(),
            check=False,
        )
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise LabError(f"podman import failed: {imp.stderr.decode(errors='replace').strip()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ref


def build_host_image(os_ref: str, progress: Progress, suite: str = SUITE) -> str:
    ref = f"localhost/simrs-host:{host_recipe_hash(os_ref)}"
    if not _image_exists(ref):
        progress(f"building {ref}: SIMRS stand-in layer")
        podman.run(
            "build",
            "--pull=never",
            "--network=none",
            "--build-arg",
            f"OS_IMAGE={os_ref}",
            "-t",
            ref,
            "-f",
            str(IMAGE_DIR / "Containerfile"),
            str(IMAGE_DIR),
            timeout=600,
        )
    podman.run("tag", ref, host_image_alias(suite))
    return ref


def ensure_images(progress: Progress, suite: str = SUITE) -> str:
    """Build what is missing and return the host image; safe to call concurrently."""
    check_suite(suite)
    with _build_lock():
        paths.cache_dir().mkdir(parents=True, exist_ok=True)
        os_ref = build_os_image(progress, suite)
        podman.ensure_runtime_works(os_ref)
        return build_host_image(os_ref, progress, suite)
