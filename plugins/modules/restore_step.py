#!/usr/bin/python
"""Ansible module simrs.downtime.restore_step (role restore): one step of a restore on the standby.

A thin entry point: the steps live in module_utils/restore.py (standard library and the MariaDB
tools only). As a module it is sent over the connection's standard input (pipelining) instead of
being copied to the host for every step, as `ansible.builtin.script` did: about 0.4 s less per
step, and a restore runs ten to fourteen of them.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: restore_step
short_description: Run one step of the restore role on the standby
description:
- Runs one step of the restore (scan the external disk, copy a dump set, load it or unpack a physical
  set straight from the disk into a fresh database or data folder, hashing the bytes as they are
  read, count rows, replay binary logs, switch, recreate accounts, mark, clean up) and
  returns its result. The steps and their parameters are described in module_utils/restore.py;
  the restore role is their only caller.
- A step that cannot go on fails with the operator's explanation as its message and leaves the
  live data as the step describes (a fresh copy is removed, a switched folder is switched back by
  the role's next step).
- The private key of a set encrypted to age recipients comes in O(identity), the passphrase of an
  older openssl-encrypted set in O(encryption_key) (both no_log), never in the task's environment
  (that would put it on the host's command line and in sudo's log); age and openssl read it from a
  pipe, never a file.
- Not in check mode, except with the task's check_mode false (the read-only steps scan and state).
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
options:
  step:
    description: The step to run.
    type: str
    required: true
    choices: [scan, copy, state, load, counts, replay, switch, accounts, mark, cleanup, unpack, dswitch,
              dback, dfinish]
  params:
    description: The step's parameters (paths, databases, the MariaDB tools' commands, ...).
    type: dict
    required: true
  identity:
    description: The age private key (AGE-SECRET-KEY-1...) of a set encrypted to age recipients
      (steps scan, load, unpack, replay, accounts). Keep it in Ansible Vault. Never logged.
    type: str
    default: ""
  encryption_key:
    description: The passphrase of an older openssl-encrypted set (steps load, unpack, replay,
      accounts). Keep it in Ansible Vault. Never logged.
    type: str
    default: ""
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the backup sets on the external disk and check them against their manifests
  simrs.downtime.restore_step:
    step: scan
    params:
      mount_point: /media/simrs-backup
      source_host: srv-simrs-01
      methods: [physical, dump]
      databases: [sik]
  register: __restore_scan_run
  check_mode: false
"""

RETURN = r"""
out:
  description: The step's result (for example scan - the sets checked newest first and the chosen
    one; copy - the local copy's path; unpack - the fresh data folder; counts - ok and the
    mismatches).
  type: dict
  returned: success
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.simrs.downtime.plugins.module_utils.restore import (
    STEPS,
    StepError,
    set_identity,
    set_key,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "step": {"type": "str", "required": True, "choices": sorted(STEPS)},
            "params": {"type": "dict", "required": True},
            "identity": {"type": "str", "default": "", "no_log": True},
            "encryption_key": {"type": "str", "default": "", "no_log": True},
        },
        supports_check_mode=False,
    )
    set_key(module.params["encryption_key"])
    set_identity(module.params["identity"])
    try:
        out = STEPS[module.params["step"]](module.params["params"])
    except StepError as exc:
        module.fail_json(msg=str(exc))
    # Plain JSON, as the steps' results always were (paths and times become text). The role
    # decides what counts as a change (changed_when on each step's result).
    module.exit_json(changed=False, out=json.loads(json.dumps(out, default=str)))


if __name__ == "__main__":
    main()
