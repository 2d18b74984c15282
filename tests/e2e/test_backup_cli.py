"""`simrs backup ...` end to end: the real CLI, the backup playbooks, the lab's external disk.

Checked in the hospital itself, not only by exit codes: the sets on the disk (as this machine
sees the lab's disk image, mounted at <lab state>/mnt/backup-disk), their files and modes, what
`break backup-corrupt` flipped and `heal` put back, and that a refused backup leaves the earlier
sets byte for byte as they were. Each test has its own SIMRS_HOME."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from orchestrator.lab import paths
from tests.e2e.conftest import simrs, simrs_json, status

SET_RE = re.compile(r"^\d{8}T\d{6}Z-(dump|physical)$")
PRIMARY = "simrs-primary"


# Every test here has its own journal.
pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def healed(lab):
    """Whatever a test broke is healed afterwards, so the next test starts from a healthy lab."""
    yield
    simrs("lab", "heal", timeout=300)


def disk() -> Path:
    """The external disk as this machine sees it (mounted whether or not a server has it plugged in)."""
    return paths.state_dir() / "mnt" / "backup-disk"


def sets_dir() -> Path:
    return disk() / "simrs-backups" / PRIMARY


def files_on_disk() -> dict[str, str]:
    """Every file of the backup tree with its sha256 (the lock file is bookkeeping, not data)."""
    root = disk() / "simrs-backups"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def take(*args: str) -> str:
    """A backup through the CLI (marking the disk if it is new); the name of the new set."""
    code, view, err = simrs_json("backup", "run", "--initialize-disk", *args)
    assert code == 0, err
    assert view["ok"] is True
    assert SET_RE.match(view["set"]), view
    return view["set"]


def listed(name: str) -> dict:
    code, view, err = simrs_json("backup", "list")
    assert code == 0, err
    found = {s["name"]: s for s in view["sets"]}
    assert name in found, (name, sorted(found))
    return found[name]


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_backup_list_verify_then_corrupt_is_flagged_and_heal_clears_it(lab, healed):
    name = take()
    folder = sets_dir() / name
    assert (folder / "manifest.json").is_file()
    assert {p.name for p in folder.iterdir()} >= {"manifest.json", "data.sql.zst.age", "accounts.sql.zst.age"}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    assert folder.stat().st_mode & 0o777 == 0o700
    assert listed(name)["state"] in ("not verified", "ok")

    code, view, err = simrs_json("backup", "verify", name)
    assert code == 0, err
    assert [(s["name"], s["state"]) for s in view["sets"]] == [(name, "ok")]
    row = listed(name)
    assert row["state"] == "ok"
    assert row["verified_at"]

    assert simrs("lab", "break", "backup-corrupt").returncode == 0
    flipped = Path(status()["faults"]["backup-corrupt"]["path"])
    # The fault flips bytes in the largest file of the newest set: the one just taken.
    assert flipped.parent == folder, f"`lab break backup-corrupt` flipped {flipped}, not a file of {name}"

    code, view, err = simrs_json("backup", "verify", name)
    assert code == 1, err
    (bad,) = view["sets"]
    assert bad["state"] == "BAD"
    assert flipped.name in bad["reason"]
    row = listed(name)
    assert row["state"] == "BAD"
    assert flipped.name in row["reason"]
    plain = simrs("backup", "list")
    assert plain.returncode == 0
    assert "BAD" in plain.stdout

    assert simrs("lab", "heal", "backup-corrupt").returncode == 0
    code, view, err = simrs_json("backup", "verify", name)
    assert code == 0, err
    assert listed(name)["state"] == "ok"


def test_disk_missing_is_refused_and_the_earlier_sets_are_untouched(lab, healed):
    earlier = take()
    before = files_on_disk()
    names_before = sorted(p.name for p in sets_dir().iterdir())

    assert simrs("lab", "break", "disk-missing").returncode == 0
    res = simrs("backup", "run", timeout=600)
    assert res.returncode == 2, res.stderr
    line = one_error_line(res.stderr)
    assert "/media/simrs-backup" in line
    assert "Nothing was written" in line
    listing = simrs("backup", "list", timeout=300)
    assert listing.returncode == 2, listing.stderr
    one_error_line(listing.stderr)
    assert simrs("lab", "heal", "disk-missing").returncode == 0

    assert sorted(p.name for p in sets_dir().iterdir()) == names_before  # nothing new, not even a .partial
    assert files_on_disk() == before
    assert listed(earlier)["state"] in ("not verified", "ok")


def test_physical_backup_and_binlog_shipping(lab):
    name = take("--method", "physical")
    assert name.endswith("-physical")
    assert (sets_dir() / name / "data.mbstream.zst.age").is_file()
    res = simrs("backup", "ship-binlogs")
    assert res.returncode == 0, res.stderr
    shipped = sorted((disk() / "simrs-backups" / "binlogs" / PRIMARY).glob("mysql-bin.[0-9]*"))
    assert [p for p in shipped if not p.name.endswith(".sha256")], "no binary log was shipped"
    code, view, err = simrs_json("backup", "list")
    assert code == 0, err
    assert view["binlogs"]["count"] >= 1
    code, view, err = simrs_json("backup", "verify", name)
    assert code == 0, err


def test_bad_input_is_exit_2(lab):
    res = simrs("backup", "run", "--method", "tape")
    assert res.returncode == 2
    assert "'tape' is not one of 'dump', 'physical'" in res.stderr
    res = simrs("backup", "verify", "--restore-host", "simrs-standby")
    assert res.returncode == 2
    assert "only means something with --test-restore" in one_error_line(res.stderr)
