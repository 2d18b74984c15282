# Copyright: the simrs project. GNU General Public License v3.0+
"""The lab's connection: containers.podman.podman, with Ansible pipelining."""

from __future__ import annotations

# Ansible's plugin layout puts DOCUMENTATION before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
name: podman
short_description: Run tasks in the lab's podman containers, with pipelining
description:
  - The built-in lab hospital's hosts are podman containers. This is the C(containers.podman.podman)
    connection with one change; it sends a module over C(podman exec -i)'s standard input
    (Ansible pipelining) instead of copying it into a temporary folder first.
  - One C(podman exec) per task instead of three, which matters for a failover that runs about
    forty tasks. A real hospital uses SSH with pipelining; this plays the same part in the lab.
author: simrs project
version_added: 0.1.0
options:
  remote_addr:
    description: The container's ID or name.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
      - name: ansible_podman_host
  remote_user:
    description: The user in the container (the image's default when unset).
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments for every podman command.
    default: ''
    ini:
      - section: defaults
        key: podman_extra_args
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman command.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
  pipelining:
    description: Send modules over standard input instead of copying them first.
    default: true
    type: boolean
    ini:
      - section: connection
        key: pipelining
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""

import re
import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import (
    Connection as PodmanConnection,
)

# podman exec's exit codes when podman itself failed (podman-exec(1) says 125; a stopped
# container gives 255 on the podman our machines run), with an "Error: ..." line on stderr (maybe
# after warnings) and nothing on stdout (a module that fails prints its JSON there).
PODMAN_ERRORS = (125, 255)


class Connection(PodmanConnection):
    """containers.podman.podman with pipelining: `podman exec -i` passes the module on stdin."""

    transport = "simrs.downtime.podman"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        """Run a command in the container; with -i when there is input to pass on."""
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("-i")
        if self.user:
            args.extend(("--user", self.user))
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        rc, stdout, stderr = self._podman(args, argv, in_data)
        # podman's own failure (the container is stopped or gone), not the command's: the host is
        # unreachable, as with SSH's 255. Without pipelining Ansible found this out while making its
        # temporary folder; with it, the module's run is the first exec.
        if rc in PODMAN_ERRORS and not stdout.strip() and re.search(rb"^Error: ", stderr, re.MULTILINE):
            raise AnsibleConnectionFailure(
                f"podman cannot run commands in {self._container_id}: {to_native(stderr).strip()}"
            )
        return rc, stdout, stderr
