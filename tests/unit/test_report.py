"""The evaluation report from a journal: the hospital's own report shape, both languages."""

from __future__ import annotations

import pytest

from orchestrator import charts, report
from orchestrator.journal import Journal

HOSPITAL = {"name": "RSUD Contoh", "address": "Jl. Contoh No. 1, Jakarta Timur", "head_of_unit": "dr. Budi"}


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    t0 = 1_700_000_000.0
    facts = [
        ("opened", {"reporter": "kasir-01", "note": "kasir tidak bisa login", "window_s": 3600}, 0),
        ("action_started", {"action": "triage"}, 1),
        ("triage", {"clients": {"kasir-01": {"ok": False, "failed_check": "tcp_db"},
                                "farmasi-01": {"ok": False, "failed_check": "tcp_db"}},
                    "admin": {"ok": False, "failed_check": "db_down"}}, 9),
        ("server_check", {"reachable": True, "problems": ["disk_full", "db_write_blocked"]}, 20),
        ("notice", {"event": "outage_paper_mode", "sent": True, "channels": {}}, 30),
        ("repair_attempt", {"healthy": True, "actions": [{"name": "disk_space", "ran": True}]}, 90),
        ("triage", {"clients": {"kasir-01": {"ok": True}, "farmasi-01": {"ok": True}},
                    "admin": {"ok": True}}, 100),
        ("notice", {"event": "restored", "sent": True, "channels": {}}, 110),
        ("resolved", {"reason": "ok"}, 111),
        ("closed", {"cause": "log rotation stopped; 200 MB of old logs", "by": "ops-ani"}, 500),
    ]  # fmt: skip
    for kind, data, dt in facts:
        j.append("INC-20231124-001", kind, data, ts=t0 + dt)
    return j


def test_indonesian_report_follows_the_hospitals_own_shape(journal):
    text = report.render("INC-20231124-001", journal.events("INC-20231124-001"), HOSPITAL, "id", "md")
    order = ["RSUD Contoh", "LAPORAN EVALUASI & PERBAIKAN DOWN TIME", "WAKTU", "KEJADIAN", "PENGERTIAN",
             "TUJUAN", "PENYEBAB", "PROSEDUR PENANGANAN", "UPAYA", "Mengetahui", "dr. Budi"]  # fmt: skip
    positions = [text.index(word) for word in order]
    assert positions == sorted(positions)
    assert "kasir-01" in text
    assert "log rotation stopped" in text
    assert "disk data server penuh" in text
    assert "1 menit 40 detik" in text  # opened -> verified
    assert "1 menit 20 detik" in text  # paper mode: notice -> restored notice
    assert "Pantau ruang disk server" in text  # a measure that follows from the finding
    assert "sistem manual/kertas (SOP 4c)" in text


def test_english_html_report_is_escaped(journal, tmp_path):
    j = Journal(tmp_path / "k.sqlite")
    j.append("INC-2", "opened", {"reporter": "kasir-01", "note": "<script>x</script>"}, ts=1_700_000_000.0)
    html = report.render("INC-2", j.events("INC-2"), HOSPITAL, "en", "html")
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;" in html
    assert "EVALUATION AND REPAIR REPORT" in html
    assert "not finished" in html


@pytest.mark.parametrize(("lang", "fmt", "message"), [("fr", "md", "language"), ("id", "pdf", "format")])
def test_bad_language_or_format_is_refused(journal, lang, fmt, message):
    with pytest.raises(ValueError, match=message):
        report.render("INC-20231124-001", journal.events("INC-20231124-001"), HOSPITAL, lang, fmt)


