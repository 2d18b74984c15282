"""Backups as the operator sees them: published results -> rows, verdicts and errors (pure), and
the `simrs backup` commands wired to the fake gateway of test_engine."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator import backups, cli, monthly, settings
from orchestrator.ansible import HostOutcome, PlayResult
from orchestrator.cli import base
from orchestrator.cli.base import exit_code
from orchestrator.errors import SimrsError
from orchestrator.journal import Journal
from tests.unit.test_engine import FakeGateway, result

PRIMARY = "simrs-primary"
DUMP = "20261125T233000Z-dump"
PHYS = "20261122T023000Z-physical"
NEW = "20261126T013000Z-dump"

NOT_MOUNTED = (
    "The external backup disk is not mounted at /media/simrs-backup (that folder does not exist). "
    "Plug in the disk labelled SIMRS-BACKUP and mount it there (mount LABEL=SIMRS-BACKUP "
    "/media/simrs-backup), then run again. Nothing was written."
)
UNMARKED = (
    "The disk mounted at /media/simrs-backup has no .simrs-backup-disk marker, so it may not be the "
    "backup disk (another USB disk or stick?). If it is the hospital's backup disk labelled SIMRS-BACKUP, "
    "mark it once: run the backup with -e backup_disk_initialize=true. Nothing was written."
)


def listed(name: str, verify: dict | None, complete: bool = True) -> dict:
    return {
        "name": name,
        "method": name.rsplit("-", 1)[1],
        "complete": complete,
        "created_at": "2026-11-25T23:30:00Z",
        "age_seconds": 9000,
        "size": 1_234_567,
        "encrypted": False,
        "row_total": 1504,
        "last_visit": None,
        "binlog": None,
        "verify": verify,
    }


LISTING = {
    "ok": True,
    "source_host": PRIMARY,
    "mount_point": "/media/simrs-backup",
    "free_bytes": 400 << 20,
    "sets": [
        listed(PHYS, {"verified_at": "2026-11-25T05:00:00Z", "ok": True, "bad_files": [],
                      "test_restore": {"ok": True, "detail": "rows match"}}),
        listed(DUMP, {"verified_at": "2026-11-26T01:00:00Z", "ok": False, "bad_files": ["data.sql.zst"],
                      "test_restore": None}),
        listed(NEW, None),
    ],
    "in_progress": [{"name": "20261126T020000Z-dump", "kind": "partial"}],
    "binlogs": {"dir": "/media/simrs-backup/simrs-backups/binlogs/simrs-primary", "count": 3,
                "newest": "mysql-bin.000007", "newest_age_seconds": 120},
    "detail": "3 sets",
}  # fmt: skip


def refused(playbook: str, message: str, action: str = "ansible.builtin.assert") -> PlayResult:
    """A role refusal as the runner reports it: the assert failed, the rescue published ok false."""
    return PlayResult(
        playbook,
        "failed",
        2,
        {PRIMARY: HostOutcome(PRIMARY, False, False, "Check the disk", message, action)},
        {PRIMARY: {"ok": False, "detail": message}},
        explanation=f"{PRIMARY}: {message}",
    )


# ---- pure ------------------------------------------------------------------------------------


def test_listing_rows_show_ok_bad_with_reason_and_not_verified():
    found = backups.listing(result(backups.LIST, {PRIMARY: LISTING}))
    states = {row.name: (row.state, row.reason, row.test_restored) for row in found.sets}
    assert states == {
        PHYS: ("ok", "", True),
        DUMP: ("BAD", "does not match its manifest: data.sql.zst", False),
        NEW: ("not verified", "", False),
    }
    assert found.in_progress == ("20261126T020000Z-dump (being written)",)
    assert found.free_bytes == 400 << 20
    assert [backups.state_text(r) for r in found.sets] == [
        "ok (test-restored)",
        "BAD: does not match its manifest: data.sql.zst",
        "not verified",
    ]


@pytest.mark.parametrize(
    ("verify", "complete", "state", "reason"),
    [
        (None, False, "incomplete", "no readable manifest.json: never restore it"),
        ({"ok": False, "bad_files": [], "test_restore": {"ok": False, "detail": "rows differ"}}, True,
         "BAD", "test restore failed: rows differ"),
        ({"ok": False, "bad_files": [], "test_restore": None}, True, "BAD", "marked bad by its last verify"),
        ({"ok": True, "bad_files": [], "test_restore": None}, True, "ok", ""),
    ],
)  # fmt: skip
def test_row_state(verify, complete, state, reason):
    row = backups.row_from_listing(listed(DUMP, verify, complete))
    assert (row.state, row.reason) == (state, reason)


@pytest.mark.parametrize(
    ("res", "code", "text"),
    [
        (refused(backups.RUN, NOT_MOUNTED), 2, "is not mounted at /media/simrs-backup"),
        (refused(backups.LIST, UNMARKED), 2, "simrs backup run --initialize-disk"),
        (refused(backups.RUN, "the external disk filled up after 3 MiB", "simrs.downtime.backup_take"), 1,
         "the backup failed on simrs-primary: the external disk filled up"),
        (PlayResult(backups.RUN, "failed", 4, {PRIMARY: HostOutcome(PRIMARY, False, True, "x", "no route")}),
         1, "simrs-primary is unreachable (no route)"),
        (PlayResult(backups.RUN, "successful", 0), 2, "in the group simrs_primary"),
        (PlayResult(backups.RUN, "timeout", -1, explanation="backup did not finish within its time limit"),
         1, "did not finish within its time limit"),
        (PlayResult(backups.LIST, "failed", 2,
                    {PRIMARY: HostOutcome(PRIMARY, False, False, "validate", "backup_method: value of x",
                                          "ansible.builtin.validate_argument_spec")},
                    {PRIMARY: {"ok": False, "detail": "stopped before the listing started"}}),
         2, "backup_method: value of x"),
        (result(backups.RUN, {PRIMARY: {"ok": True}, "simrs-standby": {"ok": True}}), 2, "exactly one host"),
    ],
)  # fmt: skip
def test_refusals_and_failures_are_one_clear_error(res, code, text):
    with pytest.raises(SimrsError) as caught:
        backups.published(res)
    assert exit_code(caught.value) == code
    assert text in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_verify_that_finds_a_bad_set_is_a_verdict_not_an_error():
    data = {
        "ok": False,
        "source_host": PRIMARY,
        "sets": [
            {"name": PHYS, "ok": True, "bad_files": [], "method": "physical", "size": 10, "age_seconds": 5,
             "created_at": "x", "verified_at": "y", "detail": "good", "test_restore": None},
            {"name": DUMP, "ok": False, "bad_files": ["data.sql.zst"], "method": "dump", "size": 10,
             "age_seconds": 5, "created_at": "x", "verified_at": "y",
             "detail": "BAD: data.sql.zst does not match its manifest (sha256 differs)",
             "test_restore": None},
        ],
        "newest_good": PHYS,
        "binlogs": {"bad": []},
        "recorded": True,
        "detail": "2 sets: 1 good, BAD: " + DUMP,
    }  # fmt: skip
    found = backups.verdict(result(backups.VERIFY, {PRIMARY: data}))
    assert found.exit_code == 1
    assert found.newest_good == PHYS
    bad = found.sets[1]
    assert (bad.state, bad.reason) == ("BAD", "data.sql.zst does not match its manifest (sha256 differs)")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "?"), (42, "42 s"), (600, "10 min"), (3 * 3600 + 300, "3 h 5 min"), (30 * 3600, "30 h"),
     (3 * 86400 + 7200, "3 d 2 h"), (-5, "in the future (check the server's clock)")],
)  # fmt: skip
def test_human_age(seconds, text):
    assert backups.human_age(seconds) == text


def test_extravars():
    assert backups.run_extravars("physical", True) == {
        "backup_method": "physical",
        "backup_disk_initialize": True,
    }
    assert backups.run_extravars("dump", False) == {"backup_method": "dump"}
    assert backups.verify_extravars(DUMP, True, "simrs-standby") == {
        "backup_verify_set": DUMP,
        "backup_verify_test_restore": True,
        "backup_verify_restore_host": "simrs-standby",
    }
    with pytest.raises(SimrsError, match="only means something with --test-restore"):
        backups.verify_extravars(None, False, "simrs-standby")


# ---- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def gateway(monkeypatch, tmp_path):
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))  # the runs are journaled (BACKUPS)
    monkeypatch.delenv("SIMRS_JOURNAL", raising=False)
    fake = FakeGateway({})
    monkeypatch.setattr(base, "make_gateway", lambda ctx: fake)
    return fake


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def test_run_passes_method_and_initialize(gateway):
    taken = {"ok": True, "set": NEW, "path": f"/media/simrs-backup/simrs-backups/{PRIMARY}/{NEW}",
             "detail": f"took a dump backup of sik in 1.2 s: {NEW}"}  # fmt: skip
    gateway.script[backups.RUN] = [result(backups.RUN, {PRIMARY: taken})]
    res = invoke("backup", "run", "--initialize-disk", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["set"] == NEW
    assert gateway.calls[0][0] == "backup"
    assert gateway.calls[0][1]["extravars"] == {"backup_method": "dump", "backup_disk_initialize": True}
    (recorded,) = Journal(settings.journal_path()).events(monthly.BACKUPS)
    assert (recorded.kind, recorded.data["ok"], recorded.data["set"]) == ("backup_run", True, NEW)


def test_run_refused_is_one_line_and_exit_2(gateway):
    gateway.script[backups.RUN] = [refused(backups.RUN, NOT_MOUNTED)]
    res = invoke("backup", "run", "--method", "physical")
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "not mounted at /media/simrs-backup" in lines[0]
    assert gateway.calls[0][1]["extravars"] == {"backup_method": "physical"}
    (recorded,) = Journal(settings.journal_path()).events(monthly.BACKUPS)  # a failure counts too
    assert (recorded.kind, recorded.data["ok"], recorded.data["method"]) == ("backup_run", False, "physical")
    assert "not mounted" in recorded.data["detail"]


def test_list_table_and_json(gateway):
    gateway.script[backups.LIST] = [result(backups.LIST, {PRIMARY: LISTING})]
    res = invoke("backup", "list")
    assert res.exit_code == 0, res.output
    for text in (PHYS, DUMP, NEW, "BAD: does not match its manifest", "not verified", "ok (test-restored)",
                 "mysql-bin.000007", "in progress"):  # fmt: skip
        assert text in res.stdout
    res = invoke("backup", "list", "--json")
    view = json.loads(res.stdout)
    assert [s["state"] for s in view["sets"]] == ["ok", "BAD", "not verified"]


def test_verify_exit_code_follows_the_verdict(gateway):
    good = {"ok": True, "sets": [], "newest_good": PHYS, "binlogs": None, "recorded": True, "detail": "ok"}
    gateway.script[backups.VERIFY] = [result(backups.VERIFY, {PRIMARY: good})]
    res = invoke("backup", "verify", PHYS, "--test-restore", "--json")
    assert res.exit_code == 0, res.output
    assert gateway.calls[0][1]["extravars"] == {
        "backup_verify_set": PHYS,
        "backup_verify_test_restore": True,
    }
    gateway.script[backups.VERIFY] = [result(backups.VERIFY, {PRIMARY: {**good, "ok": False}})]
    assert invoke("backup", "verify").exit_code == 1


def test_ship_binlogs(gateway):
    shipped = {"ok": True, "shipped": ["mysql-bin.000008"], "gap": [], "detail": "shipped mysql-bin.000008"}
    gateway.script[backups.SHIP] = [result(backups.SHIP, {PRIMARY: shipped})]
    res = invoke("backup", "ship-binlogs")
    assert res.exit_code == 0, res.output
    assert "shipped mysql-bin.000008" in res.stdout


# ---- the backup private key, checked before a restore, a drill or a test restore --------------------


def _inv(primary: dict, standby: dict | None = None) -> dict:
    return {
        "_meta": {"hostvars": {"simrs-primary": primary, "simrs-standby": standby or primary}},
        "all": {"children": ["simrs_primary", "simrs_standby"]},
        "simrs_primary": {"hosts": ["simrs-primary"]},
        "simrs_standby": {"hosts": ["simrs-standby"]},
    }


RECIPIENTS = {"backup_recipients": ["age1" + "q" * 58]}


def test_a_restore_without_the_private_key_is_refused_with_what_to_do():
    problem = backups.restore_key_problem(_inv(RECIPIENTS), "the drill")
    assert problem.startswith("the drill needs the backup private key")
    assert "backup_private_key" in problem
    assert "Nothing was changed" in problem


@pytest.mark.parametrize(
    "given",
    [
        {"backup_private_key": "AGE-SECRET-KEY-1X"},
        {"restore_private_key": "AGE-SECRET-KEY-1X"},
        {"backup_private_key": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n31"}},
    ],
)
def test_the_private_key_from_the_inventory_or_vault_lets_it_go(given):
    assert backups.restore_key_problem(_inv({**RECIPIENTS, **given}), "the drill") is None


def test_nothing_encrypted_to_recipients_needs_no_private_key():
    assert backups.restore_key_problem(_inv({}), "the drill") is None
    assert backups.restore_key_problem(_inv({"backup_encryption_key": "x" * 16}), "the drill") is None


def test_a_test_restore_without_the_private_key_is_refused_before_any_playbook(gateway, monkeypatch):
    from tests.unit import test_engine  # noqa: PLC0415

    raw = json.loads(json.dumps(test_engine.INVENTORY))
    for host in ("simrs-primary", "simrs-standby"):
        raw["_meta"]["hostvars"].setdefault(host, {})["backup_recipients"] = ["age1" + "q" * 58]
    monkeypatch.setattr(gateway, "inventory", lambda: raw)
    res = invoke("backup", "verify", "--test-restore")
    assert res.exit_code == 2, res.output
    assert "needs the backup private key" in res.stderr
    assert gateway.calls == []
    res = invoke("drill")
    assert res.exit_code == 2, res.output
    assert "the drill (it restores the newest backup) needs the backup private key" in res.stderr
    assert gateway.calls == []
