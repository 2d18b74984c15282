"""The filters that read the server probe's raw output (plugins/filter/server_probe.py, role
server_probe): df's rows, /proc's memory and load, a mariadb --batch row. Real output of the tools,
as the lab's servers print it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "server_probe.py"
spec = importlib.util.spec_from_file_location("server_probe_filter", PLUGIN)
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
FILTERS = plugin.FilterModule().filters()

DF = """\
File           Mounted on       1B-blocks        Used       Avail Use% Inodes IUsed IUse%
/var/lib/mysql /var/lib/mysql  1073741824   966367641   107374183  91%  65536  1200    2%
/              /              20957446144 10478723072 10478723072  50%      0     0     -
"""

PROC = """\
0.52 0.48 0.40 2/311 4242
MemTotal:        8041216 kB
MemFree:          512000 kB
MemAvailable:    2010304 kB
processor\t: 0
vendor_id\t: GenuineIntel
processor\t: 1
vendor_id\t: GenuineIntel
"""


def test_df_rows_are_numbers_and_an_unlimited_inode_count_is_none():
    rows = FILTERS["df_rows"](DF.splitlines())
    assert rows == [
        {
            "path": "/var/lib/mysql",
            "target": "/var/lib/mysql",
            "size_bytes": 1073741824,
            "used_bytes": 966367641,
            "avail_bytes": 107374183,
            "used_pct": 91,
            "inodes_used_pct": 2,
        },
        {
            "path": "/",
            "target": "/",
            "size_bytes": 20957446144,
            "used_bytes": 10478723072,
            "avail_bytes": 10478723072,
            "used_pct": 50,
            "inodes_used_pct": None,
        },
    ]


def test_df_skips_a_row_that_is_not_a_measurement():
    # df names a missing path on stderr only; a short line (a wrapped or broken row) is no row.
    lines = [*DF.splitlines()[:2], "/missing"]
    assert [r["path"] for r in FILTERS["df_rows"](lines)] == ["/var/lib/mysql"]
    assert FILTERS["df_rows"]([]) == []


def test_proc_stats_reads_memory_load_and_cpus():
    assert FILTERS["proc_stats"](PROC) == {
        "memory": {"total_mb": 7852, "available_mb": 1963, "available_pct": 25.0},
        "load": {"load1": 0.52, "load5": 0.48, "load15": 0.4, "cpus": 2},
    }


def test_batch_row_gives_numbers_as_numbers_and_null_as_none():
    out = ["visits_today\tlast_visit\tlast_no_rawat\tnote", "42\t2026-12-03 10:01:02\tNULL\t-7"]
    assert FILTERS["batch_row"](out) == {
        "visits_today": 42,
        "last_visit": "2026-12-03 10:01:02",
        "last_no_rawat": None,
        "note": -7,
    }


def test_batch_without_a_row_is_empty():
    assert FILTERS["batch_row"](["visits_today"]) == {}
    assert FILTERS["batch_row"]([]) == {}
