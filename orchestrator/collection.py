"""Where the collection simrs.downtime is: its playbooks, roles, ansible.cfg and the collections path.

One answer for both ways simrs is installed:

- a git checkout (and ``pip install -e``): the checkout is the collection; scripts/setup links it
  into ``.collections/ansible_collections/simrs/downtime`` beside the extra collections it fetched.
- an installed wheel: the build (setup.py) copies the collection into the package, at
  ``orchestrator/_collection/ansible_collections/simrs/downtime``.

The extra collections (galaxy.yml's dependencies: community.general for the IPMI and Redfish power
drivers, containers.podman for the lab, ansible.posix, community.mysql) are not in the wheel. They
are looked up after ours in ``SIMRS_COLLECTIONS_PATH``, else ``ANSIBLE_COLLECTIONS_PATH``, else
Ansible's default places (``~/.ansible/collections``, ``/usr/share/ansible/collections``); Ansible
also finds those of the ``ansible`` package installed in the same Python (docs/install.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from orchestrator.errors import HostError, SimrsError

NAMESPACE, NAME = "simrs", "downtime"
PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
INSTALLED = PACKAGE / "_collection"  # a collections path: ansible_collections/simrs/downtime inside
ANSIBLE_DEFAULT_PATHS = ("~/.ansible/collections", "/usr/share/ansible/collections")


@dataclass(frozen=True)
class Collection:
    root: Path  # the collection's own directory: galaxy.yml, playbooks/, roles/, plugins/, meta/
    own_path: Path  # the collections path that holds root as ansible_collections/simrs/downtime
    checkout: bool  # a git checkout (else an installed wheel)

    @property
    def playbooks(self) -> Path:
        return self.root / "playbooks"

    @property
    def roles(self) -> Path:
        return self.root / "roles"

    @property
    def ansible_cfg(self) -> Path:
        return self.root / "ansible.cfg"

    def collections_path(self) -> list[Path]:
        """Ours first, then where the operator keeps the extra collections."""
        extra = os.environ.get("SIMRS_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATH")
        others = [p for p in extra.split(os.pathsep) if p] if extra else list(ANSIBLE_DEFAULT_PATHS)
        paths = [self.own_path, *(Path(p).expanduser() for p in others)]
        return list(dict.fromkeys(paths))  # once each, in order

    def env(self) -> dict[str, str]:
        """The Ansible settings for every run (ansible-runner's envvars)."""
        return {
            "ANSIBLE_CONFIG": str(self.ansible_cfg),
            "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(str(p) for p in self.collections_path()),
            "ANSIBLE_ROLES_PATH": str(self.roles),
        }

    def version(self) -> str:
        """galaxy.yml's version (read as text: one key, no YAML parser needed)."""
        try:
            for line in (self.root / "galaxy.yml").read_text().splitlines():
                if line.startswith("version:"):
                    return line.split(":", 1)[1].strip().strip("'\"")
        except OSError:
            pass
        return "unknown"


def locate() -> Collection:
    """The collection this orchestrator runs: the installed copy, else the checkout it sits in."""
    installed = INSTALLED / "ansible_collections" / NAMESPACE / NAME
    if (installed / "galaxy.yml").is_file():
        return Collection(installed, INSTALLED, checkout=False)
    if (CHECKOUT / "galaxy.yml").is_file() and (CHECKOUT / "playbooks").is_dir():
        return Collection(CHECKOUT, CHECKOUT / ".collections", checkout=True)
    raise HostError(
        f"the collection {NAMESPACE}.{NAME} is neither in this installation ({installed}) nor in a "
        f"checkout ({CHECKOUT}): reinstall simrs-downtime from its wheel, or run from a git checkout"
    )


def versions() -> dict[str, str]:
    """simrs, the collection and ansible-core, for --version and bug reports."""

    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    try:
        coll = locate()
        collection = f"{coll.version()} ({coll.root})"
    except SimrsError as exc:
        collection = f"not found: {exc}"
    return {
        "simrs": dist("simrs-downtime"),
        f"{NAMESPACE}.{NAME}": collection,
        "ansible-core": dist("ansible-core"),
    }
