"""The paper-mode ledger (orchestrator/ledger.py, `simrs incident backfill`): which unit worked on
paper, when, which records it must type in, and who closed it; refusals write nothing."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from orchestrator import cli, ledger, procedure
from orchestrator.engine import Engine
from orchestrator.inventory import Hospital
from orchestrator.journal import Journal
from tests.unit.test_engine import (
    CLIENTS,
    NOTIFY_OK,
    Clock,
    FakeGateway,
    outage_script,
    result,
    step_data,
    triage_all,
)

UNITS = {"kasir-01": "kasir", "pendaftaran-01": "pendaftaran", "farmasi-01": "farmasi"}
HOSPITAL = Hospital(CLIENTS, "simrs-primary", "simrs-standby", 10, "approve", prestage=False, units=UNITS)
ANCHOR = "2026-11-26T02:00:00Z"
# admin_check.yml's published view with the count as the application's query (server_probe's
# admin view: the query's row under db, its check under checks.db_query).
COUNTED = result(
    "admin_check",
    {
        "localhost": {
            "healthy": True,
            "served_by": "simrs-primary",
            "checks": {"db_query": {"ok": True, "detail": "entered_later=7"}},
            "db": {"entered_later": 7},
        }
    },
)


def repaired(tmp_path):
    healthy = result("server_repair", {"simrs-primary": {"healthy": True}})
    script = outage_script(server_repair=[healthy], triage=[triage_all(False, False), triage_all(True, True)])
    clock = Clock()
    engine = Engine(
        Journal(tmp_path / "j.sqlite"), FakeGateway(script), HOSPITAL, now=clock.now, sleep=clock.sleep
    )
    incident_id = engine.open("kasir-01")
    engine.gateway.script["admin_check"] = [COUNTED]  # `incident backfill` asks the SIMRS its count
    return engine, engine.drive(incident_id)


def failed_over(tmp_path):
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    steps["failover_restore"] = [
        result("failover_restore", {"simrs-standby": {"ok": True, "rpo_anchor": {"at": ANCHOR}}})
    ]
    clock = Clock()
    engine = Engine(
        Journal(tmp_path / "j.sqlite"),
        FakeGateway({"notify": [NOTIFY_OK], **steps}),
        HOSPITAL,
        now=clock.now,
        sleep=clock.sleep,
    )
    incident_id = engine.open_failover("ops", "dead")
    return engine, engine.drive(incident_id)


def test_a_repaired_outage_lists_the_units_told_with_the_outage_as_the_range(tmp_path):
    engine, inc = repaired(tmp_path)
    assert inc.phase == procedure.Phase.RESOLVED
    rows = ledger.ledger(inc, engine.journal.events(inc.id), UNITS)
    assert [r.unit for r in rows] == ["kasir"]  # only kasir-01's screen took the notice (NOTIFY_OK)
    (row,) = rows
    assert row.open
    notices = [e for e in engine.journal.events(inc.id) if e.kind == "notice"]
    assert row.paper_from == notices[0].ts
    assert row.paper_to == notices[-1].ts
    assert row.range_from == inc.opened_at
    assert row.range_to == inc.verified_at


def test_a_failover_range_runs_from_the_restored_datas_last_transaction_to_the_standby_serving(tmp_path):
    engine, inc = failed_over(tmp_path)
    rows = ledger.ledger(inc, engine.journal.events(inc.id), UNITS)
    verify = next(
        e for e in engine.journal.events(inc.id) if e.kind == "failover_step" and e.data["step"] == "verify"
    )
    assert rows[0].range_from == 1_795_658_400.0  # 2026-11-26 02:00:00 UTC
    assert rows[0].range_to == verify.ts


@pytest.fixture
def wired(tmp_path, monkeypatch):
    engine, inc = repaired(tmp_path)
    monkeypatch.setattr(cli.base, "make_engine", lambda ctx, ui=None: engine)
    return engine, inc


def test_backfill_lists_records_and_refuses_without_writing(wired):
    engine, inc = wired
    res = CliRunner().invoke(cli.main, ["incident", "backfill", inc.id, "--json"])
    assert res.exit_code == 0, res.output
    assert [u["unit"] for u in json.loads(res.stdout)["units"]] == ["kasir"]
    before = len(engine.journal.events(inc.id))
    for args, words in (
        (["--unit", "radiologi", "--done"], "no unit 'radiologi'"),
        (["--unit", "farmasi", "--done"], "farmasi was not on paper"),
        (["--unit", "kasir"], "both --unit UNIT and --done"),
        (["--unit", "kasir", "--done", "--count", "-1"], "--count must be 0 or more"),
    ):
        res = CliRunner().invoke(cli.main, ["incident", "backfill", inc.id, *args])
        assert res.exit_code == 2, res.output
        assert words in res.output
    assert len(engine.journal.events(inc.id)) == before  # nothing written
    res = CliRunner().invoke(
        cli.main,
        ["incident", "backfill", inc.id, "--unit", "kasir", "--done", "--by", "Ani", "--count", "12"],
    )
    assert res.exit_code == 0, res.output
    done = [e.data for e in engine.journal.events(inc.id) if e.kind == "backfill_done"]
    assert done == [{"unit": "kasir", "by": "Ani", "count": 12}]
    res = CliRunner().invoke(cli.main, ["incident", "backfill", inc.id, "--unit", "kasir", "--done"])
    assert res.exit_code == 2
    assert "already closed (by Ani)" in res.output


def test_status_names_the_units_still_to_type_in(wired):
    _engine, inc = wired
    res = CliRunner().invoke(cli.main, ["incident", "status", inc.id, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["backfill_open"] == ["kasir"]
    res = CliRunner().invoke(cli.main, ["incident", "status", inc.id])
    assert "paper records not yet typed in: kasir" in res.output


def test_the_report_lists_each_units_backfill(wired):
    engine, inc = wired
    from orchestrator import report  # noqa: PLC0415

    text = report.render(
        inc.id,
        engine.journal.events(inc.id),
        {"name": "RSUD", "address": "Jakarta", "head_of_unit": "dr. A"},
        "en",
        "md",
        UNITS,
    )
    assert "PAPER RECORDS TO TYPE INTO THE SIMRS" in text
    assert "| kasir |" in text
    assert "NOT YET" in text
    ledger.record_done(engine.journal, inc, UNITS, "kasir", "Ani", 12)
    html = report.render(
        inc.id,
        engine.journal.events(inc.id),
        {"name": "RSUD", "address": "Jakarta", "head_of_unit": "dr. A"},
        "id",
        "html",
        UNITS,
    )
    assert "PENGINPUTAN ULANG DATA DARI FORMULIR KERTAS" in html
    assert "Ani" in html
    assert "(12)" in html


def test_the_simrs_count_query_counts_the_ranges_visits_by_registration_time():
    q = ledger.count_query(1_795_658_400.4, 1_795_659_000.2)
    assert q.startswith("SELECT COUNT(*) AS entered_later FROM reg_periksa WHERE ")
    # (start, end]: the range's start is already in the restored data; whole seconds (jam_reg).
    assert "TIMESTAMP(tgl_registrasi, jam_reg) > FROM_UNIXTIME(1795658400)" in q
    assert "TIMESTAMP(tgl_registrasi, jam_reg) <= FROM_UNIXTIME(1795659001)" in q
    assert "tgl_registrasi BETWEEN DATE(FROM_UNIXTIME(1795658400)) AND DATE(FROM_UNIXTIME(1795659001))" in q
    with pytest.raises(ValueError, match="ends before it starts"):
        ledger.count_query(10, 5)


def test_the_simrs_count_is_read_from_the_probes_view_or_says_why_not():
    ok = ledger.simrs_count(COUNTED.data, 1.0, 2.0)
    assert (ok.count, ok.served_by, ok.table) == (7, "simrs-primary", "reg_periksa")
    refused = {
        "localhost": {
            "checks": {"db_query": {"ok": False, "detail": "(1045, \"Access denied for user 'simrs'\")"}},
            "db": {},
        }
    }
    no = ledger.simrs_count(refused, 1.0, 2.0)
    assert no.count is None
    assert "Access denied" in no.detail
    assert ledger.simrs_count({}, 1.0, 2.0).detail == "the probe published no answer"
    garbled = {"localhost": {"checks": {"db_query": {"ok": True}}, "db": {"entered_later": "x"}}}
    assert ledger.simrs_count(garbled, 1.0, 2.0).count is None


def test_the_count_range_waits_for_the_simrs_to_be_back(tmp_path):
    engine, inc = repaired(tmp_path)
    rows = ledger.ledger(inc, engine.journal.events(inc.id), UNITS)
    assert ledger.count_range(rows) == (inc.opened_at, inc.verified_at)
    still_on_paper = [dataclasses.replace(r, paper_to=None) for r in rows]
    assert ledger.count_range(still_on_paper) is None
    assert ledger.count_range([]) is None


def test_backfill_shows_the_simrs_count_next_to_the_units_own(wired):
    engine, inc = wired
    runner = CliRunner()
    res = runner.invoke(
        cli.main, ["incident", "backfill", inc.id, "--unit", "kasir", "--done", "--count", "5"]
    )
    assert res.exit_code == 0, res.output
    assert "the SIMRS itself holds 7 visits (reg_periksa)" in res.stdout
    assert "the units recorded 5" in res.stdout
    query = engine.gateway.calls[-1]
    assert query[0] == "admin_check"
    sent = query[1]["extravars"]["server_probe_app_query"]
    assert sent == ledger.count_query(inc.opened_at, inc.verified_at)
    view = json.loads(runner.invoke(cli.main, ["incident", "backfill", inc.id, "--json"]).stdout)
    assert view["simrs_count"]["count"] == 7
    assert view["simrs_count"]["range_from"] == inc.opened_at
    calls = len(engine.gateway.calls)
    view = json.loads(
        runner.invoke(cli.main, ["incident", "backfill", inc.id, "--json", "--no-simrs-count"]).stdout
    )
    assert view["simrs_count"] is None
    assert len(engine.gateway.calls) == calls  # not asked
    engine.gateway.script["admin_check"] = [result("admin_check", {}, status="failed")]
    res = runner.invoke(cli.main, ["incident", "backfill", inc.id])
    assert res.exit_code == 0  # the ledger stands without the SIMRS's count
    assert "the SIMRS could not be asked for its own count" in res.stdout
