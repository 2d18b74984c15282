#!/usr/bin/python
"""Ansible module simrs.downtime.service_ip_takeover: the service IP taken in one round trip.

The role ip_takeover ran a chain of remote tasks for a move (look, detection, add, announce, the
boot-time configuration, look again), each one a connection to the server; at the deadline of a
failover every one of them is time the hospital works on paper. This module does the same steps
on the server in one call, in the same order and with the same safety rule: duplicate-address
detection first, always (also when this host already holds the address), and nothing changed
while another host answers. Only the standard library and the iproute2/iputils tools.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: service_ip_takeover
short_description: Take the SIMRS service IP as an additional address, detection first
description:
  - Looks at the addresses of O(interface) and whether O(env_file) exists.
  - Runs duplicate-address detection (C(arping -D)) for O(address), also when this host holds it
    already. While another host answers, nothing is changed and RV(dad.free) is false (the caller
    refuses, naming RV(dad.answered_by)).
  - Otherwise adds O(address)/O(prefix) next to the other addresses when it is not there, sends
    gratuitous ARP (C(arping -U) and C(arping -A) at once, O(garp_count) each, one a second: the
    first of each at once, the rest after the call returned), and with O(persistent) writes
    O(env_content) to O(env_file) and enables and starts O(unit).
  - Looks at the addresses again and returns both views.
  - In check mode only the look and the detection run.
version_added: 0.4.0
author:
  - SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.attributes
options:
  address:
    description: The service IP (IPv4, without the prefix).
    type: str
    required: true
  prefix:
    description: Its prefix length.
    type: int
    required: true
  interface:
    description: The interface that carries it.
    type: str
    required: true
  dad_count:
    description: Detection probes to send.
    type: int
    default: 2
  dad_timeout:
    description: Seconds to wait for an answer to them.
    type: int
    default: 3
  garp_count:
    description: Gratuitous ARP requests, and as many replies, to send.
    type: int
    default: 2
  persistent:
    description: Keep the address over a reboot through O(unit) and O(env_file).
    type: bool
    default: false
  env_file:
    description: The unit's configuration file.
    type: path
    default: /etc/simrs/service-ip.env
  env_content:
    description: What O(env_file) must hold (with O(persistent)).
    type: str
    default: ""
  unit:
    description: The systemd unit that takes the address at boot.
    type: str
    default: simrs-service-ip.service
"""

EXAMPLES = r"""
- name: Take over the service IP
  simrs.downtime.service_ip_takeover:
    address: 198.18.0.10
    prefix: 24
    interface: eth0
  register: __ip_takeover_move
"""

RETURN = r"""
addresses_before:
  description: IPv4 addresses on O(interface) before anything was done.
  type: list
  elements: str
  returned: always
addresses_after:
  description: IPv4 addresses on O(interface) at the end.
  type: list
  elements: str
  returned: always
held_before:
  description: Whether O(address) was on O(interface) before.
  type: bool
  returned: always
env_file_existed:
  description: Whether O(env_file) existed before.
  type: bool
  returned: always
dad:
  description: The detection, C({ran, free, answered_by}) (MAC addresses, lower case).
  type: dict
  returned: always
added:
  description: Whether the address was added in this call.
  type: bool
  returned: always
garp_sent:
  description:
    - Gratuitous ARP packets sent (requests plus replies; 0 in check mode or when refused). The
      first request and reply are out when the call returns, the rest follow one a second.
  type: int
  returned: always
persistence_changed:
  description: Whether O(env_file) was written or O(unit) enabled or started in this call.
  type: bool
  returned: always
"""

import json
import os
import re
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

# How long a starting announcement may take to fail (arping fails within milliseconds).
GARP_START_S = 0.3

REPLY = re.compile(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]")


def addresses(module: AnsibleModule, interface: str) -> list[str]:
    rc, out, err = module.run_command(["ip", "-j", "-4", "addr", "show", "dev", interface])
    if rc != 0:
        module.fail_json(msg=f"ip addr show dev {interface} failed: {err.strip() or out.strip()}")
    found = []
    for iface in json.loads(out or "[]"):
        for info in iface.get("addr_info", []):
            if info.get("family") == "inet":
                found.append(info.get("local"))
    return found


def detect(module: AnsibleModule, p: dict) -> dict:
    argv = ["arping", "-D", "-c", str(p["dad_count"]), "-w", str(p["dad_timeout"])]
    rc, out, err = module.run_command([*argv, "-I", p["interface"], p["address"]])
    if rc not in (0, 1):
        module.fail_json(msg=f"duplicate-address detection failed (rc {rc}): {err.strip() or out.strip()}")
    macs = sorted({m.lower() for m in REPLY.findall(out)})
    return {"ran": True, "free": rc == 0, "answered_by": macs}


