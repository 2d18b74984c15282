"""A damaged journal (issue 17, item 4): real SQLite files, bytes really overwritten. Every command
that meets the damage stops with one error that names the file and the way back, and leaves the
file byte for byte as it was; `simrs journal check` finds it; `simrs journal restore` goes back to a
good copy and keeps the damaged file aside; the daily copy is taken once a day, checked, pruned to
14 and never taken from a damaged journal. Only the Ansible gateway is faked."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import cli, journal
from orchestrator.cli.base import exit_code
from orchestrator.journal import Journal, JournalDamagedError, JournalError
from tests.unit.test_drill import InventoryGateway

DAY = 86400.0
NOON = time.mktime((2026, 12, 1, 12, 0, 0, 0, 0, -1))  # local noon: days never straddle midnight


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fill(path: Path, events: int = 300) -> None:
    """A journal spanning about a hundred pages: ~1 KB of data per event, five incidents."""
    j = Journal(path, copy_daily=False)
    for i in range(events):
        j.append(f"INC-20261201-{i % 5 + 1:03d}", "opened" if i < 5 else "note", {"n": i, "blob": "x" * 1000})


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    """One journal of 300 events, written once (each append is fsynced: seconds), copied per test."""
    path = tmp_path_factory.mktemp("template") / "journal.sqlite"
    _fill(path)
    return path


def _place(full: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(full, path)
    path.chmod(0o600)
    return path


def _overwrite_middle(path: Path) -> None:
    """4 KB of 0xFF on a page boundary in the middle of the file (a bad sector, a bad write)."""
    data = path.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    assert len(data) // page > 50  # the events really span many pages
    at = (len(data) // page // 2) * page
    with path.open("r+b") as handle:
        handle.seek(at)
        handle.write(b"\xff" * 4096)


def _overwrite_header(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.write(b"\xff" * 100)


@pytest.fixture
def home(tmp_path, monkeypatch, full):
    """A journal with events and today's copy, and the commands wired to it (SIMRS_HOME)."""
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    monkeypatch.delenv("SIMRS_JOURNAL", raising=False)
    monkeypatch.setattr(cli.base, "make_gateway", lambda ctx: InventoryGateway({}))
    path = _place(full, tmp_path / "simrs" / "journal.sqlite")
    journal.take_copy(path)
    return path


def _listing(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


COMMANDS = [
    ["incident", "status"],
    ["report"],
    ["journal", "check"],
    ["incident", "open", "--reporter", "kasir-01"],
    ["maintain", "log", "genset"],
    ["journal", "backup"],
]


@pytest.mark.parametrize("damage", [_overwrite_middle, _overwrite_header])
@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_every_command_stops_at_a_damaged_journal_and_names_the_way_back(home, args, damage):
    damage(home)
    before = _listing(home.parent)
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())  # rich may wrap long lines
    assert str(home) in text
    assert "DAMAGED" in text or "is damaged" in text
    copy = journal.copies_dir(home) / f"journal-{time.strftime('%Y%m%d')}.sqlite"
    assert f"simrs journal restore --from {copy}" in text
    assert "incident resume" not in text  # the generic "failed: ... resume" would fail the same way
    if args[:2] != ["journal", "check"]:
        assert "nothing was written to it" in text
    assert _listing(home.parent) == before  # the damaged file, its copies: byte for byte as they were


def test_journal_check_finds_the_damage_and_lists_the_copies(home):
    assert CliRunner().invoke(cli.main, ["journal", "check"]).exit_code == 0
    _overwrite_middle(home)
    res = CliRunner().invoke(cli.main, ["journal", "check", "--json"])
    assert res.exit_code == 1
    view = json.loads(res.stdout)
    assert view["sound"] is False
    assert view["problems"]
    assert [c["sound"] for c in view["copies"]] == [True]
    assert view["copies"][0]["events"] == 300
    assert view["way_back"] == f"simrs journal restore --from {view['copies'][0]['path']}"


@pytest.mark.parametrize(
    ("bad", "found"),
    [(b', "n": 42]', "does not decode"), (b', "n": 4\xff}', "Could not decode to UTF-8")],
    ids=["not JSON", "not UTF-8"],
)
def test_a_row_that_no_longer_decodes_is_found(home, bad, found):
    data = home.read_bytes()
    row = b', "n": 42}'
    assert data.count(row) == 1
    home.write_bytes(data.replace(row, bad))  # the pages stay valid, the event does not
    before = _sha(home)
    res = CliRunner().invoke(cli.main, ["journal", "check"])
    assert res.exit_code == 1
    assert found in " ".join(res.output.split())
    with pytest.raises(JournalDamagedError, match=found):
        Journal(home).events("INC-20261201-003")
    res = CliRunner().invoke(cli.main, ["report", "INC-20261201-003"])
    assert res.exit_code == 1
    assert "simrs journal restore --from" in " ".join(res.output.split())
    assert _sha(home) == before


