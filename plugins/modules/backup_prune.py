#!/usr/bin/python
"""Ansible module simrs.downtime.backup_prune (role backup): retention of the sets on the disk.

Owns which sets stay: per method, the newest good set of each of the last keep_daily days and
keep_weekly ISO weeks that have one, and that day's previous good set while its newest is not
verified yet; always the newest good and the newest verified set of each method; bad sets newer
than every good set (kept for inspection). Everything else is renamed to
a dot-name first (so no reader ever sees half a set) and then removed.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: backup_prune
short_description: Apply the daily/weekly retention to the backup sets of one source host
description:
- Good means not known to be bad (a verify.json saying ok false makes a set bad); verified means a
  verify.json saying ok true. Retention applies to each method (dump, physical) separately.
- Never deletes the newest good set, nor the newest verified one, of any method; directories without
  a manifest under a final name are left alone and reported.
- Within a kept day, a newest set that no verify has passed yet keeps the day's previous good set
  with it, so a second backup of the day that is damaged on the disk cannot leave no good set.
- Removes .partial and .deleting directories left by interrupted runs.
- In check mode, reports what it would delete.
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.backup_disk
options:
  source_host:
    description: Whose sets (the folder under simrs-backups/).
    type: str
    required: true
  keep_daily:
    description: Days (that have a good set) whose newest good set is kept.
    type: int
    default: 7
  keep_weekly:
    description: ISO weeks (that have a good set) whose newest good set is kept.
    type: int
    default: 4
  protect:
    description: Set names never deleted by this run (e.g. the one just written).
    type: list
    elements: str
    default: []
  lock_wait_seconds:
    description: How long to wait for a running backup.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Keep 7 daily and 4 weekly sets of this server
  simrs.downtime.backup_prune:
    mount_point: /media/simrs-backup
    source_host: "{{ inventory_hostname }}"
    keep_daily: 7
    keep_weekly: 4
"""

RETURN = r"""
deleted:
  description: Names of the sets deleted (in check mode, that would be), then of the leftovers removed.
  type: list
  returned: always
kept:
  description: '[{name, reasons}] of the sets kept, oldest first.'
  type: list
  returned: always
incomplete:
  description: Directories under a final name without a manifest (left alone).
  type: list
  returned: always
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.backup import (
    BackupError,
    disk_argument_spec,
    fsync_dir,
    list_sets,
    locked,
    remove_hidden,
    require_mounted,
    source_dir,
)


def second_of_unverified_days(good, keep_daily: int) -> list[tuple[str, str]]:
    """A day's newest set that nobody has verified yet may be the damaged one (a disk error after
    it was written): that day's previous good set stays too, until a verify says so. `good` is
    newest first; only the last keep_daily days that have a set count."""
    by_day: dict = {}
    for s in good:
        by_day.setdefault(s.stamp.date(), []).append(s)
    return [
        (day_sets[1].name, f"daily {rank}: the day's newer set is not verified yet")
        for rank, day_sets in enumerate(list(by_day.values())[:keep_daily], start=1)
        if len(day_sets) > 1 and not day_sets[0].verified_good
    ]


def plan(sets, keep_daily: int, keep_weekly: int, protect: list[str]) -> dict[str, list[str]]:
    """Reasons to keep each complete set; a set without a reason is deleted."""
    reasons: dict[str, list[str]] = {s.name: [] for s in sets}
    for method in sorted({s.method for s in sets}):
        mine = [s for s in sets if s.method == method]
        good = sorted((s for s in mine if not s.known_bad), key=lambda s: s.stamp, reverse=True)
        for label, count, period in (
            ("daily", keep_daily, lambda s: s.stamp.date()),
            ("weekly", keep_weekly, lambda s: s.stamp.isocalendar()[:2]),
        ):
            seen = []
            for s in good:
                slot = period(s)
                if slot not in seen:
                    seen.append(slot)
                    if len(seen) <= count:
                        reasons[s.name].append(f"{label} {len(seen)}")
        for name, why in second_of_unverified_days(good, keep_daily):
            reasons[name].append(why)
        if good:
            reasons[good[0].name].append("newest good")
            verified = [s for s in good if s.verified_good]
            if verified:
                reasons[verified[0].name].append("newest verified")
        newest_good = good[0].stamp if good else None
        for s in mine:
            if s.known_bad and (newest_good is None or s.stamp > newest_good):
                reasons[s.name].append("bad, newer than every good set: kept for inspection")
    for name in protect:
        if name in reasons:
            reasons[name].append("protected")
    return reasons


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **disk_argument_spec(),
            "source_host": {"type": "str", "required": True},
            "keep_daily": {"type": "int", "default": 7},
            "keep_weekly": {"type": "int", "default": 4},
            "protect": {"type": "list", "elements": "str", "default": []},
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
        module.exit_json(changed=False, deleted=[], kept=[], incomplete=[], dir=src)
    if p["keep_daily"] < 1:
        module.fail_json(msg="keep_daily must be at least 1")
    try:
        with locked(src, exclusive=not module.check_mode, wait_seconds=p["lock_wait_seconds"], what="prune"):
            found = list_sets(src)
            complete = [s for s in found if s.complete]
            reasons = plan(complete, p["keep_daily"], p["keep_weekly"], p["protect"])
            doomed = [s for s in complete if not reasons[s.name]]
            deleted = [s.name for s in doomed]
            if not module.check_mode:
                deleted += remove_hidden(src)
                for s in doomed:
                    hidden = os.path.join(src, f".{s.name}.deleting")
                    os.rename(s.path, hidden)
                    fsync_dir(src)
                    shutil.rmtree(hidden)
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=bool(deleted),
        deleted=deleted,
        kept=[{"name": s.name, "reasons": reasons[s.name]} for s in complete if reasons[s.name]],
        incomplete=[s.name for s in found if not s.complete],
        dir=src,
    )


if __name__ == "__main__":
    main()
