#!/usr/bin/python
"""Ansible module simrs.downtime.ipmi_power_state (role power): read a server's power from its BMC.

community.general.ipmi_power has no read-only call: asked in check mode it reports a change
whenever the server is not in the asked state, so a status check would count as a change (and a
second failover would not be idempotent). This module only reads the chassis power state. It runs
on the admin machine and needs pyghmi there (a dependency of simrs).
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: ipmi_power_state
short_description: Read a server's power state from its BMC over IPMI (read-only)
description:
- Logs in to the BMC over IPMI 2.0 (RMCP+) and reads the chassis power state; never switches.
- A BMC that refuses the login or does not answer fails the task with the BMC's own message.
version_added: 0.1.0
author:
- SIMRS downtime automation maintainers
requirements:
- pyghmi (on the host that runs the module, the admin machine)
options:
  name:
    description: Address of the BMC.
    type: str
    required: true
  port:
    description: UDP port of the BMC.
    type: int
    default: 623
  user:
    description: BMC account (power control rights suffice).
    type: str
    required: true
  password:
    description: Its password (keep it in Ansible Vault).
    type: str
    required: true
    no_log: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the primary's power state
  simrs.downtime.ipmi_power_state:
    name: 10.10.9.11
    user: simrs-power
    password: "{{ vault_power_ipmi_password }}"
  delegate_to: localhost
  register: power
"""

RETURN = r"""
powerstate:
  description: The chassis power state the BMC reports.
  type: str
  returned: success
  sample: "on"
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from pyghmi.ipmi import command

    PYGHMI_ERROR = None
except ImportError:
    PYGHMI_ERROR = traceback.format_exc()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "port": {"type": "int", "default": 623},
            "user": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
        },
        supports_check_mode=True,
    )
    if PYGHMI_ERROR is not None:
        module.fail_json(msg=missing_required_lib("pyghmi"), exception=PYGHMI_ERROR)
    p = module.params
    try:
        bmc = command.Command(bmc=p["name"], userid=p["user"], password=p["password"], port=p["port"])
        answer = bmc.get_power()
    except Exception as exc:  # pyghmi raises its own and socket errors; the message is the BMC's
        text = str(exc)
        if text in ("", "None"):  # pyghmi's timeout carries no message
            text = f"no answer (IPMI over UDP {p['name']}:{p['port']}): the BMC did not answer the login"
        module.fail_json(msg=text)
    if "error" in answer:
        module.fail_json(msg=str(answer["error"]))
    module.exit_json(changed=False, powerstate=answer.get("powerstate"))


if __name__ == "__main__":
    main()
