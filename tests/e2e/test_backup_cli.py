"""`simrs backup ...` end to end: the real CLI, the backup playbooks, the lab's external disk.

Checked in the hospital itself, not only by exit codes: the sets on the disk (as this machine
sees the lab's disk image, mounted at <lab state>/mnt/backup-disk), their files and modes, what
`break backup-corrupt` flipped and `heal` put back, and that a refused backup leaves the earlier
sets byte for byte as they were. Each test has its own SIMRS_HOME."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.lab import paths
from tests.e2e.conftest import simrs, simrs_json, status

SET_RE = re.compile(r"^\d{8}T\d{6}Z-(dump|physical)$")
PRIMARY = "simrs-primary"
# Where a stray private key could sit on the primary (its own temporary folders included).
GREP_EXISTING = 'p=$1; shift; grep -rlI "$p" $(for d in "$@"; do [ -d "$d" ] && echo "$d"; done)'
KEY_DIRS = ("/etc", "/root", "/home", "/opt", "/usr/local", "/var/lib/simrs", "/var/log", "/tmp", "/var/tmp")  # noqa: S108


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


def test_the_scheduled_backups_run_without_the_private_key(lab, tmp_path):
    """Issue 18: the scheduled jobs and the primary hold only the recipients' public keys. The
    jobs `simrs schedule install` writes (as cron lines, the form this machine can run) take a
    backup, ship the binary logs and verify the sets with an inventory that has no private key,
    and nothing on the primary or in what the runs wrote holds one."""
    from orchestrator import schedule  # noqa: PLC0415
    from orchestrator.lab import lab as the_lab  # noqa: PLC0415

    inventory = tmp_path / "inventory"
    shutil.copytree(Path(the_lab.load_state()["inventory"]), inventory)
    key_file = inventory / "group_vars" / "all" / "backup_key.yml"
    kept = [line for line in key_file.read_text().splitlines() if "AGE-SECRET-KEY" not in line]
    assert len(kept) < len(key_file.read_text().splitlines()), "the lab's inventory has no private key"
    key_file.write_text("\n".join(kept) + "\n")
    assert "AGE-SECRET-KEY" not in "".join(p.read_text() for p in inventory.rglob("*") if p.is_file())

    cron = tmp_path / "cron.d"
    cron.mkdir()
    res = simrs("-i", str(inventory), "schedule", "install", "--kind", "cron", "--unit-dir", str(cron))
    assert res.returncode == 0, res.stderr
    jobs = {row["job"]: row["command"] for row in schedule.cron_jobs((cron / schedule.CRON_FILE).read_text())}
    before = {p.name for p in sets_dir().iterdir()} if sets_dir().is_dir() else set()
    for unit in ("simrs-backup-dump", "simrs-binlog-ship", "simrs-backup-verify"):
        line = jobs[unit]
        # What cron runs, minus the syslog pipe: the output comes back to the test instead.
        command = line.split(" root ", 1)[1].rsplit(" | logger", 1)[0]
        assert "-i " + str(inventory) in command, command
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, f"{unit} failed without the private key:\n{done.stdout[-3000:]}"

    # The sets that are new (verify also writes a verify.json into the earlier ones).
    new = sorted({p.name for p in sets_dir().iterdir()} - before)
    assert len(new) == 1, new
    assert new[0].endswith("-dump"), new
    names = sorted(p.name for p in (sets_dir() / new[0]).iterdir())
    assert any(name.endswith(".age") for name in names), names
    manifest = json.loads((sets_dir() / new[0] / "manifest.json").read_text())
    assert manifest["encryption"]["recipients"], "the manifest does not record the recipients"

    found = subprocess.run(
        # Only the folders that exist (grep says 2 for a missing one); /etc always does.
        ["podman", "exec", PRIMARY, "sh", "-c", GREP_EXISTING, "sh", "AGE-SECRET-KEY", *KEY_DIRS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert not found.stdout, f"a private key on the primary: {found.stdout}"
    assert found.returncode == 1, found.stderr  # grep: 1 = searched everything, found nothing
