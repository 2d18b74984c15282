#!/usr/bin/python
"""Ansible module simrs.downtime.tcp_probe: one bounded TCP connection attempt, read-only.

It exists because ansible.builtin.wait_for cannot tell a refused port (the host is up, the
service is not) from a silent one (the host or the path is down), and that difference is what
separates a dead service from a dead server. Only the standard library: it runs on any admin
machine, where nc or ping may not be installed.
"""

from __future__ import annotations

# Ansible's module layout puts DOCUMENTATION, EXAMPLES and RETURN before the imports.
# ruff: noqa: E402

DOCUMENTATION = r"""
---
module: tcp_probe
short_description: Open one TCP connection with a bounded timeout and say how it ended
description:
  - Connects to O(host):O(port) once, closes the connection at once and sends nothing.
  - Tells an open port from a refused one (the host answered, nothing listens) and from
    silence (no answer within O(timeout) - host off, address not held, or path broken).
  - Changes nothing; runs the same in check mode.
version_added: 0.1.0
author:
  - SIMRS downtime automation maintainers
extends_documentation_fragment:
- simrs.downtime.attributes
options:
  host:
    description: Address or name to connect to.
    type: str
    required: true
  port:
    description: TCP port.
    type: int
    required: true
  timeout:
    description: Upper bound in seconds for name resolution plus the connection.
    type: float
    default: 2.0
"""

EXAMPLES = r"""
- name: Check whether the database port of the service IP answers
  simrs.downtime.tcp_probe:
    host: 198.18.0.10
    port: 3306
    timeout: 2
  register: __server_probe_tcp_db
"""

RETURN = r"""
state:
  description:
    - C(open) (connected), C(refused) (the host answered with a reset),
      C(timeout) (no answer in time), C(unreachable) (the kernel has no route or the
      neighbour did not answer ARP), C(error) (anything else, e.g. a name that does not resolve).
  type: str
  returned: always
  sample: refused
ok:
  description: True when the port is open.
  type: bool
  returned: always
answered:
  description: True when the host answered at all (open or refused), so it is up.
  type: bool
  returned: always
elapsed_ms:
  description: Milliseconds the attempt took.
  type: int
  returned: always
detail:
  description: One line for people, e.g. C(198.18.0.10:3306 refused).
  type: str
  returned: always
"""

import errno
import socket
import time

from ansible.module_utils.basic import AnsibleModule

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def probe(host: str, port: int, timeout: float) -> tuple[str, str]:
    """Return (state, reason) for one connection attempt bounded by timeout seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "open", "open"
    except ConnectionRefusedError:
        return "refused", "refused"
    except TimeoutError:
        return "timeout", f"no answer within {timeout:g} s"
    except socket.gaierror as exc:
        return "error", f"name does not resolve: {exc.strerror}"
    except OSError as exc:
        if exc.errno in _UNREACHABLE:
            return "unreachable", exc.strerror or str(exc)
        return "error", exc.strerror or str(exc)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "required": True},
            "port": {"type": "int", "required": True},
            "timeout": {"type": "float", "default": 2.0},
        },
        supports_check_mode=True,
    )
    host = module.params["host"]
    port = module.params["port"]
    timeout = module.params["timeout"]
    if not 1 <= port <= 65535:
        module.fail_json(msg=f"port is {port}; use 1 to 65535")
    if timeout <= 0:
        module.fail_json(msg=f"timeout is {timeout:g}; use a positive number of seconds")
    start = time.monotonic()
    state, reason = probe(host, port, timeout)
    elapsed_ms = int((time.monotonic() - start) * 1000)
    module.exit_json(
        changed=False,
        state=state,
        ok=state == "open",
        answered=state in ("open", "refused"),
        elapsed_ms=elapsed_ms,
        detail=f"{host}:{port} {reason}",
    )


if __name__ == "__main__":
    main()
