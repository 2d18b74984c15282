"""Benchmark: the cost of encrypting backups to an age recipient (issue 18), as a ratio.

One size (SIMRS-shaped rows from the lab's seed), a primary and a standby in the benchmark's own
containers (bench/_containers.py). For each method (dump, physical), in one run: a plain backup
then its restore, and a backup encrypted to an age recipient (a key pair made here with
age-keygen, the private key given to the restore only) then its restore; the real
`playbooks/backup.yml` and `playbooks/failover_restore.yml`. Page cache dropped before every
restore where the machine allows it. Prints a table: wall seconds of the playbooks, the backup's
own duration (its manifest) and the restore's data steps, and age / plain for each.

Usage: .venv/bin/python bench/encryption.py [--patients 800000]   (under flock /work/lab.lock)
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _containers import Bench, drop_caches, machine_load
from restore import PHASES, phase_seconds

MB = 1024 * 1024


def keypair() -> tuple[str, str]:
    made = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True).stdout.splitlines()
    secret = next(line for line in made if line.startswith("AGE-SECRET-KEY-"))
    public = next(line.split(":", 1)[1].strip() for line in made if line.startswith("# public key:"))
    return secret, public


def run(patients: int) -> tuple[list[dict], dict]:
    secret, public = keypair()
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
        for method in ("dump", "physical"):
            for mode, extra in (("plain", {}), ("age", {"backup_recipients": [public]})):
                backup = bench.play(
                    "backup.yml", {"backup_method": method, "backup_disk_initialize": True, **extra}
                )
                if backup.status != "successful":
                    raise RuntimeError(f"backup {method} {mode} failed: {backup.failures}")
                taken = backup.stats["simrs_backup"][primary]
                cold = drop_caches()
                restore = bench.play(
                    "failover_restore.yml",
                    {"restore_methods": [method], **({"backup_private_key": secret} if extra else {})},
                )
                result = restore.stats.get("simrs_failover_restore", {}).get(standby, {})
                if restore.status != "successful" or result.get("set") != taken["set"]:
                    raise RuntimeError(f"restore of {taken['set']} failed: {restore.failures or result}")
                rows.append(
                    {
                        "method": method,
                        "mode": mode,
                        "set_bytes": int(taken["size"]),
                        "encryption": taken.get("encryption"),
                        "backup_s": backup.seconds,
                        "backup_own_s": float(taken["duration_seconds"]),
                        "restore_s": restore.seconds,
                        "restore_steps_s": sum(phase_seconds(restore, v) for v in PHASES.values()),
                        "cold_cache": cold,
                        "row_counts_ok": result.get("row_counts_ok"),
                    }
                )
    finally:
        bench.close()
    return rows, info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=800000, help="patients (2 visits each)")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    load_before = machine_load()
    rows, info = run(args.patients)
    print(f"\nBackup and restore, plain and encrypted to an age recipient ({started:%Y-%m-%d %H:%M} UTC)")
    print(f"load before: {load_before}\nload after:  {machine_load()}")
    print(
        f"sik data {info['data_bytes'] / MB:.0f} MB ({info['patients']} patients); cold page cache: "
        + ("yes" if all(r["cold_cache"] for r in rows) else "NO (warm)")
    )
    print("backup = backup.yml wall s (own = the set's manifest duration); restore = failover_restore.yml")
    print("wall s (steps = its data steps: hash, copy, load/unpack, switch, count)\n")
    head = (
        f"{'method':<8} | {'mode':<5} | {'set':>7} | {'backup s':>8} | {'own s':>6} | "
        f"{'restore s':>9} | {'steps s':>7} | rows ok"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['method']:<8} | {r['mode']:<5} | {r['set_bytes'] / MB:>4.0f} MB | {r['backup_s']:>8.1f} | "
            f"{r['backup_own_s']:>6.1f} | {r['restore_s']:>9.1f} | {r['restore_steps_s']:>7.1f} | "
            f"{r['row_counts_ok']}"
        )
    print("\nage / plain (1.00 = no cost)")
    for method in ("dump", "physical"):
        plain, aged = (
            next(r for r in rows if r["method"] == method and r["mode"] == m) for m in ("plain", "age")
        )
        print(
            f"{method:<8}: backup {aged['backup_s'] / plain['backup_s']:.2f}x "
            f"(own {aged['backup_own_s'] / plain['backup_own_s']:.2f}x), "
            f"restore {aged['restore_s'] / plain['restore_s']:.2f}x "
            f"(steps {aged['restore_steps_s'] / plain['restore_steps_s']:.2f}x), "
            f"set size {aged['set_bytes'] / plain['set_bytes']:.3f}x"
        )


if __name__ == "__main__":
    main()
