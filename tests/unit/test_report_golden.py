"""Golden files: the reports written from journals recorded in real runs of the lab hospital
(tests/fixtures/journals/*.json, exported from the journal; scripts/record-report-fixtures records
more), in both languages, compared with tests/fixtures/golden/ line for line; and the paper-mode
ledger's ranges checked against the journal's own times.

A change that alters a report on purpose: `SIMRS_UPDATE_GOLDEN=1 pytest tests/unit/test_report_golden.py`
rewrites the golden files; review the diff before committing it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from markupsafe import escape

from orchestrator import ledger, monthly, monthly_render, procedure, report
from orchestrator.journal import Event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDEN = FIXTURES / "golden"
HOSPITAL = {
    "name": "RSUD Contoh (lab)",
    "address": "Jl. Contoh No. 1, Jakarta Timur",
    "head_of_unit": "dr. Ani",
}
LAB_UNITS = {"kasir-01": "kasir", "pendaftaran-01": "pendaftaran", "farmasi-01": "farmasi"}
SECRETS = ("lab-only-app-secret", "lab-only-login-secret", "lab-only-webhook-token")  # the lab's


@pytest.fixture(autouse=True)
def jakarta(monkeypatch):
    """The hospital's clock (WIB, UTC+7): the golden files' times do not depend on the machine."""
    monkeypatch.setenv("TZ", "Asia/Jakarta")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def load(name: str) -> dict[str, list[Event]]:
    doc = json.loads((FIXTURES / "journals" / f"{name}.json").read_text())
    streams: dict[str, list[Event]] = {}
    for e in doc["events"]:
        streams.setdefault(e["incident"], []).append(
            Event(e["seq"], e["incident"], e["ts"], e["kind"], e["data"])
        )
    return streams


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SIMRS_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no golden file {path}: run with SIMRS_UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(), f"{name} differs from its golden file (SIMRS_UPDATE_GOLDEN=1 to accept)"


def test_the_failover_journal_is_what_a_real_run_records():
    (incident_id, events), *_ = load("demo-failover").items()
    inc = procedure.replay(incident_id, events)
    assert (inc.verdict, inc.phase) == (procedure.Verdict.SERVER, procedure.Phase.CLOSED)
    assert inc.failover_done == procedure.FAILOVER_STEPS
    assert [e.kind for e in events if e.kind == "takeover_step"]  # the ready standby's takeover
    text = json.dumps([e.data for e in events])
    assert not [s for s in SECRETS if s in text]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_failovers_evaluation_report_matches_its_golden_file(lang):
    (incident_id, events), *_ = load("demo-failover").items()
    for fmt in ("md", "html"):
        text = report.render(incident_id, events, HOSPITAL, lang, fmt, LAB_UNITS)
        assert not [s for s in SECRETS if s in text]
        if fmt == "md":  # the HTML carries the chart's SVG, whose bytes follow matplotlib's version
            golden(f"demo-failover.{lang}.md", text)
        else:
            assert str(escape(report.TEXT[lang]["title"])) in text


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_months_report_from_the_recorded_journal_matches_its_golden_file(lang):
    streams = load("demo-failover")
    incidents = {k: v for k, v in streams.items() if k.startswith("INC-")}
    last = max(e.ts for v in streams.values() for e in v)
    m = monthly.summarize(2026, 12, incidents, {}, {}, [], [], now=last + 3600, units=LAB_UNITS)
    (row,) = m.incidents
    events = incidents[row.id]
    opened = events[0].ts
    verify = next(e.ts for e in events if e.kind == "failover_step" and e.data["step"] == "verify")
    assert row.downtime_s == pytest.approx(verify - opened)
    (fo,) = m.failovers
    assert (fo.rto_s, fo.rpo_s) == (pytest.approx(verify - opened), 6)
    golden(f"demo-month.{lang}.md", monthly_render.render(m, HOSPITAL, lang, "md"))


def test_the_ledgers_ranges_are_the_journals_times():
    """After a failover: on paper from the paper-mode notice to the back-to-normal notice; records
    to enter from the restored data's last transaction (the binlog's, as the restore published it)
    to the standby's verification."""
    (incident_id, events), *_ = load("demo-failover").items()
    inc = procedure.replay(incident_id, events)
    rows = ledger.ledger(inc, events, LAB_UNITS)
    assert [r.unit for r in rows] == ["kasir", "pendaftaran", "farmasi"]
    paper = next(e for e in events if e.kind == "notice" and e.data["event"] == "outage_paper_mode")
    normal = next(e for e in events if e.kind == "notice" and e.data["event"] == "restored_on_standby")
    verify = next(e for e in events if e.kind == "failover_step" and e.data["step"] == "verify")
    anchor = inc.restored["rpo_anchor"]
    assert anchor["source"] == "binlog"
    for r in rows:
        assert (r.paper_from, r.paper_to) == (paper.ts, normal.ts)
        assert r.range_from == ledger._iso(anchor["at"])  # 2026-12-03T15:27:31Z
        assert r.range_to == verify.ts
        assert r.range_from < inc.opened_at < r.range_to
        assert r.open


