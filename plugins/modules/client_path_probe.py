#!/usr/bin/python
"""Ansible module simrs.downtime.client_path_probe: every hop from a client PC to the SIMRS, in one task.

Triage must not grow with the hospital: one task per PC (one round trip) instead of a chain of
tasks, the hops measured in parallel threads, each bounded by its own timeout, and the findings
summarised here rather than in Jinja on the admin machine. Read-only: it opens connections and
reads state, it changes nothing. Standard library only, Python 3.9.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: client_path_probe
short_description: Measure every hop from this client PC to the SIMRS at once and name the first that fails
description:
  - Runs on a client PC. Checks, nearest hop first, the interface's link and address, a route to
    the service IP, name resolution of the SIMRS server name, ping (optional), TCP to the database
    and web ports, and the SIMRS client's own check (O(app_command)).
  - All checks run at once, each bounded by O(timeout) (the application check by 4 x O(timeout) + 1 s),
    so one PC costs one round trip and a few seconds at most, whatever fails.
  - Every check runs and is measured; none is inferred from another.
  - Changes nothing; runs the same in check mode.
version_added: 0.2.0
author:
  - SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.attributes
options:
  service_ip:
    description: The SIMRS service IP (IPv4) the client uses.
    type: str
    required: true
  server_name:
    description: The name the SIMRS client is configured with; it must resolve to O(service_ip).
    type: str
    required: true
  interface:
    description: The client's interface towards the SIMRS.
    type: str
    default: eth0
  address:
    description: The IPv4 address the interface must carry; empty accepts any.
    type: str
    default: ""
  db_port:
    description: The SIMRS database port.
    type: int
    default: 3306
  web_port:
    description: The SIMRS web port.
    type: int
    default: 80
  ping:
    description: Whether to ping the service IP (leave it out where ICMP is filtered).
    type: bool
    default: true
  app_command:
    description:
      - "The SIMRS client's own check as argv; it prints simrs-probe's JSON object with C(ok),
        C(served_by) and C(checks), a list of C(name), C(ok) and C(detail)."
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds each check may take (1 to 60).
    type: int
    default: 2
"""

EXAMPLES = r"""
- name: Probe the path from this client to the SIMRS
  simrs.downtime.client_path_probe:
    service_ip: 198.18.0.10
    server_name: simrs-server
    address: 198.18.0.21
    app_command: [/usr/local/bin/simrs-probe, --json, --config, /etc/simrs/client.conf, --timeout, "2"]
  register: __client_probe_out
"""

RETURN = r"""
result:
  description:
    - C(ok) (every check passed), C(failed_check) (the first failing hop, nearest first, or null),
      C(checks) (each check's C(ok) and C(detail) by name, in hop order - link, address, route,
      resolve, ping, tcp_db, tcp_web, app) and C(served_by) (the server that answered the
      application check, or null).
  type: dict
  returned: always
elapsed_ms:
  description: Milliseconds the checks took together.
  type: int
  returned: always
"""

import json
import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule


def command(argv, timeout):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        return {"rc": 127, "stdout": "", "stderr": "", "msg": str(exc)}
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": "", "msg": f"no answer within {timeout:g} s"}
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def tcp(host, port, timeout):
    # A refused port means the host answered (service down); silence means host or path down.
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return {"ok": True, "detail": f"{host}:{port} open"}
    except ConnectionRefusedError:
        return {"ok": False, "detail": f"{host}:{port} refused"}
    except (TimeoutError, socket.timeout):
        return {"ok": False, "detail": f"{host}:{port} no answer within {timeout:g} s"}
    except OSError as exc:
        return {"ok": False, "detail": f"{host}:{port} {exc.strerror or exc}"}


def _why(res, program):
    return (res.get("stderr") or "").strip() or res.get("msg") or f"{program} exited {res['rc']}"


def _json_first(res):
    if res["rc"] != 0:
        return {}
    try:
        items = json.loads(res["stdout"])
    except ValueError:
        return {}
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _link_and_address(p, res):
    iface = _json_first(res)
    flags = iface.get("flags") or []
    inet = [a for a in iface.get("addr_info") or [] if a.get("family") == "inet"]
    inet_text = ", ".join(f"{a.get('local')}/{a.get('prefixlen')}" for a in inet)
    locals_ = [a.get("local") for a in inet]
    dev, want = p["interface"], p["address"]
    if res["rc"] != 0:
        link = _why(res, "ip")
        address = f"no interface {dev}"
    else:
        link = f"{dev} is {iface.get('operstate', 'UNKNOWN')} <{','.join(flags)}>"
        if not inet:
            address = f"{dev} has no IPv4 address"
        elif want and want not in locals_:
            address = f"{dev} has {inet_text}, not {want}"
        else:
            address = f"{dev} has {inet_text}"
    return (
        {"ok": "UP" in flags and "LOWER_UP" in flags, "detail": link},
        {"ok": (want in locals_) if want else bool(inet), "detail": address},
    )


def _route(p, res):
    route = _json_first(res)
    if res["rc"] != 0:
        detail = _why(res, "ip")
    else:
        detail = (
            p["service_ip"]
            + (f" via {route['gateway']}" if "gateway" in route else "")
            + f" dev {route.get('dev', '?')}"
            + (f" src {route['prefsrc']}" if "prefsrc" in route else "")
        )
    return {"ok": res["rc"] == 0 and "dev" in route, "detail": detail}