def announce(module: AnsibleModule, p: dict) -> list:
    """Unsolicited requests and replies at once (clients differ in which they accept), started in
    their own session: each sends its first packet at once and the rest one a second, after this
    call has returned (arping waits a second after its last packet; the takeover does not wait with
    it). Returns the processes, for ``announced``."""
    base = ["arping", "-c", str(p["garp_count"]), "-I", p["interface"], p["address"]]
    procs = []
    for flag in ("-U", "-A"):
        err = tempfile.TemporaryFile()  # noqa: SIM115  (the announcement's own, read on failure)
        proc = subprocess.Popen(
            [base[0], flag, *base[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        procs.append((proc, err))
    return procs


def announced(module: AnsibleModule, p: dict, procs: list, began: float) -> int:
    """The announcements that failed at their start (a wrong option, no permission, no interface)
    fail the call; those still sending finish alone. arping exits 1 when nobody replies, which is
    normal for an announcement."""
    for proc, err in procs:
        while proc.poll() is None and time.monotonic() - began < GARP_START_S:
            time.sleep(0.02)
        if proc.returncode not in (None, 0, 1):
            err.seek(0)
            why = err.read().decode(errors="replace").strip()
            module.fail_json(msg=f"gratuitous ARP failed (rc {proc.returncode}): {why}")
        err.close()
    return p["garp_count"] * 2


def persist(module: AnsibleModule, p: dict) -> bool:
    changed = False
    path = p["env_file"]
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o755)
        changed = True
    current = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            current = f.read()
    if current != p["env_content"]:
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(p["env_content"])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        changed = True
    elif (os.stat(path).st_mode & 0o777) != 0o644:
        os.chmod(path, 0o644)
        changed = True
    unit = p["unit"]
    enabled = module.run_command(["systemctl", "is-enabled", unit])[1].strip()
    if enabled != "enabled":
        rc, out, err = module.run_command(["systemctl", "enable", unit])
        if rc != 0:
            module.fail_json(msg=f"systemctl enable {unit} failed: {err.strip() or out.strip()}")
        changed = True
    active = module.run_command(["systemctl", "is-active", unit])[1].strip()
    if active != "active":
        rc, out, err = module.run_command(["systemctl", "start", unit])
        if rc != 0:
            module.fail_json(msg=f"systemctl start {unit} failed: {err.strip() or out.strip()}")
        changed = True
    return changed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "address": {"type": "str", "required": True},
            "prefix": {"type": "int", "required": True},
            "interface": {"type": "str", "required": True},
            "dad_count": {"type": "int", "default": 2},
            "dad_timeout": {"type": "int", "default": 3},
            "garp_count": {"type": "int", "default": 2},
            "persistent": {"type": "bool", "default": False},
            "env_file": {"type": "path", "default": "/etc/simrs/service-ip.env"},
            "env_content": {"type": "str", "default": ""},
            "unit": {"type": "str", "default": "simrs-service-ip.service"},
        },
        supports_check_mode=True,
    )
    p = module.params
    before = addresses(module, p["interface"])
    held = p["address"] in before
    out = {
        "addresses_before": before,
        "held_before": held,
        "env_file_existed": os.path.exists(p["env_file"]),
        "dad": detect(module, p),
        "added": False,
        "garp_sent": 0,
        "persistence_changed": False,
    }
    if out["dad"]["free"] and not module.check_mode:
        if not held:
            cidr = f"{p['address']}/{p['prefix']}"
            rc, o, err = module.run_command(["ip", "addr", "add", cidr, "dev", p["interface"]])
            if rc != 0:
                why = err.strip() or o.strip()
                module.fail_json(msg=f"ip addr add {cidr} dev {p['interface']} failed: {why}")
            out["added"] = True
        # Sent on every run: a run resumed after a crash between the add and the announcement
        # must still announce. The boot-time configuration is written while they go out.
        began = time.monotonic()
        procs = announce(module, p)
        if p["persistent"]:
            out["persistence_changed"] = persist(module, p)
        out["garp_sent"] = announced(module, p, procs, began)
    out["addresses_after"] = addresses(module, p["interface"])
    module.exit_json(changed=out["added"] or out["persistence_changed"], **out)


if __name__ == "__main__":
    main()
