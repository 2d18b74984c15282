"""The retention of plugins/modules/backup_prune.py (`plan`): which sets stay on the external disk.
The pure part only; Molecule `backup` prunes real sets on a real disk."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.unit.collection import load, module_utils


@pytest.fixture(scope="module")
def prune():
    module = load("plugins/modules/backup_prune.py")
    return module.plan, module_utils("backup").BackupSet


def backup_set(kind, when: str, method: str = "dump", verify: bool | None = None):
    stamp = dt.datetime.strptime(when, "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
    name = f"{stamp:%Y%m%dT%H%M%SZ}-{method}"
    return kind(
        name=name,
        path=f"/media/simrs-backup/simrs-backups/srv/{name}",
        stamp=stamp,
        method=method,
        manifest={"files": []},
        verify=None if verify is None else {"ok": verify},
    )


def kept(plan, sets, keep_daily=1, keep_weekly=0):
    return sorted(name for name, why in plan(sets, keep_daily, keep_weekly, []).items() if why)


def test_an_unverified_second_backup_of_the_day_keeps_the_first(prune):
    plan, kind = prune
    first = backup_set(kind, "2026-11-26 01:30")
    second = backup_set(kind, "2026-11-26 13:00")  # perhaps damaged on the disk: nobody knows yet
    reasons = plan([first, second], 1, 0, [])
    assert reasons[second.name] == ["daily 1", "newest good"]
    assert reasons[first.name] == ["daily 1: the day's newer set is not verified yet"]


def test_once_the_newer_set_is_verified_the_older_one_of_the_day_goes(prune):
    plan, kind = prune
    first = backup_set(kind, "2026-11-26 01:30", verify=True)
    second = backup_set(kind, "2026-11-26 13:00", verify=True)
    assert kept(plan, [first, second]) == [second.name]


def test_a_verified_older_set_is_kept_as_the_newest_verified_only_once(prune):
    plan, kind = prune
    first = backup_set(kind, "2026-11-26 01:30", verify=True)
    second = backup_set(kind, "2026-11-26 13:00")
    third = backup_set(kind, "2026-11-26 18:00")
    reasons = plan([first, second, third], 1, 0, [])
    # The day's previous set (second) stays for the unverified third; first is the newest verified.
    assert reasons[second.name] == ["daily 1: the day's newer set is not verified yet"]
    assert reasons[first.name] == ["newest verified"]


def test_only_the_days_within_keep_daily_keep_a_second_set(prune):
    plan, kind = prune
    old_a = backup_set(kind, "2026-11-20 01:30")
    old_b = backup_set(kind, "2026-11-20 13:00")
    new = backup_set(kind, "2026-11-26 01:30")
    assert kept(plan, [old_a, old_b, new], keep_daily=1) == [new.name]
    assert kept(plan, [old_a, old_b, new], keep_daily=2) == sorted([old_a.name, old_b.name, new.name])


def test_a_known_bad_set_is_never_the_second_set_kept(prune):
    plan, kind = prune
    bad = backup_set(kind, "2026-11-26 01:30", verify=False)
    good = backup_set(kind, "2026-11-26 13:00")
    assert kept(plan, [bad, good]) == [good.name]


def test_methods_are_kept_apart(prune):
    plan, kind = prune
    dump = backup_set(kind, "2026-11-26 01:30")
    physical_a = backup_set(kind, "2026-11-26 02:30", method="physical")
    physical_b = backup_set(kind, "2026-11-26 14:30", method="physical")
    assert kept(plan, [dump, physical_a, physical_b]) == sorted([dump.name, physical_a.name, physical_b.name])
