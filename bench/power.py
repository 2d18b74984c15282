"""Fence and power-on time by power driver, in the lab: podman itself against the lab's BMCs.

Usage (root, after scripts/setup; under `flock /work/lab.lock`; takes the lab down and up per driver):
    .venv/bin/python bench/power.py [--modes podman,ipmi,redfish,wol,mixed] [--runs 3]

For each mode, a fresh lab (`simrs lab up --power MODE --patients 50`), then --runs times:
  fence     playbooks/failover_fence.yml on the answering primary (it releases the service IP, then
            loses its power through its driver, the off state read back), timed end to end;
  power_on  playbooks/failover_power_on.yml on the cold standby (its driver switches it on, then
            the run waits until it answers Ansible and systemd has booted), timed end to end;
then the primary is powered on again and the standby off (through podman, untimed) for the next
run. Prints every run and a table of medians (markdown, for docs/status.md). wol cannot cut power:
its "fence" is the OS shutting itself down.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.ansible import AnsibleGateway  # noqa: E402
from orchestrator.lab import lab, podman  # noqa: E402

SIMRS = str(Path(sys.executable).with_name("simrs"))


def simrs(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([SIMRS, *args], capture_output=True, text=True, timeout=timeout, check=False)


def timed(gateway: AnsibleGateway, playbook: str) -> float:
    started = time.monotonic()
    result = gateway.run(playbook, timeout=900)
    seconds = time.monotonic() - started
    if not result.ok:
        raise SystemExit(f"{playbook} failed: {result.explanation}")
    return seconds


def reset_lab() -> None:
    """The primary on and serving, the standby off: the state a failover starts from."""
    if lab.container_state("simrs-standby") == "running":
        podman.run("kill", "simrs-standby")
    if lab.container_state("simrs-primary") != "running":
        lab.power_on("simrs-primary")
    lab.wait_server_ready("simrs-primary")
    spec, _state = lab.current()
    lab.wait_serving(spec, timeout=120)


def bench_mode(mode: str, runs: int) -> dict[str, list[float]]:
    simrs("lab", "down", timeout=600)
    res = simrs("lab", "up", "--power", mode, "--patients", "50", timeout=1800)
    if res.returncode != 0:
        raise SystemExit(f"lab up --power {mode} failed:\n{res.stderr[-2000:]}")
    inventory = Path(lab.current()[1]["inventory"])
    out: dict[str, list[float]] = {"fence": [], "power_on": []}
    with tempfile.TemporaryDirectory(prefix="simrs-bench-power-") as tmp:
        gateway = AnsibleGateway(inventory, Path(tmp), envvars=podman.extra_env())
        for i in range(runs):
            reset_lab()
            fence = timed(gateway, "failover_fence.yml")
            power_on = timed(gateway, "failover_power_on.yml")
            out["fence"].append(round(fence, 1))
            out["power_on"].append(round(power_on, 1))
            print(f"{mode} run {i + 1}: fence {fence:.1f} s, power_on {power_on:.1f} s", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="podman,ipmi,redfish,wol,mixed")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {mode: bench_mode(mode, args.runs) for mode in args.modes.split(",")}
    simrs("lab", "down", timeout=600)
    print(json.dumps(results))
    print("\n| power mode | fence (median s) | power-on to booted (median s) | runs |")
    print("|---|---|---|---|")
    for mode, r in results.items():
        print(
            f"| {mode} | {statistics.median(r['fence']):.1f} | {statistics.median(r['power_on']):.1f} "
            f"| {len(r['fence'])} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
