"""The monthly availability report (orchestrator/monthly.py, monthly_render.py, `simrs report
monthly`): exact numbers from journal records whose times the test sets, both languages, an empty
month, and the refusals of a bad --month."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from orchestrator import charts, cli, monthly, monthly_render, procedure
from orchestrator.engine import Engine
from orchestrator.journal import Event, Journal
from tests.unit.test_engine import NOTIFY_OK, Clock, FakeGateway, probe, result, step_data
from tests.unit.test_ledger import HOSPITAL, UNITS, repaired


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Month boundaries are local time: the tests pin the zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


NOV = time.mktime((2026, 11, 1, 0, 0, 0, 0, 0, -1))  # set after TZ: see stamp()
DAY = 86400


def stamp(day: int, hh: int, mm: int = 0) -> float:
    return float(dt.datetime(2026, 11, day, hh, mm, tzinfo=dt.UTC).timestamp())


def restamped(events: list[Event], start: float, step: float = 60.0) -> list[Event]:
    """The engine's own events (kinds and data as journaled), one every ``step`` seconds from start."""
    return [Event(e.seq, e.incident, start + i * step, e.kind, e.data) for i, e in enumerate(events)]


def failover_events(tmp_path) -> list[Event]:
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    steps["failover_restore"] = [
        result("failover_restore", {"simrs-standby": {"ok": True, "rpo_seconds": 900}})
    ]
    clock = Clock()
    engine = Engine(
        Journal(tmp_path / "f.sqlite"),
        FakeGateway({"notify": [NOTIFY_OK], **steps}),
        HOSPITAL,
        now=clock.now,
        sleep=clock.sleep,
    )
    incident_id = engine.open_failover("ops", "dead")
    engine.drive(incident_id)
    return engine.journal.events(incident_id)


def client_local_events(tmp_path) -> list[Event]:
    one_bad = result(
        "triage",
        {
            "kasir-01": probe(False, "route"),
            "farmasi-01": probe(True),
            "pendaftaran-01": probe(True),
            "localhost": {"healthy": True, "problems": []},
        },
    )
    fixed = result("client_repair", {"kasir-01": {"ok": True, "probe": probe(True)}})
    clock = Clock()
    engine = Engine(
        Journal(tmp_path / "c.sqlite"),
        FakeGateway({"triage": [one_bad, one_bad], "client_repair": [fixed]}),
        HOSPITAL,
        now=clock.now,
        sleep=clock.sleep,
    )
    incident_id = engine.open("kasir-01")
    engine.drive(incident_id)
    return engine.journal.events(incident_id)


def ev(stream: str, ts: float, kind: str, **data) -> Event:
    return Event(0, stream, ts, kind, data)


@pytest.fixture
def records(tmp_path):
    return make_records(tmp_path)