def test_a_failover_gets_its_own_section_with_the_backup_the_rpo_and_the_time_by_step(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    t0 = 1_700_000_000.0
    restore = {
        "simrs-standby": {
            "set": "20231124T010000Z-dump",
            "created_at": "2023-11-24T01:00:00Z",
            "skipped_bad": [{"set": "20231124T020000Z-dump", "problem": "sha256 mismatch: sik.sql.zst"}],
            "last_visit": {
                "no_rawat": "2023/11/24/000044",
                "tgl_registrasi": "2023-11-24",
                "jam_reg": "02:10:08",
            },
            "rpo_seconds": 38,
            "rpo_anchor": {"source": "binlog"},
        }
    }
    facts = [
        ("opened", {"reporter": "kasir-01", "window_s": 60, "prestage": True}, 0),
        ("server_check", {"reachable": False, "problems": ["host_unreachable"]}, 20),
        ("prestage_started", {"standby": "simrs-standby"}, 21),
        ("action_started", {"action": "notify"}, 22),
        ("prestage", {"ok": False, "detail": "no backup disk mounted"}, 80),
        ("pending_failover", {"reason": "x"}, 81),
        ("approved", {"by": "policy:auto"}, 81),
        ("action_started", {"action": "failover_step", "event": "fence"}, 82),
        ("failover_step", {"step": "fence", "ok": True, "detail": "off"}, 90),
        ("action_started", {"action": "failover_step", "event": "restore"}, 91),
        ("failover_step", {"step": "restore", "ok": True, "detail": "", "hosts": restore}, 151),
        ("notice", {"event": "restored_on_standby", "sent": True, "channels": {}}, 200),
    ]  # fmt: skip
    for kind, data, dt in facts:
        j.append("INC-20231124-002", kind, data, ts=t0 + dt)
    en = report.render("INC-20231124-002", j.events("INC-20231124-002"), HOSPITAL, "en", "md")
    assert "FAILOVER TO THE STANDBY SERVER (SOP 4b)" in en
    assert "| Backup restored | 20231124T010000Z-dump |" in en
    assert "| Corrupt backups skipped | 20231124T020000Z-dump: sha256 mismatch: sik.sql.zst |" in en
    assert "38 s (binlog)" in en
    assert "| prepare the standby during the repair window | 59 s | - |" in en
    assert "| restore the newest good backup from the external disk | 60 s | OK |" in en
    assert "standby NOT ready: no backup disk mounted" in en
    assert "units told the SIMRS is normal again (on the standby server)" in en
    id_ = report.render("INC-20231124-002", j.events("INC-20231124-002"), HOSPITAL, "id", "html")
    assert "PENGALIHAN KE SERVER CADANGAN (SOP 4b)" in id_
    assert "memulihkan backup terbaru dari hard disk eksternal" in id_
    assert "(di server cadangan)" in id_


def test_the_takeover_of_a_ready_standby_shows_each_step_and_the_first_and_last_pc(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    t0 = 1_700_000_000.0
    steps = ("fence", "power_on", "restore", "ip_takeover", "start", "verify")
    facts = [
        ("opened", {"reporter": "kasir-01", "window_s": 60, "prestage": True}, 0),
        ("prestage_started", {"standby": "simrs-standby"}, 21),
        ("prestage", {"ok": True, "set": "s", "detail": "ready"}, 40),
        ("pending_failover", {"reason": "x"}, 81),
        ("approved", {"by": "ops"}, 90),
        ("action_started", {"action": "failover_takeover", "event": ",".join(steps)}, 90),
        ("takeover_step", {"step": "fence", "seconds": 2.44}, 92.4),
        ("takeover_step", {"step": "ip_takeover", "seconds": 1.5}, 95),
        ("takeover_step", {"step": "verify", "seconds": 2.0}, 97),
        *(("failover_step", {"step": s, "ok": True, "detail": ""}, 97.1) for s in steps[:-1]),
        ("failover_step", {"step": "verify", "ok": True, "detail": "", "clients_verified": {
            "first": {"host": "kasir-01", "seconds": 5.5}, "last": {"host": "farmasi-01", "seconds": 6.9},
            "ok": 2, "of": 2}}, 97.1),
    ]  # fmt: skip
    for kind, data, dt in facts:
        j.append("INC-20231124-003", kind, data, ts=t0 + dt)
    en = report.render("INC-20231124-003", j.events("INC-20231124-003"), HOSPITAL, "en", "md")
    rows = [line for line in en.splitlines() if line.startswith("| ") and " s | " in line]
    assert rows[1:] == [
        "| takeover by the pre-staged standby (every step) | 7 s | OK |",
        "|   of which: make sure the main server cannot serve (switched off) | 2.4 s | OK |",
        "|   of which: give the standby the main server's IP | 1.5 s | OK |",
        "|   of which: test the SIMRS from the admin machine and every client PC | 2.0 s | OK |",
        "|   first PC working again (kasir-01), from the takeover's start | 5.5 s | OK |",
        "|   last PC working again (farmasi-01), from the takeover's start | 6.9 s | OK |",
    ]
    id_ = report.render("INC-20231124-003", j.events("INC-20231124-003"), HOSPITAL, "id", "md")
    assert "PC pertama berfungsi lagi (kasir-01)" in id_


def test_a_report_without_failover_has_no_failover_section(journal):
    text = report.render("INC-20231124-001", journal.events("INC-20231124-001"), HOSPITAL, "en", "md")
    assert "FAILOVER TO THE STANDBY" not in text


def test_the_timeline_chart_marks_the_incidents_course_in_the_html_only(tmp_path):
    from tests.unit.test_monthly import failover_events, restamped  # noqa: PLC0415

    events = restamped(failover_events(tmp_path), 1_795_212_000.0, 20)
    marks = report.timeline_marks(events, "en")
    assert [label for _, label, _ in marks] == ["reported", "paper mode", "takeover", "back to normal"]
    assert [ts - events[0].ts for ts, _, _ in marks] == [0, 80, 240, 360]  # event 0, 4, 12, 18 (20 s each)
    assert [label for _, label, _ in report.timeline_marks(events, "id")][-1] == "normal kembali"
    hospital = {"name": "RSUD", "address": "Jl. 1", "head_of_unit": "dr. A"}
    html = report.render(events[0].incident, events, hospital, "id", "html")
    md = report.render(events[0].incident, events, hospital, "id", "md")
    assert "<svg" not in md
    if charts.available():
        assert html.count("<svg") == 1
        assert "Kronologi (menit sejak laporan pertama)" in html
