"""Benchmark: time from `simrs incident open` to the triage verdict, by number of client PCs.

Runs the real CLI against the lab (real containers, real Ansible), for 3, 10 and 20 clients and
three situations: all healthy; one PC powered off (unreachable: it must cost at most its
timeout, once, in parallel with the others); the main server off (every probe times out).
The verdict time is read from the incident journal (opened -> triage event), so it measures
the procedure, not the terminal. Prints a table. Not a test: nothing here asserts.

Usage: .venv/bin/python bench/triage.py [--clients 3,10,20] [--keep-lab]
"""

from __future__ import annotations

import argparse
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

SIMRS = str(Path(sys.executable).with_name("simrs"))


def sh(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, env=env, timeout=1800)


def verdict_seconds(home: Path, reporter: str, extra: list[str], env: dict) -> tuple[float, float, str]:
    """(seconds to verdict, wall seconds of the command, verdict)."""
    journal = Journal(home / "journal.sqlite")
    before = set(journal.incidents())
    start = time.monotonic()
    sh(SIMRS, "incident", "open", "--reporter", reporter, "--json", *extra, check=False, env=env)
    wall = time.monotonic() - start
    (incident,) = set(journal.incidents()) - before
    events = journal.events(incident)
    opened = next(e.ts for e in events if e.kind == "opened")
    triage = next(e for e in events if e.kind == "triage")
    sh(SIMRS, "incident", "close", incident, "--cause", "benchmark", check=False, env=env)
    from orchestrator.procedure import classify_from_data  # noqa: PLC0415

    return triage.ts - opened, wall, str(classify_from_data(triage.data).verdict)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="3,10,20")
    parser.add_argument("--keep-lab", action="store_true")
    args = parser.parse_args()
    rows = []
    home = Path(tempfile.mkdtemp(prefix="simrs-bench-"))
    env = {**os.environ, "SIMRS_HOME": str(home)}
    for n in (int(x) for x in args.clients.split(",")):
        sh(SIMRS, "lab", "down", check=False)
        sh(SIMRS, "lab", "up", "--clients", str(n))
        last = topology.client_name(n - 1)[0]
        healthy = verdict_seconds(home, "kasir-01", [], env)
        sh("podman", "stop", "-t", "0", last)
        one_off = verdict_seconds(home, "kasir-01", [], env) if n > 1 else (float("nan"), 0, "-")
        sh("podman", "start", last)
        sh(SIMRS, "lab", "break", "primary-off")
        server_off = verdict_seconds(home, "kasir-01", ["--window", "10s"], env)
        sh(SIMRS, "lab", "heal")
        rows.append((n, healthy, one_off, server_off))
    if not args.keep_lab:
        sh(SIMRS, "lab", "down", check=False)
    print("\nTime from `incident open` to the triage verdict (seconds, from the journal)\n")
    print(f"{'clients':>7} | {'all healthy':>18} | {'one PC off':>24} | {'server off':>18}")
    print("-" * 78)
    for n, h, o, s in rows:
        print(f"{n:>7} | {h[0]:>5.1f} ({h[2]:<10}) | {o[0]:>5.1f} ({o[2]:<16}) | {s[0]:>5.1f} ({s[2]:<10})")
    base = rows[0][1][0]
    print(
        "\nGrowth against the smallest lab (all healthy): "
        + ", ".join(f"{n} clients x{h[0] / base:.2f}" for n, h, _, _ in rows)
    )


if __name__ == "__main__":
    main()
