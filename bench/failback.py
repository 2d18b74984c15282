"""The failback's write freeze and each of its steps in the lab, by database size (issue 13).

Usage (root, after scripts/setup; takes the lab down and up for every size; run it under the lab
lock: `flock /work/lab.lock .venv/bin/python bench/failback.py --patients 500,20000`):

For each size: a fresh lab with that many patients, a backup, the main server loses power,
`simrs failover --yes`, the main server comes back (`lab heal primary-off`, `simrs guard`), the
registration workload runs on the standby, then `simrs failback --yes --discard-primary-data`.
Prints the write freeze (the standby read-only to the primary serving), the catch-up wait, the
comparison (tables, rows) and each journaled step's seconds, one table row per size.
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

from orchestrator.failback import FAILBACK_STEPS  # noqa: E402

SIMRS = str(Path(sys.executable).with_name("simrs"))


def simrs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 3600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SIMRS, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def must(res: subprocess.CompletedProcess, what: str, ok: tuple[int, ...] = (0,)) -> None:
    if res.returncode not in ok:
        raise SystemExit(f"{what} failed (rc {res.returncode}):\n{res.stderr[-2000:]}")


def one(patients: int) -> dict:
    simrs("lab", "down", timeout=600)
    must(simrs("lab", "up", "--patients", str(patients), timeout=3600), f"lab up --patients {patients}")
    home = Path(tempfile.mkdtemp(prefix="simrs-bench-failback-"))
    env = {**os.environ, "SIMRS_HOME": str(home)}
    must(simrs("backup", "run", "--json", env=env), "simrs backup run")
    must(simrs("lab", "break", "primary-off"), "break primary-off")
    must(simrs("failover", "--reason", "bench: failback", "--yes", "--json", env=env), "simrs failover")
    must(simrs("lab", "heal", "primary-off"), "heal primary-off")
    must(simrs("guard", "--json", env=env), "simrs guard")
    must(simrs("lab", "workload", "start"), "workload start")
    try:
        time.sleep(5)
        began = time.monotonic()
        res = simrs("failback", "--yes", "--discard-primary-data", "--json", env=env)
        total = time.monotonic() - began
    finally:
        simrs("lab", "workload", "stop")
    must(res, "simrs failback")
    facts = json.loads(res.stdout)
    steps = {s["step"]: s["seconds"] for s in facts["steps"]}
    return {
        "patients": patients,
        "ok": facts["ok"],
        "freeze_s": facts["freeze_seconds"],
        "tables": facts["comparison"]["tables"],
        "rows": facts["comparison"]["rows"],
        "same": facts["comparison"]["same"],
        "total_s": round(total, 1),
        **{f"{s}_s": steps.get(s) for s in FAILBACK_STEPS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", default="500,20000", help="comma-separated database sizes")
    args = parser.parse_args()
    rows = [one(int(n)) for n in args.patients.split(",")]
    cols = list(rows[0])
    print(" | ".join(cols))
    for row in rows:
        print(" | ".join(str(row[c]) for c in cols))
    simrs("lab", "down", timeout=600)


if __name__ == "__main__":
    main()
