"""The drill's decisions (test address, RTO, RPO, its journal record), its run through a fake
gateway (the one thing unit tests may fake), its report and its CLI wiring."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator import cli, drill
from orchestrator.ansible import HostOutcome, PlayResult
from orchestrator.cli.base import exit_code
from orchestrator.drill import DrillError, DrillSettings
from orchestrator.engine import Engine
from orchestrator.inventory import Hospital
from orchestrator.journal import Journal
from tests.unit.test_engine import FakeGateway

SETTINGS = DrillSettings(
    primary="simrs-primary",
    standby="simrs-standby",
    drill_ip="198.18.0.13",
    service_ip="198.18.0.10",
    mgmt_ips={"simrs-primary": "198.18.0.11", "simrs-standby": "198.18.0.12", "kasir-01": "198.18.0.21"},
)
PHASES = {"power_on": 10.0, "restore": 30.5, "start": 4.0, "address": 2.5, "verify": 3.0, "power_off": 8.0}
RESTORE = {
    "set": "20261126T010000Z-dump",
    "created_at": "2026-11-26T01:00:00Z",
    "age_seconds": 3600,
    "action": "restored",
    "skipped_bad": [{"set": "20261126T013000Z-dump", "newer_by_seconds": 1800}],
    "extra_age_seconds": 1800,
    "binlogs_replayed": [{"file": "mysql-bin.000002", "transactions": 7}],
    "rpo_anchor": {"source": "binlog", "at": "2026-11-26T01:55:00Z", "last_visit": {"no_rawat": "X/1"}},
    "rpo_seconds": 300,
    "last_visit": {"no_rawat": "2026/11/26/000042"},
    "row_counts_ok": True,
}
VERIFY = {
    "ok": True,
    "address": "198.18.0.13",
    "served_by": "simrs-standby",
    "last_visit": {"no_rawat": "2026/11/26/000042"},
    "detail": "every check passed; served by simrs-standby",
}
INVENTORY = {
    "_meta": {
        "hostvars": {
            h: {"simrs_mgmt_ip": ip, "simrs_service_ip": "198.18.0.10", "simrs_drill_ip": "198.18.0.13"}
            for h, ip in SETTINGS.mgmt_ips.items()
        }
    },
    "all": {"children": ["simrs_primary", "simrs_standby", "simrs_clients"]},
    "simrs_primary": {"hosts": ["simrs-primary"]},
    "simrs_standby": {"hosts": ["simrs-standby"]},
    "simrs_clients": {"hosts": ["kasir-01"]},
}


class Clock:
    def __init__(self) -> None:
        self.t = 1_790_000_000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


def published(ok: bool = True, **changes) -> dict:
    standby = {
        "ok": ok,
        "drill_ip": "198.18.0.13",
        "started_at": "2026-11-26T02:00:00Z",
        "outage_at": "2026-11-26T02:00:00Z",
        "finished_at": "2026-11-26T02:01:00Z",
        "phases": dict(PHASES),
        "failed": None,
        "restore": RESTORE,
        "powered_off": True,
        "holds_service_ip": False,
        "detail": "drill passed: restored 20261126T010000Z-dump, verified on 198.18.0.13, standby off again",
        **changes,
    }
    return {"simrs-standby": standby, "localhost": {"primary_check": {"ok": True}, "verify": VERIFY}}


def play(data: dict, status: str = "successful", hosts: dict | None = None) -> PlayResult:
    return PlayResult("drill", status, 0 if status == "successful" else 2, hosts or {}, data)


PASSED = play(published())
FAILED_RESTORE = play(
    published(
        ok=False,
        phases={"power_on": 10.0, "power_off": 8.0},
        restore=None,
        failed={"phase": "restore", "task": "Stop with the reason", "message": "rows do not match"},
        detail="failed in restore (Stop with the reason): rows do not match",
    ),
    "failed",
)
REFUSED_ON = play(
    {},
    "failed",
    {
        "simrs-standby": HostOutcome(
            "simrs-standby",
            False,
            failed_task="Refuse unless the standby is cold",
            message="REFUSED: simrs-standby is on: it may be pre-staged for an incident.",
            failed_action="ansible.builtin.assert",
        )
    },
)


# ---- decisions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drill_ip", "problem"),
    [
        ("198.18.0.13", None),
        ("", "simrs_drill_ip is not set"),
        ("198.18.0", "is not an IPv4 address"),
        ("simrs-test", "is not an IPv4 address"),
        ("198.18.0.10", "is the service IP"),
        ("198.18.0.12", "own address (simrs_mgmt_ip) of simrs-standby"),
        ("198.18.0.21", "own address (simrs_mgmt_ip) of kasir-01"),
    ],
)
def test_the_test_address_must_be_free(drill_ip, problem):
    found = drill.drill_ip_problem(drill_ip, SETTINGS.service_ip, SETTINGS.mgmt_ips)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    ("phases", "rto"),
    [
        (PHASES, 50.0),  # everything but the power-off
        ({**PHASES, "power_off": 999}, 50.0),
        ({"power_on": 10.0, "restore": 30.5, "power_off": 8.0}, None),  # never verified: no RTO
        ({}, None),
    ],
)
def test_rto_is_the_time_until_verified(phases, rto):
    assert drill.rto_seconds(phases) == rto


def test_phases_keep_their_order_and_drop_what_did_not_run():
    shuffled = {"power_off": 8, "verify": 3.04, "power_on": 10, "unknown": 1, "restore": None}
    assert list(drill.phase_seconds(shuffled).items()) == [
        ("power_on", 10.0),
        ("verify", 3.0),
        ("power_off", 8.0),
    ]


@pytest.mark.parametrize(
    ("restore", "outage_at", "rpo"),
    [
        (RESTORE, "2026-11-26T02:00:00Z", 300),  # the role's own figure
        ({**RESTORE, "rpo_seconds": None}, "2026-11-26T02:00:00Z", 300),  # from the binlog anchor
        ({"created_at": "2026-11-26T01:00:00Z"}, "2026-11-26T02:00:00Z", 3600),  # from the set
        ({"created_at": "2026-11-26T01:00:00Z"}, None, None),
        (None, "2026-11-26T02:00:00Z", None),
    ],
)
def test_rpo_is_what_a_failover_at_the_start_would_lose(restore, outage_at, rpo):
    assert drill.rpo_seconds(restore, outage_at) == rpo


def test_facts_of_a_passed_drill():
    facts = drill.drill_facts(PASSED, SETTINGS)
    assert facts["ok"]
    assert not facts["refused"]
    assert facts["rto_seconds"] == 50.0
    assert facts["rpo_seconds"] == 300
    assert facts["restore"]["set"] == "20261126T010000Z-dump"
    assert facts["restore"]["skipped_bad"] == ["20261126T013000Z-dump"]
    assert facts["restore"]["binlog_transactions"] == 7
    assert facts["verify"]["served_by"] == "simrs-standby"
    assert facts["powered_off"]
    assert drill.exit_code(facts) == 0


def test_facts_of_a_failed_drill_keep_where_it_failed():
    facts = drill.drill_facts(FAILED_RESTORE, SETTINGS)
    assert not facts["ok"]
    assert not facts["refused"]
    assert facts["failed"]["phase"] == "restore"
    assert facts["rto_seconds"] is None
    assert facts["phases"] == {"power_on": 10.0, "power_off": 8.0}
    assert "rows do not match" in facts["detail"]
    assert drill.exit_code(facts) == 1


def test_a_refusal_by_the_playbook_is_a_refusal():
    facts = drill.drill_facts(REFUSED_ON, SETTINGS)
    assert facts["refused"]
    assert not facts["ok"]
    assert facts["detail"].startswith("REFUSED: simrs-standby is on")
    assert drill.exit_code(facts) == 2


def test_a_run_without_results_is_a_failure_not_a_refusal():
    facts = drill.drill_facts(play({}, "timeout"), SETTINGS)
    assert not facts["ok"]
    assert not facts["refused"]
    assert drill.exit_code(facts) == 1


def test_settings_from_the_inventory():
    assert DrillSettings.from_inventory(INVENTORY) == SETTINGS
    without = {**INVENTORY, "simrs_standby": {"hosts": []}}
    with pytest.raises(DrillError, match="one in simrs_standby"):
        DrillSettings.from_inventory(without)


# ---- the run, journaled ----------------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path):
    return Journal(tmp_path / "journal.sqlite")


def test_a_drill_is_journaled_and_never_an_incident(journal):
    gateway = FakeGateway({"drill": [PASSED]})
    clock = Clock()
    first, facts = drill.run(journal, gateway, SETTINGS, by="it-ops", now=clock)
    second, _ = drill.run(journal, gateway, SETTINGS, by="it-ops", now=clock)
    assert first.startswith("DRILL-")
    assert first.endswith("-001")
    assert second.endswith("-002")
    assert [c[0] for c in gateway.calls] == ["drill", "drill"]
    assert gateway.calls[0][1]["timeout"] == drill.DRILL_TIMEOUT_S
    assert [e.kind for e in journal.events(first)] == ["drill_started", "drill_finished"]
    assert journal.events(first)[0].data == {
        "standby": "simrs-standby",
        "drill_ip": "198.18.0.13",
        "by": "it-ops",
    }
    assert journal.events(first)[1].data == facts
    assert journal.drills() == [first, second]
    assert journal.incidents() == []
    hospital = Hospital(("kasir-01",), "simrs-primary", "simrs-standby", 60, "approve")
    assert Engine(journal, gateway, hospital).active_incident() is None
    # An incident opened after drills still gets the day's first incident number.
    assert journal.new_incident_id(clock()).endswith("-001")


def test_an_unsafe_test_address_is_refused_before_anything_runs(journal):
    gateway = FakeGateway({"drill": [PASSED]})
    unsafe = DrillSettings(**{**SETTINGS.__dict__, "drill_ip": "198.18.0.10"})
    with pytest.raises(DrillError, match="is the service IP") as refused:
        drill.run(journal, gateway, unsafe, by="it-ops")
    assert exit_code(refused.value) == 2
    assert gateway.calls == []
    assert journal.drills() == []


def test_an_open_incident_refuses_the_drill(journal):
    journal.append("INC-20261126-001", "opened", {"reporter": "kasir-01", "window_s": 3600})
    gateway = FakeGateway({"drill": [PASSED]})
    with pytest.raises(DrillError, match="incident INC-20261126-001 is open"):
        drill.run(journal, gateway, SETTINGS, by="it-ops")
    assert gateway.calls == []
    assert journal.drills() == []


def test_one_drill_at_a_time(journal):
    gateway = FakeGateway({"drill": [PASSED]})
    with journal.lock(drill.LOCK, "a drill"), pytest.raises(DrillError, match="another drill is running"):
        drill.run(journal, gateway, SETTINGS, by="it-ops")
    assert gateway.calls == []


def test_a_refused_playbook_is_journaled_as_refused(journal):
    drill_id, facts = drill.run(journal, FakeGateway({"drill": [REFUSED_ON]}), SETTINGS, by="it-ops")
    assert facts["refused"]
    assert journal.events(drill_id)[-1].data["refused"] is True


# ---- the report --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "id",
            [
                "LAPORAN UJI COBA PEMULIHAN",
                "BERHASIL",
                "memulihkan cadangan terbaru",
                "30 detik",
                "5 menit 0 detik",
            ],
        ),
        (
            "en",
            ["DISASTER-RECOVERY DRILL REPORT", "PASSED", "restore the newest backup", "50 s", "5 min 0 s"],
        ),
    ],
)
def test_the_report_is_short_and_in_the_hospitals_language(journal, lang, words):
    drill_id, _ = drill.run(journal, FakeGateway({"drill": [PASSED]}), SETTINGS, by="it-ops")
    text = drill.render_report(
        drill_id, journal.events(drill_id), {"name": "RSUD Contoh", "address": "Jl. 1"}, lang
    )
    for word in [*words, drill_id, "20261126T010000Z-dump", "20261126T013000Z-dump", "198.18.0.13"]:
        assert word in text, word
    assert len(text.splitlines()) < 40
    assert text.startswith("RSUD Contoh\n")


def test_the_report_lists_the_phases_in_the_order_they_ran(journal):
    drill_id, _ = drill.run(journal, FakeGateway({"drill": [PASSED]}), SETTINGS, by="it-ops")
    text = drill.render_report(drill_id, journal.events(drill_id), {"name": "", "address": ""}, "en")
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    assert rows[2:8] == [
        "power the standby on",
        "restore the newest backup",
        "start the SIMRS",
        "add the test address",
        "check the application",
        "clean up and power off",
    ]
    assert text.startswith("# SIMRS STANDBY SERVER")


def test_the_report_of_a_failed_drill_says_where(journal):
    drill_id, _ = drill.run(journal, FakeGateway({"drill": [FAILED_RESTORE]}), SETTINGS, by="it-ops")
    text = drill.render_report(drill_id, journal.events(drill_id), {"name": "", "address": ""}, "en")
    assert "FAILED" in text
    assert "failed in restore" in text


# ---- the command ---------------------------------------------------------------------------------


class InventoryGateway(FakeGateway):
    def inventory(self):
        return INVENTORY


@pytest.fixture
def wired(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    monkeypatch.delenv("SIMRS_JOURNAL", raising=False)
    gateway = InventoryGateway({"drill": [PASSED]})
    monkeypatch.setattr(cli.base, "make_gateway", lambda ctx: gateway)
    return gateway


def test_drill_json_and_report_file(wired, tmp_path):
    report = tmp_path / "drill.md"
    res = CliRunner().invoke(cli.main, ["drill", "--json", "--lang", "en", "-o", str(report)])
    assert res.exit_code == 0, res.output
    view = json.loads(res.stdout)
    assert view["id"].startswith("DRILL-")
    assert view["rto_seconds"] == 50.0
    assert "PASSED" in report.read_text()


def test_drill_prints_the_report(wired):
    res = CliRunner().invoke(cli.main, ["drill"])
    assert res.exit_code == 0, res.output
    assert "LAPORAN UJI COBA PEMULIHAN" in res.stdout


@pytest.mark.parametrize(("answer", "code"), [(FAILED_RESTORE, 1), (REFUSED_ON, 2)])
def test_drill_exit_codes(wired, answer, code):
    wired.script["drill"] = [answer]
    res = CliRunner().invoke(cli.main, ["drill", "--json"])
    assert res.exit_code == code, res.output
    assert json.loads(res.stdout)["ok"] is False