def test_without_a_copy_the_message_says_what_to_do(tmp_path, full):
    path = _place(full, tmp_path / "journal.sqlite")
    _overwrite_middle(path)
    with pytest.raises(JournalDamagedError) as caught:
        Journal(path).incidents()
    assert exit_code(caught.value) == 1
    assert "There is no good copy" in str(caught.value)
    assert f"mv {path} {path}.damaged" in str(caught.value)


def test_restore_brings_back_a_sound_journal_and_keeps_the_damaged_one_aside(home):
    Journal(home).append("INC-20261201-001", "note", {"after": "the copy"})  # lost with the damage
    _overwrite_middle(home)
    damaged = _sha(home)
    copy = journal.copies(home)[0].path
    res = CliRunner().invoke(cli.main, ["journal", "restore", "--from", str(copy), "--yes"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "300 events" in text
    assert "none of it can be read from the damaged file" in text
    aside = [p for p in home.parent.iterdir() if p.name.startswith("journal.sqlite.damaged-")]
    assert len(aside) == 1
    assert _sha(aside[0]) == damaged  # kept as it was, never written
    assert stat.S_IMODE(home.stat().st_mode) == 0o600
    assert journal.inspect(home).sound
    assert CliRunner().invoke(cli.main, ["journal", "check"]).exit_code == 0
    assert Journal(home).incidents() == [f"INC-20261201-{n:03d}" for n in range(1, 6)]


def test_restore_moves_the_wal_and_shm_aside_with_the_damaged_file(home):
    _overwrite_middle(home)
    # A crash leaves a -wal of committed events beside the damaged file (no checkpoint on close).
    crash = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute(\"INSERT INTO events (incident, ts, kind, data) VALUES ('X', 1, 'note', '{}')\")\n"
        "os._exit(0)\n"
    )
    assert subprocess.run([sys.executable, "-c", crash, str(home)], check=False).returncode == 0
    wal = home.with_name(home.name + "-wal")
    assert wal.stat().st_size > 0
    kept = {"": _sha(home), "-wal": _sha(wal)}
    res = CliRunner().invoke(cli.main, ["journal", "restore", "--from", time.strftime("%Y%m%d"), "--yes"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in home.parent.iterdir() if ".damaged-" in p.name)
    assert [n.rsplit("-", 1)[-1] for n in names[1:]] == ["shm", "wal"]
    assert all(n.startswith(names[0]) for n in names)  # the aside file's own -wal/-shm names
    assert _sha(home.parent / names[0]) == kept[""]
    assert _sha(home.parent / names[2]) == kept["-wal"]  # the crash's events, kept for a recovery
    assert journal.inspect(home).sound
    assert not wal.exists()  # an old WAL beside the restored file would be replayed into it


@pytest.mark.parametrize("case", ["copy damaged", "journal sound", "run holds a lock", "no such copy"])
def test_restore_refuses_and_changes_nothing(home, case):
    copy = journal.copies(home)[0].path
    if case == "copy damaged":
        _overwrite_middle(home)
        _overwrite_middle(copy)
    held = Journal(home).lock("INC-20261201-001", "driving the SOP") if case == "run holds a lock" else None
    if held is not None:
        _overwrite_middle(home)
        held.__enter__()
    before = _listing(home.parent)
    source = "19990101" if case == "no such copy" else str(copy)
    res = CliRunner().invoke(cli.main, ["journal", "restore", "--from", source, "--yes"])
    if held is not None:
        held.__exit__(None, None, None)
    assert res.exit_code == 2, res.output
    assert "nothing was changed" in res.output or "there is no copy" in res.output
    assert _listing(home.parent) == before


def test_restore_over_a_sound_journal_needs_force(home):
    copy = journal.copies(home)[0].path
    Journal(home).append("INC-20261201-001", "note", {"after": "the copy"})
    before = _sha(home)
    res = CliRunner().invoke(cli.main, ["journal", "restore", "--from", str(copy), "--yes", "--force"])
    assert res.exit_code == 0, res.output
    assert journal.inspect(home).events == 300
    (aside,) = [p for p in home.parent.iterdir() if ".replaced-" in p.name]
    assert _sha(aside) == before


# ---- the daily copy -------------------------------------------------------------------------------


def test_the_daily_copy_is_taken_once_a_day_checked_and_private(tmp_path):
    path = tmp_path / "journal.sqlite"
    _fill(path, 20)
    first = journal.daily_copy(path, NOON)
    assert first is not None
    assert first.path.name == f"journal-{time.strftime('%Y%m%d', time.localtime(NOON))}.sqlite"
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert journal.inspect(first.path).events == 20
    taken = _sha(first.path)
    Journal(path, copy_daily=False).append("INC-20261201-001", "note", {})
    assert journal.daily_copy(path, NOON + 3600) is None  # the same day: nothing taken again
    assert _sha(first.path) == taken
    second = journal.daily_copy(path, NOON + DAY)
    assert second is not None
    assert journal.inspect(second.path).events == 21
    assert [c.path for c in journal.copies(path)] == [second.path, first.path]


def test_opening_the_journal_takes_todays_copy_once(tmp_path):
    path = tmp_path / "journal.sqlite"
    Journal(path).append("INC-20261201-001", "opened", {})
    assert journal.copies(path) == []  # an empty journal had nothing to keep
    Journal(path)
    (copy,) = journal.copies(path)
    mtime = copy.path.stat().st_mtime_ns
    Journal(path).append("INC-20261201-001", "note", {})
    Journal(path)
    assert [c.path for c in journal.copies(path)] == [copy.path]
    assert copy.path.stat().st_mtime_ns == mtime


def test_copies_are_pruned_to_the_newest_14(tmp_path):
    path = tmp_path / "journal.sqlite"
    _fill(path, 5)
    for day in range(16):
        journal.daily_copy(path, NOON + day * DAY)
    kept = journal.copies(path)
    assert len(kept) == journal.COPIES_KEPT == 14
    days = [time.strftime("%Y%m%d", time.localtime(NOON + d * DAY)) for d in range(15, 1, -1)]
    assert [c.day for c in kept] == days
    assert stat.S_IMODE(journal.copies_dir(path).stat().st_mode) == 0o700


def test_no_copy_is_taken_from_a_damaged_journal(tmp_path, full):
    path = _place(full, tmp_path / "journal.sqlite")
    good = journal.daily_copy(path, NOON)
    assert good is not None
    kept = _sha(good.path)
    _overwrite_middle(path)
    for when in (NOON + 60, NOON + DAY):  # neither over today's good copy nor as tomorrow's
        with pytest.raises(JournalDamagedError, match=str(good.path)):
            journal.take_copy(path, when)
    with pytest.raises(JournalDamagedError):
        journal.daily_copy(path, NOON + DAY)
    assert [c.path for c in journal.copies(path)] == [good.path]
    assert _sha(good.path) == kept
    assert not [p for p in journal.copies_dir(path).iterdir() if p.name.startswith(".")]  # no temp left


def test_a_journal_opened_on_a_new_day_with_damage_is_refused_before_anything(tmp_path, full):
    path = _place(full, tmp_path / "journal.sqlite")
    _overwrite_middle(path)
    before = _sha(path)
    with pytest.raises(JournalDamagedError):
        Journal(path)  # today's copy would be the first read of the whole file: it finds the damage
    assert _sha(path) == before
    assert journal.copies(path) == []


def test_backup_on_demand_replaces_todays_copy_and_refuses_without_a_journal(home, monkeypatch):
    Journal(home).append("INC-20261201-001", "note", {})
    res = CliRunner().invoke(cli.main, ["journal", "backup"])
    assert res.exit_code == 0, res.output
    assert journal.inspect(journal.copies(home)[0].path).events == 301
    monkeypatch.setenv("SIMRS_JOURNAL", str(home.parent / "none.sqlite"))
    res = CliRunner().invoke(cli.main, ["journal", "backup"])
    assert res.exit_code == 2
    assert "nothing to copy" in res.output
    assert isinstance(JournalDamagedError(home, "x"), JournalError)


def test_a_copy_that_cannot_be_made_does_not_stop_the_command(tmp_path, caplog):
    path = tmp_path / "journal.sqlite"
    Journal(path).append("INC-20261201-001", "opened", {})
    journal.copies_dir(path).write_text("not a folder")  # where the copies go cannot hold them
    j = Journal(path)
    j.append("INC-20261201-001", "note", {})
    assert len(j.events("INC-20261201-001")) == 2
    assert "no daily copy of the journal" in caplog.text
    assert "simrs journal backup" in caplog.text


def test_a_missing_journal_is_not_damage_and_can_be_restored(home):
    copy = journal.copies(home)[0].path
    home.unlink()
    res = CliRunner().invoke(cli.main, ["journal", "check"])
    assert res.exit_code == 0
    assert "none yet" in res.output
    assert journal.copies(home)[0].path == copy  # listed for the way back
    res = CliRunner().invoke(cli.main, ["journal", "restore", "--from", copy.name, "--yes"])
    assert res.exit_code == 0, res.output
    assert journal.inspect(home).events == 300
    assert not [p for p in home.parent.iterdir() if ".damaged-" in p.name]


def test_a_raw_sqlite_error_that_escapes_still_gets_the_way_back_not_resume(home, capsys):
    """The last line of defence (cli.base.handle_errors): damage read outside journal.py's helpers."""
    _overwrite_middle(home)

    @cli.base.handle_errors
    def reads_around_the_journal() -> None:
        with contextlib.closing(sqlite3.connect(home)) as db:
            db.execute("SELECT count(*) FROM events WHERE data LIKE '%n%'").fetchall()

    with pytest.raises(SystemExit) as caught:
        reads_around_the_journal()
    assert caught.value.code == 1
    text = " ".join(capsys.readouterr().err.split())
    assert f"the journal {home} is damaged (database disk image is malformed)" in text
    assert "simrs journal restore --from" in text
    assert "incident resume" not in text
