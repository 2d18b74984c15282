"""RTO of SOP 4b in the lab, by phase: a cold failover and a pre-staged takeover.

Usage (root, after scripts/setup; takes the lab down and up for every run):
    .venv/bin/python bench/failover.py [--patients 500,50000] [--modes cold,prestaged] [--runs 5]

For each database size, in one run:
  cold        `simrs failover --yes` against a fresh lab whose main server lost power: the
              journaled steps fence, power_on, restore, ip_takeover, start, verify, each timed
              from its journal entries; the restore step split into its copy and load tasks (from
              the run's own task events); a raw copy of the same backup set's bytes on the same
              disk of the same standby (cp + sync) right after, for the physical limit.
  prestaged   a fresh lab, the main server loses power, `incident open --policy approve`: the
              standby is pre-staged during the repair window; then `incident approve`, timed from
              the approval to every client verified on the standby (issue 19: median under 15 s,
              worst under 20 s), with each takeover step's own seconds (journaled live,
              takeover_step) and the first and the last PC working again.
Each mode runs --runs times per size (a fresh lab each time). Prints every run, then the median
and the worst, with the machine's load (1-minute average before and after each run) and whether
the run was cold (the first of this bench: the lab's images, Python's and Ansible's files not yet
in the page cache). Orchestration overhead = the cold RTO minus copy and load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator import procedure  # noqa: E402
from orchestrator.journal import Journal  # noqa: E402
from orchestrator.lab import lab  # noqa: E402

SIMRS = str(Path(sys.executable).with_name("simrs"))


def simrs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 3600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SIMRS, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def must(res: subprocess.CompletedProcess, what: str) -> None:
    if res.returncode not in (0,):
        raise SystemExit(f"{what} failed (rc {res.returncode}):\n{res.stderr[-2000:]}")


def fresh_lab(patients: int) -> None:
    simrs("lab", "down", timeout=600)
    must(simrs("lab", "up", "--patients", str(patients), timeout=3600), f"lab up --patients {patients}")


def backup(env: dict[str, str]) -> dict:
    res = simrs("backup", "run", "--json", env=env, timeout=3600)
    must(res, "simrs backup run")
    return json.loads(res.stdout)


def task_seconds(runs: Path, playbook: str, needles: tuple[str, ...]) -> dict[str, float]:
    """Seconds of the tasks whose names contain a needle, from the newest run of a playbook."""
    run = sorted(runs.glob(f"*-{playbook}-*"))[-1]
    events = [json.loads(p.read_text()) for p in run.glob("artifacts/*/job_events/*.json")]
    starts: dict[str, tuple[str, str]] = {}
    out: dict[str, float] = {}
    for ev in sorted(events, key=lambda e: e["counter"]):
        data = ev.get("event_data", {})
        key = data.get("task_uuid", "") + data.get("host", "")
        if ev["event"] == "runner_on_start":
            starts[key] = (ev["created"], data.get("task", ""))
        elif ev["event"] in ("runner_on_ok", "runner_on_failed") and key in starts:
            began, task = starts[key]
            for needle in needles:
                if needle in task.lower():
                    spent = (
                        datetime.fromisoformat(ev["created"]) - datetime.fromisoformat(began)
                    ).total_seconds()
                    out[needle] = out.get(needle, 0.0) + spent
    return out


def step_times(home: Path, incident: str) -> dict[str, float]:
    events = Journal(home / "journal.sqlite").events(incident)
    out: dict[str, float] = {}
    started = None
    for ev in events:
        if ev.kind == "action_started":
            started = ev
        elif ev.kind == "failover_step" and started is not None:
            out[ev.data["step"]] = out.get(ev.data["step"], 0.0) + (ev.ts - started.ts)
    return out


def raw_copy_seconds(set_path: str) -> float:
    """cp + sync of the set's bytes, external disk -> the standby's data disk, as the restore copies."""
    script = (
        f"rm -rf /data/bench-rawcopy && s=$(date +%s.%N) && cp -r {set_path} /data/bench-rawcopy && sync"
        " && e=$(date +%s.%N) && rm -rf /data/bench-rawcopy && echo $s $e"
    )
    out = lab.exec_in("simrs-standby", "sh", "-c", script, timeout=3600).out.split()
    return float(out[1]) - float(out[0])


def cold(patients: int) -> dict:
    fresh_lab(patients)
    home = Path(tempfile.mkdtemp(prefix="simrs-bench-"))
    env = {**os.environ, "SIMRS_HOME": str(home)}
    info = backup(env)
    must(simrs("lab", "break", "primary-off"), "break primary-off")
    began = time.monotonic()
    res = simrs("failover", "--reason", "bench: cold failover", "--yes", "--json", env=env)
    total = time.monotonic() - began
    must(res, "simrs failover")
    view = json.loads(res.stdout)
    steps = step_times(home, view["id"])
    parts = task_seconds(home / "runs", "failover_restore", ("copy", "load"))
    rows = view["failover"]
    set_name = rows["restored_set"]
    set_path = f"/media/simrs-backup/simrs-backups/simrs-primary/{set_name}"
    raw = raw_copy_seconds(set_path)
    copy_load = parts.get("copy", 0.0) + parts.get("load", 0.0)
    rto = sum(steps.values())
    return {
        "patients": patients,
        "set_bytes": info.get("size") or info.get("bytes"),
        "steps": steps,
        "copy": parts.get("copy", 0.0),
        "load": parts.get("load", 0.0),
        "raw_copy": raw,
        "rto": rto,
        "overhead": rto - copy_load,
        "wall": total,
    }


def prestaged(patients: int) -> dict:
    fresh_lab(patients)
    home = Path(tempfile.mkdtemp(prefix="simrs-bench-"))
    env = {**os.environ, "SIMRS_HOME": str(home)}
    backup(env)
    must(simrs("lab", "break", "primary-off"), "break primary-off")
    res = simrs(
        "incident",
        "open",
        "--reporter",
        "kasir-01",
        "--window",
        "10s",
        "--policy",
        "approve",
        "--json",
        env=env,
    )
    view = json.loads(res.stdout)
    if view.get("phase") != "FAILOVER_PENDING" or (view.get("standby") or {}).get("state") != "ready":
        raise SystemExit(f"the standby was not pre-staged: {view.get('phase')} {view.get('standby')}")
    began = time.monotonic()
    res = simrs("incident", "approve", "--json", env=env)
    wall = time.monotonic() - began
    must(res, "incident approve")
    events = Journal(home / "journal.sqlite").events(view["id"])
    approved = next(e.ts for e in events if e.kind == "approved")
    verified = next(e.ts for e in events if e.kind == "failover_step" and e.data["step"] == "verify")
    run_start = next(
        e.ts for e in events if e.kind == "action_started" and e.data.get("action") == "failover_takeover"
    )
    verify = next(e.data for e in events if e.kind == "failover_step" and e.data["step"] == "verify")
    pcs = verify.get("clients_verified") or {}
    prestage = [e for e in events if e.kind in ("prestage_started", "prestage")]
    return {
        "patients": patients,
        "prestage": prestage[-1].ts - prestage[0].ts,
        "approval_to_verified": verified - approved,
        # Live, as each step ended (engine.TakeoverSteps): the takeover's phases.
        "steps": {e.data["step"]: e.data["seconds"] for e in events if e.kind == "takeover_step"},
        "first_pc": (run_start - approved + pcs["first"]["seconds"]) if pcs else None,
        "last_pc": (run_start - approved + pcs["last"]["seconds"]) if pcs else None,
        "wall": wall,
        "slowest": slowest_tasks(home / "runs", "failover"),
    }


def slowest_tasks(runs: Path, playbook: str, top: int = 12) -> list[tuple[float, str, str]]:
    """The newest run's slowest tasks (seconds from its start to its last host's end; the hosts of one
    task run at once): where the time of a run goes, from the runner's event timestamps."""
    run = sorted(runs.glob(f"*-{playbook}-*"))[-1]
    events = sorted(
        (json.loads(p.read_text()) for p in run.glob("artifacts/*/job_events/*.json")),
        key=lambda e: e["counter"],
    )
    began: dict[str, tuple[datetime, str, str]] = {}
    ended: dict[str, datetime] = {}
    for ev in events:
        data = ev.get("event_data", {})
        uuid = data.get("task_uuid", "")
        at = datetime.fromisoformat(ev["created"])
        if ev["event"] == "playbook_on_task_start" and uuid not in began:
            began[uuid] = (at, data.get("task", ""), data.get("play", ""))
        elif ev["event"].startswith("runner_on_") and uuid in began:
            ended[uuid] = max(ended.get(uuid, at), at)
    spent = [
        ((ended[u] - t).total_seconds(), task, play) for u, (t, task, play) in began.items() if u in ended
    ]
    return sorted(spent, reverse=True)[:top]


