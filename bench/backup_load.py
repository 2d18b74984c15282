"""Benchmark: the registration desk's commit latency without a backup and during each backup method.

A primary in the benchmark's own containers (bench/_containers.py), filled with SIMRS-shaped rows
from the lab's seed, and a client PC that registers visits over the network without pause (one
INSERT into reg_periksa + COMMIT per visit, PyMySQL with the application account, as the lab's
workload and SIMRS Khanza do) and records each commit's latency. Meanwhile: a quiet baseline, then
the real `playbooks/backup.yml` with method dump, then with method physical (each --repeat times,
alternating, for more samples). A commit belongs to a
phase when it started inside the backup task's own start/end (from ansible-runner's events), so
Ansible's start-up is not counted as "during a backup". Prints a table. Not a test.

Goal (issue 4): p99 during a backup within 2x of p99 without one.

Usage: .venv/bin/python bench/backup_load.py [--patients 300000] [--baseline 30] [--repeat 3] [--disk-mb 2048]
       [--vars JSON] [--methods dump,physical] [--compare JSON]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _containers import APP_PASSWORD, APP_USER, Bench, in_host, machine_load, podman_env

PRIMARY_IP = "198.18.17.11"
TAKE_TASK = "Take the backup, method"

# Runs on the client PC (python3 + PyMySQL from the lab image) until /tmp/bench-stop exists.
WRITER = r"""
import os, sys, time, pymysql
host, user, password, interval = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
conn = pymysql.connect(host=host, user=user, password=password, database="sik", autocommit=False,
                       connect_timeout=5)
out = open("/tmp/bench-latency.txt", "w")
n = 0
while not os.path.exists("/tmp/bench-stop"):
    n += 1
    t = time.time()
    start = time.perf_counter()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO reg_periksa VALUES (%s, %s, CURDATE(), CURTIME(), 'D0001', '000001', 'U0001',"
                " '-', 15000, 'Belum', 'Lama', 'Ralan', 'UMU', 'Belum Bayar')",
                ("%03d" % (n % 1000), "B/%015d" % n))
        conn.commit()
        out.write("%.6f %.3f\n" % (t, (time.perf_counter() - start) * 1000))
    except pymysql.MySQLError as exc:
        out.write("%.6f error %s\n" % (t, str(exc)[:100].replace(" ", "_")))
        time.sleep(0.5)
        conn = pymysql.connect(host=host, user=user, password=password, database="sik",
                               autocommit=False, connect_timeout=5)
    time.sleep(interval)
