#!/usr/bin/python
"""Ansible module simrs.downtime.backup_verify (role backup): re-hash sets against their manifests.

Owns the judgement "good or bad" of docs/backup-format.md: a set is good when every file its
manifest lists is there with the same size and sha256. Reads only; verify.json is written by the
role (ansible.builtin.copy), so this module runs the same in check mode.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: backup_verify
short_description: Re-hash the backup sets of one source host on the external disk
description:
- Every complete set (or the one named in O(set)) is re-hashed file by file against its manifest;
  encrypted files are hashed as stored, so no key is needed.
- Shipped binary logs are checked against their C(.sha256) files.
- Reads only; holds a shared lock so a prune cannot delete a set while it is read.
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.backup_disk
options:
  source_host:
    description: Whose sets to verify (the folder under simrs-backups/).
    type: str
    required: true
  set:
    description: Verify only this set (its directory name); empty for all.
    type: str
    default: ''
  binlogs:
    description: Also check the shipped binary logs.
    type: bool
    default: true
  lock_wait_seconds:
    description: How long to wait for a running backup or prune.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Re-hash every set of this server
  simrs.downtime.backup_verify:
    mount_point: /media/simrs-backup
    source_host: "{{ inventory_hostname }}"
  register: __backup_verify
"""

RETURN = r"""
sets:
  description:
  - One entry per set, oldest first, with name, method, ok, bad_files, detail, created_at, age_seconds,
    size, manifest_sha256 and the previous verify.json (previous_verify).
  type: list
  returned: success
newest_good:
  description: Name of the newest good set (null when none).
  type: str
  returned: success
binlogs:
  description: '{dir, count, bad: [names], unchecked: [names without .sha256]}'
  type: dict
  returned: success
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.backup import (
    BINLOG_RE,
    MANIFEST,
    BackupError,
    binlog_dir,
    disk_argument_spec,
    iso,
    list_sets,
    locked,
    parse_iso,
    require_mounted,
    sha256_file,
    source_dir,
    utcnow,
)


def check_set(backup_set, now) -> dict:
    manifest = backup_set.manifest
    entry = {
        "name": backup_set.name,
        "method": backup_set.method,
        "created_at": iso(backup_set.stamp),
        "age_seconds": int((now - backup_set.stamp).total_seconds()),
        "size": backup_set.size,
        "previous_verify": backup_set.verify,
        "manifest_sha256": None,
        "encrypted": bool((backup_set.manifest or {}).get("encrypted")),
        # age (to recipients) or openssl (the older passphrase): which secret a test restore needs.
        "encryption": "age"
        if ((backup_set.manifest or {}).get("encryption") or {}).get("tool") == "age"
        else "openssl"
        if (backup_set.manifest or {}).get("encrypted")
        else None,
    }
    if manifest is None:
        return {
            **entry,
            "ok": False,
            "bad_files": [MANIFEST],
            "detail": "no readable manifest.json: not a complete set, never restore it",
        }
    with open(os.path.join(backup_set.path, MANIFEST), "rb") as handle:
        entry["manifest_sha256"] = hashlib.sha256(handle.read()).hexdigest()
    if manifest.get("created_at"):
        created = parse_iso(manifest["created_at"])
        entry["created_at"] = manifest["created_at"]
        entry["age_seconds"] = int((now - created).total_seconds())
    bad, problems = [], []
    for item in manifest.get("files", []):
        path = os.path.join(backup_set.path, item["name"])
        if not os.path.isfile(path):
            bad.append(item["name"])
            problems.append(f"{item['name']} is missing")
            continue
        size, digest = sha256_file(path)
        if size != item.get("size") or digest != item.get("sha256"):
            bad.append(item["name"])
            problems.append(
                f"{item['name']} does not match its manifest ("
                + (
                    f"size {size} instead of {item.get('size')}"
                    if size != item.get("size")
                    else "sha256 differs"
                )
                + ")"
            )
    if not manifest.get("files"):
        problems.append("the manifest lists no files")
    ok = not problems
    detail = (
        f"good: {len(manifest['files'])} files match their sha256" if ok else "BAD: " + "; ".join(problems)
    )
    return {**entry, "ok": ok, "bad_files": bad, "detail": detail}


def check_binlogs(directory: str) -> dict:
    result = {"dir": directory, "count": 0, "bad": [], "unchecked": []}
    if not os.path.isdir(directory):
        return result
    for name in sorted(os.listdir(directory)):
        if not BINLOG_RE.match(name):
            continue
        result["count"] += 1
        sidecar = os.path.join(directory, name + ".sha256")
        try:
            with open(sidecar, encoding="utf-8") as handle:
                expected = handle.read().split()[0]
        except (FileNotFoundError, IndexError):
            result["unchecked"].append(name)
            continue
        if sha256_file(os.path.join(directory, name))[1] != expected:
            result["bad"].append(name)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **disk_argument_spec(),
            "source_host": {"type": "str", "required": True},
            "set": {"type": "str", "default": ""},
            "binlogs": {"type": "bool", "default": True},
            "lock_wait_seconds": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    p = module.params
    src = source_dir(p["mount_point"], p["source_host"])
    try:
        require_mounted(p["mount_point"])
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    if not os.path.isdir(src):
        module.fail_json(
            msg=f"there are no backups of {p['source_host']} on this disk ({src} does not exist)"
        )
    try:
        with locked(src, exclusive=False, wait_seconds=p["lock_wait_seconds"], what="verify"):
            sets = [s for s in list_sets(src) if s.name == p["set"] or not p["set"]]
            now = utcnow()
            results = [check_set(s, now) for s in sets]
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    if p["set"] and not results:
        names = ", ".join(s.name for s in list_sets(src)) or "none"
        module.fail_json(msg=f"there is no set named {p['set']} in {src} (sets there: {names})")
    good = [r["name"] for r in results if r["ok"]]
    binlogs = check_binlogs(binlog_dir(p["mount_point"], p["source_host"])) if p["binlogs"] else None
    module.exit_json(
        changed=False, sets=results, newest_good=good[-1] if good else None, binlogs=binlogs, dir=src
    )


if __name__ == "__main__":
    main()