def make_records(tmp_path):
    """November 2026: a repaired outage (10 min), a failover (15 min, RPO 15 min), a client-local
    fault, a drill, backups, a planned restart, routine upkeep; and October's incident left out."""
    (tmp_path / "r").mkdir(parents=True)
    engine, inc = repaired(tmp_path / "r")
    outage = restamped(engine.journal.events(inc.id), stamp(10, 8))
    (tmp_path / "f").mkdir()
    fo = restamped(failover_events(tmp_path / "f"), stamp(20, 22))
    fo += [  # the next morning, back to the repaired main server (simrs failback)
        Event(0, fo[0].incident, stamp(21, 6), "action_started", {"action": "failback", "by": "ops"}),
        Event(0, fo[0].incident, stamp(21, 6, 2), "failback", {"by": "ops", "ok": True}),
    ]
    (tmp_path / "c").mkdir()
    local = restamped(client_local_events(tmp_path / "c"), stamp(5, 9))
    october = restamped(engine.journal.events(inc.id), stamp(10, 8) - 40 * DAY)
    drill = [
        ev("DRILL-1", stamp(15, 2), "drill_started"),
        ev(
            "DRILL-1",
            stamp(15, 2, 30),
            "drill_finished",
            ok=True,
            rto_seconds=240,
            rpo_seconds=120,
            restore={"created_at": "2026-11-15T01:00:00Z"},
        ),
    ]
    backups = [
        ev(monthly.BACKUPS, stamp(1, 1), "backup_run", ok=True, set="a"),
        ev(monthly.BACKUPS, stamp(2, 1), "backup_run", ok=False, detail="disk missing"),
        ev(
            monthly.BACKUPS,
            stamp(3, 2),
            "backup_verify",
            ok=False,
            sets=[
                {"name": "a", "created_at": "2026-11-01T01:00:00Z", "state": "ok"},
                {"name": "z", "created_at": "2026-10-30T01:00:00Z", "state": "BAD"},
            ],
        ),
    ]
    upkeep = [
        ev("MAINTENANCE", stamp(7, 10), "maintenance_done", what="ups", host="", on="2026-11-07", by="budi"),
        ev("MAINTENANCE", stamp(7, 10), "maintenance_done", what="ups", host="", on="2026-10-07", by="budi"),
    ]
    restart = [
        ev("RESTART-1", stamp(8, 2), "restart_started"),
        ev("RESTART-1", stamp(8, 2, 5), "restart_finished", ok=True, seconds=300),
    ]
    return {
        "incidents": {"INC-OCT": october, "INC-LOCAL": local, "INC-OUT": outage, "INC-FO": fo},
        "drills": {"DRILL-1": drill},
        "restarts": {"RESTART-1": restart},
        "maintenance": upkeep,
        "backups": backups,
    }


def summarize(records, **kw):
    return monthly.summarize(
        2026,
        11,
        **records,
        now=stamp(1, 0) + 60 * DAY,
        units=UNITS,
        in_service={"simrs-primary": dt.date(2021, 9, 1), "simrs-standby": dt.date(2024, 1, 1)},
        life_years=5,
        **kw,
    )


def test_the_months_numbers_are_exact(records):
    m = summarize(records)
    assert (m.start, m.end) == (stamp(1, 0), stamp(1, 0) + 30 * DAY)
    assert [r.id for r in m.incidents] == ["INC-LOCAL", "INC-OUT", "INC-FO"]  # October's left out
    assert m.by_verdict == {"CLIENT_LOCAL": 1, "SERVER": 2}
    rows = {r.id: r for r in m.incidents}
    assert rows["INC-LOCAL"].downtime_s is None  # one PC: not downtime
    assert rows["INC-OUT"].downtime_s == 600.0  # opened (event 0) -> verified (event 10), a minute each
    assert rows["INC-FO"].downtime_s == 960.0  # opened -> the standby verified (event 16)
    assert m.downtime_s == 1560.0
    assert m.availability_pct == round(100 * (1 - 1560 / (30 * DAY)), 3) == 99.94
    assert m.mttr_s == 780.0
    assert m.to_paper_s == (360 + 240) / 2  # notice delivered: events 6 and 4
    assert len(m.daily_availability) == 30
    assert m.daily_availability[9] == round(100 * (1 - 600 / DAY), 3) == 99.306
    assert m.daily_availability[19] == round(100 * (1 - 960 / DAY), 3) == 98.889
    assert m.daily_availability.count(100.0) == 28
    (fo,) = m.failovers
    assert (fo.incident, fo.rto_s, fo.rpo_s, fo.manual) == ("INC-FO", 960.0, 900.0, True)
    assert m.failbacks == [{"incident": "INC-FO", "at": stamp(21, 6, 2), "ok": True, "seconds": 120.0}]
    (drill,) = m.drills
    assert (drill.id, drill.ok, drill.rto_s, drill.rpo_s) == ("DRILL-1", True, 240, 120)
    assert m.backups == {"runs": 2, "failed": 1, "verifies": 1, "bad_sets": 1}
    ages = m.backup_age_days
    assert ages[:2] == [None, None]  # not verified before the 3rd
    assert ages[2] == 2.96  # end of the 3rd - set a taken 1 Nov 01:00 = 2 d 23 h
    assert ages[14] == 0.96  # the drill restored a set of the 15th 01:00
    assert ages[29] == 15.96
    assert [(b["incident"], b["unit"]) for b in m.open_backfills] == [
        ("INC-OUT", "kasir"),
        ("INC-FO", "kasir"),
    ]
    assert [(r["id"], r["ok"], r["seconds"]) for r in m.restarts] == [("RESTART-1", True, 300)]
    assert m.maintenance == [{"what": "ups", "host": "", "on": "2026-11-07", "by": "budi"}]
    assert m.servers == [{"host": "simrs-primary", "since": "2021-09-01", "years": 5.2, "state": "due"}]