def timed_runs(fn, patients: int, runs: int, first: list[bool]) -> list[dict]:
    """``runs`` runs of one mode, each with the machine's load before and after, and cold or not."""
    out = []
    for _ in range(runs):
        load_before = os.getloadavg()[0]
        r = fn(patients)
        r["load"] = (load_before, os.getloadavg()[0])
        r["cold"] = first[0]
        first[0] = False
        out.append(r)
    return out


def fmt(value: object, width: int) -> str:
    if isinstance(value, float):
        value = f"{value:.1f}"
    return f"{'-' if value is None else value!s:>{width}}"


def print_table(title: str, head: list[str], rows: list[list[object]], summary: list[int]) -> None:
    """Every run, then the median and the worst of the columns in ``summary`` (their indexes)."""
    width = max(9, *(len(h) for h in head))
    print(f"\n{title}")
    print(" | ".join(fmt(h, width) for h in head))
    for row in rows:
        print(" | ".join(fmt(c, width) for c in row))
    if len(rows) > 1:
        for name, agg in (("median", statistics.median), ("worst", max)):
            cells: list[object] = [name] + [""] * (len(head) - 1)
            for i in summary:
                values = [r[i] for r in rows if isinstance(r[i], int | float)]
                cells[i] = float(agg(values)) if values else None
            print(" | ".join(fmt(c, width) for c in cells))