out.close()
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:  # noqa: PLR0915 (one straight measurement script)
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=300000, help="patients seeded (2 visits each)")
    parser.add_argument("--baseline", type=float, default=30.0, help="seconds of quiet baseline")
    parser.add_argument("--interval", type=float, default=0.01, help="pause between two commits")
    parser.add_argument("--repeat", type=int, default=3, help="backups of each method (more samples)")
    parser.add_argument(
        "--disk-mb",
        type=int,
        default=0,
        help="the external disk as an ext4 filesystem of its own of this size (as a USB disk is); "
        "0: a folder on the filesystem the database's files are on",
    )
    parser.add_argument(
        "--vars", default="{}", help="backup role settings as JSON, e.g. '{\"backup_physical_throttle\": 20}'"
    )
    parser.add_argument("--methods", default="dump,physical", help="backup methods, in this order")
    parser.add_argument(
        "--compare",
        default="",
        help="more role settings as JSON: each backup is also taken with them, alternating, as its own "
        "phase (an A/B in the same run), e.g. '{\"backup_physical_throttle\": 20}'",
    )
    args = parser.parse_args()
    role_vars = json.loads(args.vars)
    compare = json.loads(args.compare) if args.compare else None
    variants = [(m, role_vars, m) for m in args.methods.split(",")]
    if compare:
        variants = [
            v
            for m in args.methods.split(",")
            for v in ((m, role_vars, m), (m, {**role_vars, **compare}, f"{m}+"))
        ]
    started = dt.datetime.now(dt.UTC)
    load_before = machine_load()
    bench = Bench(disk_mb=args.disk_mb)
    writer = None
    windows: dict[str, list[tuple[float, float]]] = {}
    extra: list[str] = []
    runs: list[tuple[str, tuple[float, float], dict]] = []
    try:
        bench.network()
        primary = bench.server("primary", PRIMARY_IP, "simrs_primary")
        client = bench.client("desk", "198.18.17.21")
        bench.prepare_server(primary, args.patients)
        data_mb = bench.data_bytes(primary) / 2**20
        in_host(client, "rm -f /tmp/bench-stop /tmp/bench-latency.txt")
        writer = subprocess.Popen(
            [
                "podman",
                "exec",
                "-i",
                client,
                "python3",
                "-",
                PRIMARY_IP,
                APP_USER,
                APP_PASSWORD,
                str(args.interval),
            ],
            stdin=subprocess.PIPE,
            env={**os.environ, **podman_env()},
            text=True,
        )
        writer.stdin.write(WRITER)
        writer.stdin.close()
        time.sleep(3)  # connected and warm
        t0 = time.time()
        time.sleep(args.baseline)
        windows["no backup"] = [(t0, time.time())]
        for method, settings, label in variants * args.repeat:
            run = bench.play(
                "backup.yml", {**settings, "backup_method": method, "backup_disk_initialize": True}
            )
            if run.status != "successful":
                raise RuntimeError(f"backup {method} failed: {run.failures}")
            take = next(v for k, v in run.windows.items() if k.startswith(TAKE_TASK))
            windows.setdefault(f"during {label} backup", []).append(take)
            published = run.stats["simrs_backup"][primary]
            manifest = json.loads(in_host(primary, f"cat {published['path']}/manifest.json"))
            runs.append((label, take, (manifest.get("physical") or {}).get("phase_seconds") or {}))
            extra.append(
                f"{label}: backup task {take[1] - take[0]:.1f} s, playbook {run.seconds:.1f} s, "
                f"set {run.stats['simrs_backup'][primary].get('size', 0) / 2**20:.0f} MB"
            )
            time.sleep(5)
        in_host(client, "touch /tmp/bench-stop")
        writer.wait(timeout=60)
        lines = in_host(client, "cat /tmp/bench-latency.txt").splitlines()
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
        bench.close()
    samples: list[tuple[float, float]] = []
    errors: list[float] = []
    for line in lines:
        t, value = line.split()[:2]
        if value == "error":
            errors.append(float(t))
        else:
            samples.append((float(t), float(value)))
    print(
        "\nCommit latency of the registration desk, without and during a backup "
        f"({started:%Y-%m-%d %H:%M} UTC)"
    )
    print(f"load before: {load_before}\nload after:  {machine_load()}")
    print(
        f"sik data {data_mb:.0f} MB; one INSERT + COMMIT per visit over the network, "
        f"{args.interval * 1000:.0f} ms pause\n"
        + (
            f"external disk: its own ext4 filesystem ({args.disk_mb} MB, loop device)\n"
            if args.disk_mb
            else "external disk: a folder on the filesystem the database's files are on\n"
        )
        + (f"backup settings: {json.dumps(role_vars, sort_keys=True)}\n" if role_vars else "")
        + (f"a method with + also has: {json.dumps(compare, sort_keys=True)}\n" if compare else "")
    )
    head = (
        f"{'phase':<22} | {'commits':>7} | {'errors':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | "
        f"{'p99 / baseline':>14}"
    )
    print(head)
    print("-" * len(head))
    base_p99 = None
    for phase, spans in windows.items():
        values = [ms for t, ms in samples if any(start <= t <= end for start, end in spans)]
        errs = sum(1 for t in errors if any(start <= t <= end for start, end in spans))
        if not values:
            print(f"{phase:<22} | {0:>7} | {errs:>6} | no commits")
            continue
        p99 = pct(values, 0.99)
        base_p99 = base_p99 or p99
        print(
            f"{phase:<22} | {len(values):>7} | {errs:>6} | {statistics.median(values):>7.1f} | {p99:>7.1f} | "
            f"{max(values):>7.1f} | {p99 / base_p99:>13.2f}x"
        )
    print("\n" + "\n".join(extra))
    # When the slow commits happened: seconds into the backup task, against the module's phases.
    slow = 2 * (base_p99 or 0)
    print(f"\nCommits slower than {slow:.1f} ms (2x the baseline p99), seconds into the backup task:")
    for method, (start, end), phases in runs:
        marks = [f"{t - start:.1f}s:{ms:.0f}ms" for t, ms in samples if start <= t <= end and ms > slow]
        spans = " (" + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()) + ")" if phases else ""
        print(f"  {method:<8} task {end - start:4.1f} s{spans}: {' '.join(marks) or '-'}")


if __name__ == "__main__":
    main()
