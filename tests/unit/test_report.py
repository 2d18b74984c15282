"""The evaluation report from a journal: the hospital's own report shape, both languages."""

from __future__ import annotations

import pytest

from orchestrator import report
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