def machine() -> str:
    with open("/proc/meminfo") as f:
        mem = next(line.split()[1] for line in f if line.startswith("MemTotal"))
    return f"{os.cpu_count()} CPUs, {int(mem) // 1024} MiB, load now {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", default="500,50000", help="database sizes (patients, two visits each)")
    parser.add_argument("--modes", default="cold,prestaged", help="which modes to run (cold, prestaged)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each mode per size (median, worst)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.patients.split(",")]
    modes = set(args.modes.split(","))
    if not modes or modes - {"cold", "prestaged"}:
        parser.error(f"--modes: cold and/or prestaged, not {args.modes!r}")
    if args.runs < 1:
        parser.error("--runs: at least 1")
    print(f"machine: {machine()}; started {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    first = [True]
    colds = [r for n in sizes for r in timed_runs(cold, n, args.runs, first)] if "cold" in modes else []
    pres = (
        [r for n in sizes for r in timed_runs(prestaged, n, args.runs, first)] if "prestaged" in modes else []
    )
    simrs("lab", "down", timeout=600)
    print(f"\nmachine: {machine()}; ended {time.strftime('%Y-%m-%d %H:%M:%S')}")
    if colds:
        head = [
            "patients",
            "load",
            "cold",
            "set MB",
            *procedure.FAILOVER_STEPS,
            "RTO",
            "copy",
            "load s",
            "raw copy",
            "restore/raw",
            "overhead",
        ]
        rows = []
        for r in colds:
            ratio = (r["copy"] + r["load"]) / r["raw_copy"] if r["raw_copy"] else float("nan")
            rows.append(
                [
                    r["patients"],
                    f"{r['load'][0]:.1f}-{r['load'][1]:.1f}",
                    "cold" if r["cold"] else "warm",
                    (r["set_bytes"] or 0) / 1e6,
                    *(float(r["steps"].get(s, 0)) for s in procedure.FAILOVER_STEPS),
                    r["rto"],
                    r["copy"],
                    r["load"],
                    r["raw_copy"],
                    f"{ratio:.1f}x",
                    r["overhead"],
                ]
            )
        numeric = [i for i in range(4, len(head)) if head[i] != "restore/raw"]
        print_table("Cold failover by phase (seconds; goal: overhead under 30)", head, rows, numeric)
    if pres:
        head = [
            "patients",
            "load",
            "cold",
            "pre-staging",
            *procedure.FAILOVER_STEPS,
            "first PC",
            "last PC",
            "approval->verified",
            "command wall",
        ]
        rows = [
            [
                r["patients"],
                f"{r['load'][0]:.1f}-{r['load'][1]:.1f}",
                "cold" if r["cold"] else "warm",
                r["prestage"],
                *(r["steps"].get(s) for s in procedure.FAILOVER_STEPS),
                r["first_pc"],
                r["last_pc"],
                r["approval_to_verified"],
                r["wall"],
            ]
            for r in pres
        ]
        print_table(
            "Pre-staged takeover (seconds): the takeover's steps as each ended (journaled live; the fence "
            "beside the standby's steps), the first and last PC working again and approval -> every PC "
            "verified from the approval (goal: median under 15, worst under 20)",
            head,
            rows,
            list(range(3, len(head))),
        )
        print("\nThe last takeover run's slowest tasks (seconds, task start to its last host's end):")
        for spent, task, play in pres[-1]["slowest"]:
            print(f"  {spent:5.1f}  {task[:70]:70}  ({play[:50]})")


if __name__ == "__main__":
    main()
