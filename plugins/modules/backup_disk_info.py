#!/usr/bin/python
"""Ansible module simrs.downtime.backup_disk_info (role backup): what is mounted where the disk goes.

One read-only look at the external backup disk's mount point, so that the role's preflight can
judge it with clear messages: is a filesystem mounted there (or is it a plain folder), which
device, label and UUID (where the device can be read), read-only or not, the marker file, the
free space. Changes nothing; runs the same in check mode.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: backup_disk_info
short_description: Describe the filesystem mounted at the external backup disk's mount point
description:
- Reads the mount table (findmnt), the marker file C(.simrs-backup-disk) and the free space.
- Writability is asked of the kernel (access(2)), which answers EROFS for a read-only mount; nothing
  is written.
- Inside a container (or on a bind mount) the device's label and UUID cannot be read; they are
  then empty and only the marker can prove which disk it is.
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.backup_disk
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Look at the external disk
  simrs.downtime.backup_disk_info:
    mount_point: /media/simrs-backup
  register: __backup_disk_info
"""

RETURN = r"""
disk:
  description:
  - exists, mounted, source, fstype, options (list), device_label, device_uuid, writable,
    marker (the marker's key=value fields, null without a marker), free_bytes.
  type: dict
  returned: always
"""

import json
import os
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.backup import (
    disk_argument_spec,
    free_bytes,
    read_marker,
)


def mount_of(mount_point: str) -> dict:
    """findmnt's view of the mount point ({} when nothing is mounted there)."""
    if not os.path.ismount(mount_point):
        return {}
    if shutil.which("findmnt"):
        proc = subprocess.run(
            [
                "findmnt",
                "--json",
                "--output",
                "SOURCE,FSTYPE,OPTIONS,LABEL,UUID",
                "--mountpoint",
                mount_point,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if proc.returncode == 0:
            return json.loads(proc.stdout)["filesystems"][0]
    # No findmnt (a minimal system): the kernel's own table, without label and UUID; the last
    # mount on a path is the one in effect.
    found: dict = {}
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        for line in mounts:
            source, target, fstype, options = line.split()[:4]
            if target == mount_point:
                found = {"source": source, "fstype": fstype, "options": options}
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec=disk_argument_spec(),
        supports_check_mode=True,
    )
    mount_point = module.params["mount_point"].rstrip("/") or "/"
    fs = mount_of(mount_point)
    mounted = bool(fs)
    disk = {
        "exists": os.path.isdir(mount_point),
        "mounted": mounted,
        "source": fs.get("source") or "",
        "fstype": fs.get("fstype") or "",
        "options": (fs.get("options") or "").split(",") if mounted else [],
        "device_label": fs.get("label") or "",
        "device_uuid": fs.get("uuid") or "",
        "writable": mounted and os.access(mount_point, os.W_OK),
        "marker": read_marker(mount_point) if mounted else None,
        "free_bytes": free_bytes(mount_point) if mounted else 0,
    }
    module.exit_json(changed=False, disk=disk)


if __name__ == "__main__":
    main()
