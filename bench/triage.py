"""Benchmark: time from `simrs incident open` to the triage verdict, and to the end of the sweep
of every PC, by number of client PCs (issue 16: triage that does not grow with the hospital).

Runs the real CLI against the lab (real containers, real Ansible) for each size and three
situations: all healthy; one sampled PC powered off (unreachable: it must cost at most one
bounded timeout, in parallel with the others); the main server off (every probe times out).
The times are read from the incident journal (opened -> triage event: the verdict; opened ->
triage_sweep: every PC probed), so they measure the procedure, not the terminal. Each size's
row goes into --results (JSON), so sizes can be run one invocation at a time (each under the lab
lock: `flock /work/lab.lock ...`), and the table of every recorded size is printed with the
ratios against the 20-PC row side by side. Not a test: nothing here asserts.

Usage: flock /work/lab.lock .venv/bin/python bench/triage.py --clients 3,20
       flock /work/lab.lock .venv/bin/python bench/triage.py --clients 200
       .venv/bin/python bench/triage.py --table     (print the recorded rows only)
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

from orchestrator.journal import Journal  # noqa: E402
from orchestrator.lab import topology  # noqa: E402
from orchestrator.triage import classify_from_data  # noqa: E402

SIMRS = str(Path(sys.executable).with_name("simrs"))
RESULTS = Path(tempfile.gettempdir()) / "simrs-bench-triage.json"
SITUATIONS = ("healthy", "one_pc_off", "server_off")
REPORTER = "kasir-01"


def sh(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, env=env, timeout=1800)


def measure(home: Path, extra: list[str], env: dict) -> dict:
    """One incident: seconds to the verdict, to the end of the sweep, the verdict, PCs probed."""
    journal = Journal(home / "journal.sqlite")
    before = set(journal.incidents())
    start = time.monotonic()
    sh(
        SIMRS,
        "incident",
        "open",
        "--reporter",
        REPORTER,
        "--no-prestage",
        "--json",
        *extra,
        check=False,
        env=env,
    )
    wall = time.monotonic() - start
    (incident,) = set(journal.incidents()) - before
    events = journal.events(incident)
    opened = next(e.ts for e in events if e.kind == "opened")
    triage = next(e for e in events if e.kind == "triage")
    sweep = next((e for e in events if e.kind == "triage_sweep"), None)
    sh(SIMRS, "incident", "close", incident, "--cause", "benchmark", check=False, env=env)
    sample = triage.data.get("sample", {})
    return {
        "verdict_s": round(triage.ts - opened, 1),
        "all_probed_s": round((sweep.ts if sweep else triage.ts) - opened, 1),
        "verdict": str(classify_from_data(triage.data).verdict),
        "probed": sample.get("probed", len(triage.data.get("clients", {}))),
        "swept": len(sweep.data.get("clients", {})) if sweep else 0,
        "wall_s": round(wall, 1),
    }


def machine() -> str:
    load = os.getloadavg()
    others = sh("podman", "ps", "--format", "{{.Names}}", check=False).stdout.split()
    molecule = sum(1 for n in others if n.startswith("molecule-"))
    return f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, {molecule} molecule containers running"


def run_size(n: int, home: Path, env: dict) -> dict:
    sh(SIMRS, "lab", "down", check=False)
    start = time.monotonic()
    sh(SIMRS, "lab", "up", "--clients", str(n))
    row: dict = {"clients": n, "lab_up_s": round(time.monotonic() - start, 1), "machine": machine()}
    row["healthy"] = measure(home, [], env)
    # A PC of the sample (the second unit's first PC; the reporter itself when it is the only PC).
    off = topology.client_name(1)[0] if n > 1 else None
    if off:
        sh("podman", "stop", "-t", "0", off)
        row["one_pc_off"] = measure(home, [], env)
        sh("podman", "start", off)
        sh(SIMRS, "lab", "heal", check=False)
    sh(SIMRS, "lab", "break", "primary-off")
    row["server_off"] = measure(home, ["--window", "10s"], env)
    sh(SIMRS, "lab", "heal", check=False)
    row["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return row


def table(rows: list[dict]) -> str:
    rows = sorted(rows, key=lambda r: r["clients"])
    base = next((r for r in rows if r["clients"] == 20), rows[0])
    lines = [
        "Seconds from `incident open` to the triage verdict (and to every PC probed), from the journal;",
        f"xR = ratio of the verdict time to the {base['clients']}-PC row's.",
        "",
        f"{'PCs':>4} | {'lab up':>6} | " + " | ".join(f"{s:^33}" for s in SITUATIONS) + "",
        f"{'':>4} | {'':>6} | " + " | ".join(f"{'verdict (xR)  all probed  probed':^33}" for _ in SITUATIONS),
        "-" * (18 + 36 * len(SITUATIONS)),
    ]
    for r in rows:
        cells = []
        for s in SITUATIONS:
            m = r.get(s)
            b = base.get(s)
            if not m:
                cells.append(f"{'-':^33}")
                continue
            ratio = f"x{m['verdict_s'] / b['verdict_s']:.2f}" if b and b["verdict_s"] else "-"
            cells.append(
                f"{m['verdict_s']:>5.1f} ({ratio:>5}) {m['verdict'][:7]:<7} {m['all_probed_s']:>5.1f}"
                f" {m['probed']:>3}+{m['swept']:<3}"
            )
        lines.append(f"{r['clients']:>4} | {r['lab_up_s']:>5.0f}s | " + " | ".join(cells))
    lines.append("")
    lines += [f"{r['clients']:>4} PCs: {r['machine']} (finished {r.get('finished', '?')})" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="3,20", help="sizes to run now, e.g. 3,20 or 200")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON file of the recorded rows")
    parser.add_argument("--table", action="store_true", help="only print the recorded rows")
    parser.add_argument("--keep-lab", action="store_true")
    args = parser.parse_args()
    rows = json.loads(args.results.read_text()) if args.results.exists() else []
    if not args.table:
        home = Path(tempfile.mkdtemp(prefix="simrs-bench-"))
        env = {**os.environ, "SIMRS_HOME": str(home)}
        try:
            for n in (int(x) for x in args.clients.split(",")):
                row = run_size(n, home, env)
                rows = [r for r in rows if r["clients"] != n] + [row]
                args.results.write_text(json.dumps(rows, indent=1))
                print(json.dumps(row), flush=True)
        finally:
            if not args.keep_lab:
                sh(SIMRS, "lab", "down", check=False)
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