def test_a_month_in_progress_counts_to_now(records):
    m = monthly.summarize(2026, 11, **records, now=stamp(10, 12))
    assert m.end == stamp(10, 12)
    assert len(m.daily_availability) == 10  # 9 whole days and the 10th until noon
    assert m.daily_availability[9] == round(100 * (1 - 600 / (12 * 3600)), 3)
    assert m.availability_pct == round(100 * (1 - 600 / (9.5 * DAY)), 3)


def test_an_empty_month_is_a_valid_report_in_both_languages():
    m = monthly.summarize(2026, 2, {}, {}, {}, [], [], now=stamp(1, 0))
    assert m.empty
    assert (m.availability_pct, m.downtime_s, m.mttr_s, len(m.daily_availability)) == (100.0, 0.0, None, 28)
    hospital = {"name": "RSUD Contoh", "address": "Jl. Contoh 1", "head_of_unit": "dr. A"}
    for lang, words in (("id", "Tidak ada catatan"), ("en", "holds no record")):
        for fmt in ("md", "html"):
            text = monthly_render.render(m, hospital, lang, fmt)
            assert words in text
            assert "100.00 %" in text
            assert ("Februari 2026" if lang == "id" else "February 2026") in text


@pytest.mark.parametrize("lang", ["id", "en"])
def test_the_report_carries_the_numbers_and_the_charts(records, lang):
    m = summarize(records)
    hospital = {"name": "RSUD Contoh", "address": "Jl. Contoh 1", "head_of_unit": "dr. A"}
    md = monthly_render.render(m, hospital, lang, "md")
    for text in ("99.94 %", "26.0", "INC-FO", "DRILL-1", "RESTART-1", "simrs-primary", "kasir", "13.0"):
        assert text in md, text
    assert "<svg" not in md
    html = monthly_render.render(m, hospital, lang, "html")
    assert 'id="availability">99.94 %' in html
    if charts.available():
        assert html.count("<svg") == 4
    title = monthly_render.WORDS[lang]["title"]
    assert title in md
    assert title in html


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("2026-13", "must be a month as YYYY-MM"),
        ("11-2026", "must be a month as YYYY-MM"),
        ("2026-1", "must be a month as YYYY-MM"),
        ("2999-01", "has not started yet"),
        ("", "must be a month as YYYY-MM"),
    ],
)
def test_a_bad_month_is_refused_with_exit_2_before_anything_is_read(given, message, monkeypatch, tmp_path):
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    res = CliRunner().invoke(cli.main, ["report", "monthly", "--month", given])
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert not (tmp_path / "simrs").exists()  # nothing read, nothing made


def test_parse_month():
    assert monthly.parse_month("2026-11", dt.date(2026, 12, 3)) == (2026, 11)
    with pytest.raises(monthly.MonthError, match="before the year 2000"):
        monthly.parse_month("1999-12", dt.date(2026, 12, 3))