# ---- scripts/record-report-fixtures: a client-local fault, a repaired server, a failover and back --


def lab_runs() -> dict[str, tuple[procedure.Incident, list[Event]]]:
    """The recorded lab runs by what happened: client_local, repaired, failover."""
    found = {}
    for incident_id, events in load("lab-runs").items():
        if not incident_id.startswith("INC-"):
            continue
        inc = procedure.replay(incident_id, events)
        if inc.verdict == procedure.Verdict.CLIENT_LOCAL:
            found["client_local"] = (inc, events)
        elif inc.failover_done:
            found["failover"] = (inc, events)
        elif inc.server_repaired:
            found["repaired"] = (inc, events)
    return found


def test_the_recorded_runs_are_the_three_cases():
    runs = lab_runs()
    assert set(runs) == {"client_local", "repaired", "failover"}
    inc, _ = runs["repaired"]
    assert inc.server == procedure.ServerState.SERVICE_DOWN
    assert "db_down" in inc.problems
    inc, events = runs["failover"]
    assert inc.failed_back
    assert [e.data["unit"] for e in events if e.kind == "backfill_done"] == ["kasir"]
    for _, events in runs.values():
        assert not [s for s in SECRETS if s in json.dumps([e.data for e in events])]


@pytest.mark.parametrize("case", ["client_local", "repaired", "failover"])
@pytest.mark.parametrize("lang", ["id", "en"])
def test_each_recorded_runs_report_matches_its_golden_file(case, lang):
    inc, events = lab_runs()[case]
    golden(f"lab-{case}.{lang}.md", report.render(inc.id, events, HOSPITAL, lang, "md", LAB_UNITS))


def test_the_ledger_of_each_recorded_run_follows_the_journal():
    runs = lab_runs()
    inc, events = runs["client_local"]
    assert ledger.ledger(inc, events, LAB_UNITS) == []  # one PC's fault: nobody went to paper
    inc, events = runs["repaired"]
    rows = ledger.ledger(inc, events, LAB_UNITS)
    assert rows
    for r in rows:  # a repaired server: the outage, from the first report to the verification
        assert (r.range_from, r.range_to) == (inc.opened_at, inc.verified_at)
        assert r.paper_from < r.paper_to
        assert inc.opened_at < r.paper_from < inc.verified_at <= r.paper_to
    inc, events = runs["failover"]
    rows = {r.unit: r for r in ledger.ledger(inc, events, LAB_UNITS)}
    done = next(e for e in events if e.kind == "backfill_done")
    assert rows["kasir"].done == {**done.data, "at": done.ts}
    assert [u for u, r in rows.items() if r.open] == ["pendaftaran", "farmasi"]
    verify = next(e for e in events if e.kind == "failover_step" and e.data["step"] == "verify")
    assert rows["kasir"].range_to == verify.ts
    assert rows["kasir"].range_from == ledger._iso(inc.restored["rpo_anchor"]["at"])


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_month_of_the_recorded_runs_matches_its_golden_file(lang):
    streams = load("lab-runs")
    incidents = {k: v for k, v in streams.items() if k.startswith("INC-")}
    last = max(e.ts for v in streams.values() for e in v)
    stamp = time.localtime(last)
    runs = lab_runs()
    m = monthly.summarize(
        stamp.tm_year, stamp.tm_mon, incidents, {}, {}, [], streams.get(monthly.BACKUPS, []),
        now=last + 3600, units=LAB_UNITS,
    )  # fmt: skip
    assert m.by_verdict == {"CLIENT_LOCAL": 1, "SERVER": 2}
    # every unit of the repaired outage, and the two the failover's kasir left open
    assert [(b["incident"], b["unit"]) for b in m.open_backfills] == [
        (runs["repaired"][0].id, "kasir"),
        (runs["repaired"][0].id, "pendaftaran"),
        (runs["repaired"][0].id, "farmasi"),
        (runs["failover"][0].id, "pendaftaran"),
        (runs["failover"][0].id, "farmasi"),
    ]
    (fb,) = m.failbacks
    assert fb["ok"]
    (fo,) = m.failovers
    inc, events = runs["failover"]
    verify = next(e for e in events if e.kind == "failover_step" and e.data["step"] == "verify")
    assert (fo.rto_s, fo.rpo_s) == (pytest.approx(verify.ts - inc.opened_at), inc.restored["rpo_seconds"])
    inc, _ = runs["repaired"]
    row = next(r for r in m.incidents if r.id == inc.id)
    assert row.downtime_s == pytest.approx(inc.verified_at - inc.opened_at)
    golden(f"lab-month.{lang}.md", monthly_render.render(m, HOSPITAL, lang, "md"))
