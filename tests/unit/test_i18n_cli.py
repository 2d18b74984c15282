"""The CLI in Bahasa Indonesia, command by command, run in-process (SIMRS_LANG=id) on a fake
gateway: what the operator reads is Indonesian (the values kept), the English ids are gone, and the
journal and JSON stay English. The catalog's completeness is tests/unit/test_i18n.py's."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator import backups, cli, i18n, procedure
from orchestrator.cli import base
from orchestrator.cli.incident_cmd import RichUI
from orchestrator.cli.maintain_cmd import backfill_items
from orchestrator.engine import Engine
from orchestrator.journal import Journal
from tests.unit.test_backups import LISTING, PRIMARY
from tests.unit.test_engine import Clock, FakeGateway, outage_script, result, step_data
from tests.unit.test_ledger import HOSPITAL, UNITS, repaired


@pytest.fixture
def indonesian(monkeypatch, tmp_path):
    monkeypatch.setenv("SIMRS_LANG", "id")
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    monkeypatch.delenv("SIMRS_JOURNAL", raising=False)


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def test_backup_list_reads_in_indonesian(indonesian, monkeypatch):
    fake = FakeGateway({backups.LIST: [result(backups.LIST, {PRIMARY: LISTING})]})
    monkeypatch.setattr(base, "make_gateway", lambda ctx: fake)
    res = invoke("backup", "list")
    assert res.exit_code == 0, res.output
    for text in ("backup simrs-primary di /media/simrs-backup", "umur", "ukuran", "verifikasi",
                 "RUSAK: does not match its manifest", "belum diverifikasi", "ok (sudah diuji pulih)",
                 "binary log yang sudah dikirim", "sedang berjalan:"):  # fmt: skip
        assert text in res.stdout, text
    for english in ("not verified", "test-restored", "shipped binary logs", "in progress"):
        assert english not in res.stdout
    view = json.loads(invoke("backup", "list", "--json").stdout)  # JSON: the facts, in English
    assert [s["state"] for s in view["sets"]] == ["ok", "BAD", "not verified"]


def test_the_sop_steps_read_in_indonesian_as_the_engine_drives(indonesian, tmp_path, capsys):
    """RichUI's step lines: the procedure's reasons, marked where they are decided, translated when
    printed (a filled-in one with its values; SOP 4b's step words inside it too)."""
    steps = {f"failover_{s}": [result(f"failover_{s}", step_data(s))] for s in procedure.FAILOVER_STEPS}
    clock = Clock()
    engine = Engine(
        Journal(tmp_path / "j.sqlite"),
        FakeGateway(outage_script(**steps)),
        HOSPITAL,
        ui=RichUI(),
        now=clock.now,
        sleep=clock.sleep,
    )
    engine.drive(engine.open("kasir-01", window_s=60, failover="auto"))
    said = capsys.readouterr().err
    for text in (
        "SOP 1: apakah PC lain memiliki masalah yang sama?",
        "SOP 3: semua PC gagal: apakah server SIMRS online?",
        "SOP 4c: minta unit-unit memakai sistem manual (kertas)",
        "SOP 4a: perbaiki server SIMRS (percobaan 1)",
        "SOP 4a: percobaan perbaikan ke-2",
        "SOP 4b: nyalakan server cadangan",
        "SOP 4b: jalankan SIMRS di server cadangan",
        "beri tahu unit-unit bahwa SIMRS normal kembali (server cadangan)",
    ):
        assert text in said, text
    for english in ("SOP 1: do the other PCs", "switch on the standby server", "repair attempt"):
        assert english not in said
    incident_id = engine.journal.incidents()[-1]
    journaled = json.dumps([e.data for e in engine.journal.events(incident_id)])
    assert "kembali" not in journaled  # the journal keeps the facts in English
    assert "server repaired" in journaled or "standby" in journaled


def test_maintain_checks_backfill_item_is_journaled_in_english_and_shown_in_indonesian(indonesian, tmp_path):
    engine, inc = repaired(tmp_path)
    (item,) = backfill_items(engine.journal, UNITS, 7)  # the fake clock's incident: long due
    assert item.state == "due"
    assert item.detail.startswith(f"{inc.id}: kasir has paper records not typed in, ")
    shown = i18n.marked(item.detail)
    assert shown.startswith(f"{inc.id}: kasir masih punya data kertas yang belum diinput, ")
    assert shown.endswith(" hari setelah SIMRS kembali normal")
    command = f"`simrs incident backfill {inc.id} --unit kasir --done`"
    assert i18n.marked(item.action) == f"input datanya, lalu {command}"
    (item,) = backfill_items(engine.journal, UNITS, 10**6)
    assert i18n.marked(item.action) == f"input datanya, lalu {command} (jatuh tempo setelah 1000000 hari)"


def test_journal_and_schedule_read_in_indonesian(indonesian, tmp_path):
    res = invoke("journal", "check")
    assert res.exit_code == 0, res.output
    assert "belum ada (belum ada yang dicatat)" in res.stdout
    res = invoke("schedule", "show", "--kind", "cron", "--unit-dir", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "tidak ada tugas SIMRS terjadwal di" in res.stdout


def test_a_refusal_of_the_cli_itself_reads_in_indonesian_with_exit_2(indonesian, tmp_path):
    res = invoke("journal", "restore", "--from", "20260101")
    assert res.exit_code == 2
    assert res.stderr.startswith("galat:")
    assert "error:" not in res.stderr


def test_the_backfill_checklist_reads_in_indonesian_with_the_simrs_count(indonesian, tmp_path, monkeypatch):
    engine, inc = repaired(tmp_path)
    monkeypatch.setattr(base, "make_engine", lambda ctx, ui=None: engine)
    res = invoke("incident", "backfill", inc.id, "--unit", "kasir", "--done", "--by", "Ani", "--count", "5")
    assert res.exit_code == 0, res.output
    assert "menurut SIMRS sendiri ada 7 kunjungan (reg_periksa)" in res.stdout
    assert "catatan unit: 5" in res.stdout
    assert "oleh Ani, 5 data" in res.stdout


def test_the_now_line_of_incident_status_reads_in_indonesian(indonesian, tmp_path, monkeypatch):
    engine, inc = repaired(tmp_path)
    monkeypatch.setattr(base, "make_engine", lambda ctx, ui=None: engine)
    res = invoke("incident", "status", inc.id)
    assert res.exit_code == 0, res.output
    assert "sekarang: server sudah diperbaiki dan diuji dari setiap PC klien" in res.stdout
    assert json.loads(invoke("incident", "status", inc.id, "--json").stdout)["reason"] == (
        "server repaired and verified from every client PC"  # JSON: the journal's English
    )


def test_a_stopped_failover_reads_in_indonesian_whichever_of_its_two_texts_it_is(indonesian):
    detail = "/media/simrs-backup is not a mounted filesystem"
    longer = f"failover stopped at restore: {detail}; fix the cause, then `simrs incident resume`"
    then = "perbaiki penyebabnya, lalu `simrs incident resume`"
    assert i18n.marked(longer) == f"pengalihan berhenti di langkah restore: {detail}; {then}"
    assert i18n.marked(f"failover stopped at restore: {detail}") == (
        f"pengalihan berhenti di langkah restore: {detail}"
    )
