"""CLI wiring of `simrs incident` and `simrs report`: options, exit codes, JSON; the engine runs
with the fake gateway of test_engine (the one thing unit tests may fake)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator import cli
from orchestrator.engine import Engine
from orchestrator.inventory import Hospital
from orchestrator.journal import Journal
from tests.unit.test_engine import CLIENTS, NOTIFY_OK, FakeGateway, result, triage_all


@pytest.fixture
def wired(tmp_path, monkeypatch):
    gateway = FakeGateway({"triage": [triage_all(True, True)], "notify": [NOTIFY_OK]})
    hospital = Hospital(
        CLIENTS,
        "simrs-primary",
        "simrs-standby",
        60,
        "approve",
        info={"name": "RSUD Contoh", "address": "Jakarta", "head_of_unit": "dr. A"},
    )

    def make_engine(ctx, ui=None):
        return Engine(Journal(tmp_path / "j.sqlite"), gateway, hospital, ui=ui)

    monkeypatch.setattr(cli.base, "make_engine", make_engine)
    return gateway


def test_open_runs_the_sop_and_prints_json(wired):
    res = CliRunner().invoke(cli.main, ["incident", "open", "--reporter", "kasir-01", "--json"])
    assert res.exit_code == 0, res.output
    view = json.loads(res.stdout)
    assert view["phase"] == "RESOLVED"
    assert view["verdict"] == "NO_FAULT"


def test_a_person_is_needed_exits_3(wired):
    wired.script["triage"] = [triage_all(False, True)]  # every PC fails, the admin machine does not
    res = CliRunner().invoke(cli.main, ["incident", "open", "--reporter", "kasir-01", "--json"])
    assert res.exit_code == 3
    assert json.loads(res.stdout)["phase"] == "ESCALATED"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["incident", "status"], "there is no incident yet"),
        (["incident", "open", "--reporter", "kasir-01", "--window", "5x"], "cannot read the duration '5x'"),
        (["incident", "open", "--reporter", "kasir-01", "--window", "1s"], "out of range"),
        (["incident", "open", "--reporter", "dapur-01"], "'dapur-01' is not a client PC"),
        (["incident", "failover-now"], "Missing option '--reason'"),
        (["report", "--lang", "fr"], "'fr' is not one of 'id', 'en'"),
    ],
)
def test_bad_input_exits_2_with_what_to_fix(wired, args, message):
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 2
    assert message in res.output


def test_close_then_report_in_both_languages(wired, tmp_path):
    assert CliRunner().invoke(cli.main, ["incident", "open", "--reporter", "kasir-01"]).exit_code == 0
    res = CliRunner().invoke(cli.main, ["incident", "close", "--cause", "kabel LAN kasir lepas"])
    assert res.exit_code == 0
    assert "CLOSED" in res.output
    again = CliRunner().invoke(cli.main, ["incident", "close", "--cause", "x"])
    assert again.exit_code == 2
    assert "already closed" in again.output
    out = tmp_path / "laporan.md"
    res = CliRunner().invoke(cli.main, ["report", "-o", str(out)])
    assert res.exit_code == 0
    text = out.read_text()
    assert "LAPORAN EVALUASI" in text
    assert "kabel LAN kasir lepas" in text
    en = CliRunner().invoke(cli.main, ["report", "--lang", "en", "--format", "html"])
    assert '<h1 class="head">SIMRS SERVER DOWNTIME' in en.output


def test_failover_now_outside_the_repair_window_is_refused(wired):
    assert CliRunner().invoke(cli.main, ["incident", "open", "--reporter", "kasir-01"]).exit_code == 0
    res = CliRunner().invoke(cli.main, ["incident", "failover-now", "--reason", "disk dead"])
    assert res.exit_code == 2
    assert "not in the repair window" in res.output


def test_unexpected_errors_are_one_clear_line(wired, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("ansible-runner exploded")

    monkeypatch.setattr(Engine, "drive", boom)
    res = CliRunner().invoke(cli.main, ["incident", "open", "--reporter", "kasir-01"])
    assert res.exit_code == 1
    assert "failed: RuntimeError: ansible-runner exploded" in res.output
    assert "simrs incident resume" in res.output
    _ = result  # the shared helper stays importable for other CLI tests