def test_no_secret_reaches_a_report(tmp_path):
    """The reports read only the journal, which never holds the inventory's secret values: a
    secret in a playbook's words (a failed backup's detail) comes out as *** in every format."""
    from orchestrator import report  # noqa: PLC0415

    secret = "lab-only-login-secret"  # noqa: S105  (a made-up one, to be kept out)
    journal = Journal(tmp_path / "j.sqlite")
    journal.learn_secrets([secret])
    journal.append(
        monthly.BACKUPS, "backup_run", {"ok": False, "detail": f"login {secret} refused"}, stamp(3, 1)
    )
    engine, inc = repaired(tmp_path)
    for e in engine.journal.events(inc.id):
        data = {**e.data, "note": f"password {secret}"} if e.kind == "opened" else e.data
        journal.append(inc.id, e.kind, data, stamp(4, 1) + e.seq)
    hospital = {"name": "RSUD", "address": "Jl. 1", "head_of_unit": "dr. A"}
    m = monthly.summarize(
        2026,
        11,
        {inc.id: journal.events(inc.id)},
        {},
        {},
        [],
        journal.events(monthly.BACKUPS),
        now=stamp(30, 0),
    )
    outputs = [
        monthly_render.render(m, hospital, lang, fmt) for lang in ("id", "en") for fmt in ("md", "html")
    ]
    outputs += [report.render(inc.id, journal.events(inc.id), hospital, "id", fmt) for fmt in ("md", "html")]
    assert all(secret not in text for text in outputs)
    assert "password ***" in outputs[-1]


def test_the_command_writes_each_format_whole_or_refuses(monkeypatch, tmp_path):
    """`simrs report monthly` end to end on a journal (the engine's inventory faked): md to stdout,
    html to a file; pdf without -o, -o into a missing folder, or no Chromium: exit 2, no file."""
    from orchestrator import pdf  # noqa: PLC0415
    from orchestrator.cli import base  # noqa: PLC0415

    engine, inc = repaired(tmp_path)
    journal = Journal(tmp_path / "nov.sqlite")  # the fake engine's clock is in 1970: November 2026
    for e in engine.journal.events(inc.id):
        journal.append(inc.id, e.kind, e.data, stamp(4, 1) + e.seq)
    info = {"name": "RSUD Contoh", "address": "Jl. 1", "head_of_unit": "dr. A"}  # as inventory.py reads it
    hospital = dataclasses.replace(engine.hospital, info=info)
    fake = SimpleNamespace(journal=journal, hospital=hospital, gateway=engine.gateway)
    monkeypatch.setattr(base, "make_engine", lambda ctx, ui=None: fake)
    month = "2026-11"
    run = CliRunner().invoke
    res = run(cli.main, ["report", "monthly", "--month", month, "--lang", "en"])
    assert res.exit_code == 0, res.output
    assert "SIMRS MONTHLY AVAILABILITY REPORT" in res.stdout
    assert inc.id in res.stdout
    out = tmp_path / "m.html"
    assert (
        run(cli.main, ["report", "monthly", "--month", month, "--format", "html", "-o", str(out)]).exit_code
        == 0
    )
    assert out.read_text().startswith("<!doctype html>")
    assert not list(tmp_path.glob(".*.tmp"))
    res = run(cli.main, ["report", "monthly", "--month", month, "--format", "pdf"])
    assert res.exit_code == 2
    assert "needs -o FILE" in res.stderr
    res = run(cli.main, ["report", "monthly", "--month", month, "-o", str(tmp_path / "no" / "m.md")])
    assert res.exit_code == 2
    assert "does not exist" in res.stderr
    monkeypatch.setattr(pdf, "browser", lambda: None)
    res = run(cli.main, ["report", inc.id, "--format", "pdf", "-o", str(tmp_path / "r.pdf")])
    assert res.exit_code == 2
    assert "apt-get install chromium" in res.stderr
    assert not (tmp_path / "r.pdf").exists()
