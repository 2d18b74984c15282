#!/usr/bin/env python3
"""Run every hop check of client_probe at once on the client PC and print their raw results.

One remote task instead of six (each podman/ssh round trip costs about a second): the checks
run in parallel threads, each bounded by its own timeout, and the role's summary task turns
the raw results ({rc, stdout, stderr} per command, {ok, detail} per port) into findings.
Read-only: it opens connections and reads state, it changes nothing.
Argument: one JSON object {interface, service_ip, server_name, timeout, ping, ports, app}.
"""

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def command(argv, timeout):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    except FileNotFoundError as exc:
        return {"rc": 127, "stdout": "", "stderr": "", "msg": str(exc)}
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": "", "msg": f"no answer within {timeout} s"}


def tcp(host, port, timeout):
    # A refused port means the host answered (service down); silence means host or path down.
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return {"ok": True, "detail": f"{host}:{port} open"}
    except ConnectionRefusedError:
        return {"ok": False, "detail": f"{host}:{port} refused"}
    except (TimeoutError, socket.timeout):
        return {"ok": False, "detail": f"{host}:{port} no answer within {timeout} s"}
    except OSError as exc:
        return {"ok": False, "detail": f"{host}:{port} {exc.strerror or exc}"}


def main():
    args = json.loads(sys.argv[1])
    t = float(args["timeout"])
    ip = args["service_ip"]
    jobs = {
        "ip_address": (command, (["ip", "-json", "address", "show", "dev", args["interface"]], t + 3)),
        "ip_route": (command, (["ip", "-json", "route", "get", ip], t + 3)),
        "getent": (command, (["getent", "ahostsv4", args["server_name"]], t)),
        "app": (command, ([str(a) for a in args["app"]], t * 4 + 1)),
    }
    if args.get("ping"):
        jobs["ping"] = (command, (["ping", "-n", "-c1", f"-W{int(t)}", f"-w{int(t)}", ip], t + 2))
    for name, port in args["ports"].items():
        jobs[name] = (tcp, (ip, port, t))
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(fn, *fn_args) for name, (fn, fn_args) in jobs.items()}
        print(json.dumps({name: f.result() for name, f in futures.items()}))


if __name__ == "__main__":
    main()
