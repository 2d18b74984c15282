"""Benchmark: restore time by method against a raw copy of the same bytes on the same disk.

For each database size (SIMRS-shaped rows from the lab's seed): a primary and a standby in the
benchmark's own containers (bench/_containers.py), a dump set and a physical set taken by the real
`playbooks/backup.yml`, then each restored onto the standby by the real
`playbooks/failover_restore.yml` (the `restore` role: hash every file on the disk; a dump is
copied (hashed as read) and loaded (hashed again as read); a physical set is unpacked straight from
the disk, hashed in the same read; switch, count rows, accounts, marker). In the same run, on the
same disk: `cp` of the set's files and `cp -a` of the restored data folder (without the standby's
binary logs), each followed by `sync`. The page cache is dropped before every timed step where the
machine allows it. Prints tables. Not a test:
nothing here asserts beyond "the restore said it restored".

Goal (issue 4): the physical restore within 1.5x of the raw copy.

Usage: .venv/bin/python bench/restore.py [--patients 40000,800000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _containers import DISK_IN_HOST, Bench, drop_caches, in_host, machine_load, timed_in_host

MB = 1024 * 1024
# Task names of the restore role whose time is spent on the data itself (the rest is Ansible).
PHASES = {
    "hash on disk": "Read the backup sets on the external disk",
    # A physical restore has no copy (it unpacks straight from the disk): 0 there.
    "copy (dump)": "Copy the set to local disk",
    "load / unpack": ("Load the set into fresh", "Unpack the prepared data folder"),
    "switch": ("Switch the restored tables", "Switch the data folders"),
    "count rows": "Count the rows of every table",
}


def phase_seconds(run, names: str | tuple[str, ...]) -> float:
    return sum(run.task_seconds(n) for n in ((names,) if isinstance(names, str) else names))


def bench_size(patients: int) -> tuple[list[dict], dict]:
    bench = Bench()
    rows: list[dict] = []
    info: dict = {"patients": patients}
    try:
        bench.network()
        primary = bench.server("primary", "198.18.17.11", "simrs_primary")
        standby = bench.server("standby", "198.18.17.12", "simrs_standby")
        bench.prepare_server(primary, patients)
        bench.prepare_server(standby)
        info["data_bytes"] = bench.data_bytes(primary)
        sets = {}
        for method in ("dump", "physical"):
            run = bench.play("backup.yml", {"backup_method": method, "backup_disk_initialize": True})
            if run.status != "successful":
                raise RuntimeError(f"backup {method} failed: {run.failures}")
            result = run.stats["simrs_backup"][primary]
            sets[method] = result
            info[f"backup_{method}_s"] = run.seconds
        for method in ("dump", "physical"):
            name = sets[method]["set"]
            cold = drop_caches()
            run = bench.play("failover_restore.yml", {"restore_methods": [method]})
            result = run.stats.get("simrs_failover_restore", {}).get(standby, {})
            if run.status != "successful" or result.get("action") != "restored" or result.get("set") != name:
                raise RuntimeError(f"restore of {name} failed: {run.failures or result}")
            set_path = f"{DISK_IN_HOST}/simrs-backups/{primary}/{name}"
            set_bytes = int(in_host(standby, f"du -s --block-size=1 {set_path} | cut -f1").strip())
            drop_caches()
            raw_set = timed_in_host(standby, f"cp -r {set_path} /data/raw-set && sync -f /data/raw-set")
            in_host(standby, "rm -rf /data/raw-set")
            rows.append(
                {
                    "method": method,
                    "set": name,
                    "set_bytes": set_bytes,
                    "restore_s": run.seconds,
                    "phases": {k: phase_seconds(run, v) for k, v in PHASES.items()},
                    "raw_set_s": raw_set,
                    "cold_cache": cold,
                    "row_counts_ok": result.get("row_counts_ok"),
                }
            )
        # The same bytes for both methods: the data folder the physical restore put in place, without
        # the standby's own binary logs (a dump restore writes its rows there a second time).
        info["folder_bytes"] = int(
            in_host(
                standby, "cd /data/mysql && du -s --block-size=1 --exclude='mysql-bin.*' . | cut -f1"
            ).strip()
        )
        drop_caches()
        info["raw_folder_s"] = timed_in_host(
            standby,
            "mkdir /data/raw-folder && cd /data/mysql && "
            "cp -a $(ls -A | grep -v '^mysql-bin\\.') /data/raw-folder/ && sync -f /data/raw-folder",
        )
        in_host(standby, "rm -rf /data/raw-folder")
    finally:
        bench.close()
    return rows, info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", default="40000,800000", help="patients per size (2 visits each)")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    load_before = machine_load()
    results = [bench_size(int(n)) for n in args.patients.split(",")]
    print(f"\nRestore by method against a raw copy of the same bytes ({started:%Y-%m-%d %H:%M} UTC)")
    print(f"load before: {load_before}\nload after:  {machine_load()}")
    print("restore = the whole failover_restore.yml run (Ansible included); raw copies on the standby's")
    print("data disk with sync: the set's files, and the restored data folder without binary logs;")
    print(
        "cold page cache: "
        + ("yes" if all(r["cold_cache"] for rs, _ in results for r in rs) else "NO (warm)")
    )
    print()
    head = (
        f"{'sik data':>9} | {'data folder':>11} | {'method':<8} | {'set':>7} | {'restore s':>9} | "
        f"{'data steps s':>12} | {'raw cp set s':>12} | {'raw cp folder s':>15} | {'restore/raw':>11} | "
        f"{'steps/raw':>9}"
    )
    print(head)
    print("-" * len(head))
    for rows, info in results:
        for r in rows:
            steps = sum(r["phases"].values())
            print(
                f"{info['data_bytes'] / MB:>6.0f} MB | {info['folder_bytes'] / MB:>8.0f} MB | "
                f"{r['method']:<8} | {r['set_bytes'] / MB:>4.0f} MB | {r['restore_s']:>9.1f} | "
                f"{steps:>12.1f} | "
                f"{r['raw_set_s']:>12.2f} | {info['raw_folder_s']:>15.2f} | "
                f"{r['restore_s'] / info['raw_folder_s']:>10.1f}x | {steps / info['raw_folder_s']:>8.1f}x"
            )
    print(
        "\ndata steps = the role's tasks that move or check data (the columns below); the rest of a "
        "restore is\nAnsible itself (play start, one podman exec per task) and the database start check."
    )
    print("\nWhere the restore's time goes (seconds, per task of the restore role)\n")
    head = f"{'sik data':>9} | {'method':<8} | " + " | ".join(f"{k:>14}" for k in PHASES) + f" | {'rest':>6}"
    print(head)
    print("-" * len(head))
    for rows, info in results:
        for r in rows:
            rest = r["restore_s"] - sum(r["phases"].values())
            print(
                f"{info['data_bytes'] / MB:>6.0f} MB | {r['method']:<8} | "
                + " | ".join(f"{r['phases'][k]:>14.2f}" for k in PHASES)
                + f" | {rest:>6.1f}"
            )
    taken = [
        f"{info['data_bytes'] / MB:.0f} MB: dump {info['backup_dump_s']:.1f} s, "
        f"physical {info['backup_physical_s']:.1f} s"
        for _rows, info in results
    ]
    print("\nBackups taken for it (backup.yml wall seconds): " + "; ".join(taken))


if __name__ == "__main__":
    main()
