# Copyright: the simrs project. GNU General Public License v3.0+
"""Filters that read the server probe's raw output (role server_probe): df's rows, /proc's memory
and load, and the first row of a ``mariadb --batch`` query. Filters run on the admin machine; the
code stays Python 3.9-compatible like the rest of plugins/."""

from __future__ import annotations

import re

DF_COLUMNS = 9  # file,target,size,used,avail,pcent,itotal,iused,ipcent
INTEGER = re.compile(r"^-?[0-9]+$")


def df_rows(lines):
    """One row per watched path that ``df -B1 --output=file,target,size,used,avail,pcent,itotal,
    iused,ipcent`` could measure (its header line first): {path, target, size_bytes, used_bytes,
    avail_bytes, used_pct, inodes_used_pct (None where the filesystem has no inode limit)}."""
    rows = []
    for line in list(lines)[1:]:
        f = line.split()
        if len(f) != DF_COLUMNS:
            continue
        rows.append(
            {
                "path": f[0],
                "target": f[1],
                "size_bytes": int(f[2]),
                "used_bytes": int(f[3]),
                "avail_bytes": int(f[4]),
                "used_pct": int(f[5][:-1]),
                "inodes_used_pct": int(f[8][:-1]) if f[8] != "-" else None,
            }
        )
    return rows


def _kb(text, field):
    match = re.search(field + r":\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def proc_stats(text):
    """Memory and load from ``cat /proc/loadavg /proc/meminfo /proc/cpuinfo``: {memory: {total_mb,
    available_mb, available_pct}, load: {load1, load5, load15, cpus}}. The load average is the
    whole machine's (in a container too), so it goes with all the machine's CPUs."""
    lines = text.splitlines()
    loadavg = lines[0].split() if lines else ["0", "0", "0"]
    total, available = _kb(text, "MemTotal"), _kb(text, "MemAvailable")
    return {
        "memory": {
            "total_mb": total // 1024,
            "available_mb": available // 1024,
            "available_pct": round(100 * available / max(total, 1), 1),
        },
        "load": {
            "load1": float(loadavg[0]),
            "load5": float(loadavg[1]),
            "load15": float(loadavg[2]),
            "cpus": sum(1 for line in lines if re.match(r"processor\s*:", line)),
        },
    }


def batch_row(lines):
    """The header and first row of ``mariadb --batch`` output as a mapping: whole numbers as
    numbers, NULL as None, the rest as text. {} when there is no row."""
    lines = list(lines)
    if len(lines) < 2:
        return {}
    row = {}
    for key, value in zip(lines[0].split("\t"), lines[1].split("\t")):
        row[key] = int(value) if INTEGER.match(value) else (None if value == "NULL" else value)
    return row


class FilterModule:
    def filters(self):
        return {"df_rows": df_rows, "proc_stats": proc_stats, "batch_row": batch_row}
