#!/usr/bin/python
"""Ansible module simrs.downtime.backup_list (role backup): what is on the external disk.

Owns the cheap, read-only view of the sets of one source host that `simrs backup list` shows:
each set's manifest summary and its last verdict (verify.json), the sets still being written or
deleted, and the shipped binary logs. Hashes nothing (that is backup_verify's job) and takes no
lock, so it answers at once even while a backup runs; a set renamed away while it is read is
simply not listed. Runs the same in check mode.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: backup_list
short_description: List the backup sets of one source host on the external disk
description:
- Reads every set's C(manifest.json) and C(verify.json) (docs/backup-format.md); nothing is hashed.
- Lists the sets being written (C(.partial)) or deleted (C(.deleting)) apart, and counts the
  shipped binary logs.
- Reads only and takes no lock, so it answers while a backup or a verify is running.
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.backup_disk
options:
  source_host:
    description: Whose sets to list (the folder under simrs-backups/).
    type: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: List the sets of this server
  simrs.downtime.backup_list:
    mount_point: /media/simrs-backup
    source_host: "{{ inventory_hostname }}"
  register: __backup_list
"""

RETURN = r"""
sets:
  description:
  - One entry per set, oldest first - name, method, complete (has a manifest), created_at,
    age_seconds, size, encrypted, row_total, last_visit, binlog, and verify (the set's verify.json -
    verified_at, ok, bad_files, test_restore; null when never verified).
  type: list
  returned: success
in_progress:
  description: Sets being written (.partial) or deleted (.deleting), as {name, kind}.
  type: list
  returned: success
binlogs:
  description: '{dir, count, newest, newest_age_seconds} of the shipped binary logs.'
  type: dict
  returned: success
dir:
  description: The folder of the sets.
  type: str
  returned: success
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.backup import (
    BINLOG_RE,
    HIDDEN_RE,
    BackupError,
    binlog_dir,
    disk_argument_spec,
    iso,
    list_sets,
    parse_iso,
    require_mounted,
    source_dir,
    utcnow,
)


def describe(backup_set, now) -> dict:
    manifest = backup_set.manifest or {}
    created = backup_set.stamp
    if manifest.get("created_at"):
        try:
            created = parse_iso(manifest["created_at"])
        except ValueError:
            created = backup_set.stamp
    verify = backup_set.verify
    return {
        "name": backup_set.name,
        "method": backup_set.method,
        "complete": backup_set.complete,
        "created_at": iso(created),
        "age_seconds": int((now - created).total_seconds()),
        "size": backup_set.size,
        "encrypted": bool(manifest.get("encrypted")),
        "row_total": sum(int(v) for v in (manifest.get("row_counts") or {}).values()),
        "last_visit": manifest.get("last_visit"),
        "binlog": manifest.get("binlog"),
        "verify": (
            {
                "verified_at": verify.get("verified_at"),
                "ok": verify.get("ok"),
                "bad_files": verify.get("bad_files") or [],
                "test_restore": verify.get("test_restore"),
            }
            if verify is not None
            else None
        ),
    }


def shipped_binlogs(directory: str, now) -> dict:
    result = {"dir": directory, "count": 0, "newest": None, "newest_age_seconds": None}
    if not os.path.isdir(directory):
        return result
    names = sorted(name for name in os.listdir(directory) if BINLOG_RE.match(name))
    result["count"] = len(names)
    if names:
        newest = names[-1]
        try:
            mtime = os.stat(os.path.join(directory, newest)).st_mtime
        except FileNotFoundError:
            return result
        result["newest"] = newest
        result["newest_age_seconds"] = int(now.timestamp() - mtime)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **disk_argument_spec(),
            "source_host": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        require_mounted(p["mount_point"])
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    src = source_dir(p["mount_point"], p["source_host"])
    now = utcnow()
    sets = [describe(s, now) for s in list_sets(src)]
    in_progress = []
    if os.path.isdir(src):
        for name in sorted(os.listdir(src)):
            match = HIDDEN_RE.match(name)
            if match:
                in_progress.append({"name": match["name"], "kind": match["kind"]})
    module.exit_json(
        changed=False,
        sets=sets,
        in_progress=in_progress,
        binlogs=shipped_binlogs(binlog_dir(p["mount_point"], p["source_host"]), now),
        dir=src,
    )


if __name__ == "__main__":
    main()