def _resolve(p, res):
    ip, name = p["service_ip"], p["server_name"]
    resolved = []
    for line in res["stdout"].splitlines():
        first = line.split()[0] if line.split() else ""
        if first and first not in resolved:
            resolved.append(first)
    if res["rc"] == 124:
        detail = f"{name}: no answer from the resolver within {p['timeout']} s"
    elif res["rc"] == 2:
        detail = f"{name} is not known (hosts file or DNS)"
    elif res["rc"] != 0:
        detail = _why(res, "getent")
    else:
        detail = f"{name} -> {', '.join(resolved)}" + ("" if ip in resolved else f", not the service IP {ip}")
    return {"ok": res["rc"] == 0 and ip in resolved, "detail": detail}


def _ping(p, res):
    ip = p["service_ip"]
    if res["rc"] == 0:
        found = re.search(r"time=[0-9.]+ ms", res["stdout"])
        detail = f"reply from {ip}, " + (found.group(0) if found else "")
    elif res["rc"] == 1:
        detail = f"no reply from {ip} within {p['timeout']} s"
    else:
        detail = _why(res, "ping")
    return {"ok": res["rc"] == 0, "detail": detail}


def _app(p, res):
    """(check, served_by) from the SIMRS client's own check."""
    try:
        data = json.loads(res["stdout"]) if res["stdout"].strip().startswith("{") else {}
    except ValueError:
        data = {}
    ok = res["rc"] == 0 and bool(data.get("ok"))
    failed = next((c for c in data.get("checks") or [] if not c.get("ok")), None)
    if ok:
        names = ", ".join(str(c.get("name")) for c in data.get("checks") or [])
        detail = f"served by {data.get('served_by')}: {names} ok"
    elif failed is not None and failed.get("name"):
        detail = f"{failed['name']} failed: {failed.get('detail', '')}"
    elif "error" in data:
        detail = str(data["error"])
    elif res["rc"] == 124:
        detail = f"no answer within {p['timeout'] * 4 + 1} s"
    else:
        detail = (res.get("stderr") or "").strip() or res.get("msg") or f"exited {res['rc']} without a result"
    return {"ok": ok, "detail": detail}, data.get("served_by")


def summarise(p, raw):
    """The findings ({ok, failed_check, checks, served_by}) from the raw results of each check,
    in hop order, nearest first: the first failing one is where the path breaks."""
    checks = {}
    checks["link"], checks["address"] = _link_and_address(p, raw["ip_address"])
    checks["route"] = _route(p, raw["ip_route"])
    checks["resolve"] = _resolve(p, raw["getent"])
    if p["ping"]:
        checks["ping"] = _ping(p, raw["ping"])
    checks["tcp_db"] = raw["tcp_db"]
    checks["tcp_web"] = raw["tcp_web"]
    checks["app"], served_by = _app(p, raw["app"])
    failed = [k for k, v in checks.items() if not v["ok"]]
    return {
        "ok": not failed,
        "failed_check": failed[0] if failed else None,
        "checks": checks,
        "served_by": served_by,
    }


def probe(p):
    """Run every check at once; return the raw results by name."""
    t = p["timeout"]
    ip = p["service_ip"]
    jobs = {
        "ip_address": (command, (["ip", "-json", "address", "show", "dev", p["interface"]], t + 3)),
        "ip_route": (command, (["ip", "-json", "route", "get", ip], t + 3)),
        "getent": (command, (["getent", "ahostsv4", p["server_name"]], t)),
        "app": (command, ([str(a) for a in p["app_command"]], t * 4 + 1)),
        "tcp_db": (tcp, (ip, p["db_port"], t)),
        "tcp_web": (tcp, (ip, p["web_port"], t)),
    }
    if p["ping"]:
        jobs["ping"] = (command, (["ping", "-n", "-c1", f"-W{t}", f"-w{t}", ip], t + 2))
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(fn, *args) for name, (fn, args) in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def main():
    module = AnsibleModule(
        argument_spec={
            "service_ip": {"type": "str", "required": True},
            "server_name": {"type": "str", "required": True},
            "interface": {"type": "str", "default": "eth0"},
            "address": {"type": "str", "default": ""},
            "db_port": {"type": "int", "default": 3306},
            "web_port": {"type": "int", "default": 80},
            "ping": {"type": "bool", "default": True},
            "app_command": {"type": "list", "elements": "str", "required": True},
            "timeout": {"type": "int", "default": 2},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not 1 <= p["timeout"] <= 60:
        module.fail_json(msg=f"timeout is {p['timeout']}; use 1 to 60 seconds")
    for key in ("db_port", "web_port"):
        if not 1 <= p[key] <= 65535:
            module.fail_json(msg=f"{key} is {p[key]}; use 1 to 65535")
    if not p["app_command"]:
        module.fail_json(msg="app_command is empty: give the SIMRS client's own check as argv")
    start = time.monotonic()
    raw = probe(p)
    module.exit_json(
        changed=False,
        result=summarise(p, raw),
        elapsed_ms=int((time.monotonic() - start) * 1000),
    )


if __name__ == "__main__":
    main()
