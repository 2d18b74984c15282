"""Triage and takeover over SSH (with sudo) against podman exec, one run each (issue 11, item 4).

Usage (root, after scripts/setup, under the lab lock; takes the lab down and up for each):
    flock /work/lab.lock .venv/bin/python bench/connection.py [--connections podman,ssh]

For each connection, a fresh lab (`simrs lab up --connection C`), then:
  triage     `simrs incident open --reporter kasir-01` on a healthy lab: every PC probed, the server
             checked from the admin machine and from inside, NO_FAULT (wall seconds).
  takeover   a backup, the main server loses power, `simrs failover --yes`: fence, power_on,
             restore, ip_takeover, start, verify (wall seconds, and each step from the journal).
Prints one row per connection and the ratio SSH / podman exec. The lab is left as a podman lab.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.failover import step_times  # noqa: E402

SIMRS = str(Path(sys.executable).with_name("simrs"))


def simrs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SIMRS, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def must(res: subprocess.CompletedProcess, what: str, ok: tuple[int, ...] = (0,)) -> None:
    if res.returncode not in ok:
        raise SystemExit(f"{what} failed (rc {res.returncode}):\n{res.stderr[-2000:]}")


def one(connection: str) -> dict:
    simrs("lab", "down", timeout=600)
    began = time.monotonic()
    must(simrs("lab", "up", "--connection", connection, timeout=1800), f"lab up --connection {connection}")
    up = time.monotonic() - began
    home = Path(tempfile.mkdtemp(prefix="simrs-bench-conn-"))
    env = {**os.environ, "SIMRS_HOME": str(home)}
    began = time.monotonic()
    res = simrs("incident", "open", "--reporter", "kasir-01", "--json", env=env)
    triage = time.monotonic() - began
    must(res, "incident open (healthy lab)")
    assert json.loads(res.stdout)["verdict"] == "NO_FAULT", res.stdout
    must(simrs("backup", "run", "--json", env=env), "backup run")
    must(simrs("lab", "break", "primary-off"), "break primary-off")
    began = time.monotonic()
    res = simrs("failover", "--reason", f"bench: takeover over {connection}", "--yes", "--json", env=env)
    takeover = time.monotonic() - began
    must(res, "failover")
    steps = step_times(home, json.loads(res.stdout)["id"])
    return {"connection": connection, "lab_up": up, "triage": triage, "takeover": takeover, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", default="podman,ssh")
    args = parser.parse_args()
    rows = [one(c) for c in args.connections.split(",")]
    simrs("lab", "down", timeout=600)
    must(simrs("lab", "up", timeout=1800), "lab up (podman, as it was)")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} load {os.getloadavg()[0]:.1f}, one run each")
    print("| connection | lab up | triage (NO_FAULT) | takeover (failover --yes) | steps |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in r["steps"].items())
        print(
            f"| {r['connection']} | {r['lab_up']:.1f} | {r['triage']:.1f} | {r['takeover']:.1f} | {steps} |"
        )
    by = {r["connection"]: r for r in rows}
    if "podman" in by and "ssh" in by:
        print(
            f"ratio ssh / podman exec: triage {by['ssh']['triage'] / by['podman']['triage']:.2f}, "
            f"takeover {by['ssh']['takeover'] / by['podman']['takeover']:.2f}"
        )


if __name__ == "__main__":
    main()
