"""CLI wiring: errors become one clear line and the right exit code; nothing is decided here."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from orchestrator import cli
from orchestrator.lab import faults, lab
from orchestrator.lab.podman import LabError


@pytest.fixture
def no_lab(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMRS_LAB_STATE", str(tmp_path / "state"))
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["lab", "status"],
        ["lab", "break", "primary-off"],
        ["lab", "heal"],
        ["lab", "workload", "start"],
    ],
)
def test_commands_that_need_the_lab_say_how_to_start_it(no_lab, args):
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2
    assert "the lab is not up: start it with `simrs lab up`" in result.output


def test_unknown_fault_is_a_usage_error(no_lab, monkeypatch):
    monkeypatch.setattr(lab, "current", lambda: (lab.LabSpec(), {"faults": {}}))
    result = CliRunner().invoke(cli.main, ["lab", "break", "meteor"])
    assert result.exit_code == 2
    assert "unknown fault 'meteor'" in result.output


def test_client_net_mode_is_checked_by_the_cli(no_lab):
    result = CliRunner().invoke(cli.main, ["lab", "break", "client-net", "kasir-01", "--mode", "x"])
    assert result.exit_code == 2
    assert "'x' is not one of 'route', 'dns', 'address'" in result.output


@pytest.mark.parametrize("value", ["0", "-5", "501", "many"])
def test_lab_up_rejects_bad_client_counts(no_lab, value):
    result = CliRunner().invoke(cli.main, ["lab", "up", "--clients", value])
    assert result.exit_code == 2
    assert "--clients" in result.output


def test_lab_errors_keep_their_exit_code(monkeypatch):
    def boom(*_a, **_k):
        raise LabError("podman is not installed. Run scripts/setup", exit_code=2)

    monkeypatch.setattr(lab, "down", boom)
    result = CliRunner().invoke(cli.main, ["lab", "down"])
    assert result.exit_code == 2
    assert "error: podman is not installed" in result.output


def test_healing_a_fault_that_is_not_broken_names_the_active_ones(monkeypatch):
    monkeypatch.setattr(lab, "current", lambda: (lab.LabSpec(), {"faults": {"db-crash": {}}}))
    result = CliRunner().invoke(cli.main, ["lab", "heal", "primary-off"])
    assert result.exit_code == 2
    assert "primary-off is not broken (active faults: db-crash)" in result.output


def test_breaking_twice_is_refused(monkeypatch):
    monkeypatch.setattr(lab, "current", lambda: (lab.LabSpec(), {"faults": {"db-crash": {}}}))
    with pytest.raises(LabError, match="db-crash is already broken"):
        faults.break_fault("db-crash")


def test_status_json_is_the_status_object(monkeypatch):
    data = {
        "hosts": [
            {
                "name": "kasir-01",
                "role": "client",
                "unit": "kasir",
                "state": "running",
                "ips": ["198.18.0.21"],
                "reaches_simrs": True,
                "failed_check": None,
                "served_by": "simrs-primary",
            }
        ],
        "service_ip": "198.18.0.10",
        "service_ip_owners": ["simrs-primary"],
        "faults": {},
        "inventory": "inventory/lab",
        "workload": {},
    }
    monkeypatch.setattr(lab, "status", lambda: data)
    result = CliRunner().invoke(cli.main, ["lab", "status", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == data
    text = CliRunner().invoke(cli.main, ["lab", "status"])
    assert "kasir-01" in text.output
    assert "held by simrs-primary" in text.output


@pytest.mark.skipif(shutil.which("age-keygen") is None, reason="age-keygen is needed (scripts/setup)")
def test_lab_up_makes_the_backup_key_pair_once_0600(tmp_path):
    lab_module = lab
    path = tmp_path / "backup_key.yml"
    lab_module.ensure_backup_key(path=path)
    text = path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "backup_recipients:\n  - age1" in text
    assert "backup_private_key: AGE-SECRET-KEY-1" in text
    lab_module.ensure_backup_key(path=path)  # kept: the sets on the lab's disk stay readable
    assert path.read_text() == text


def test_lab_up_rejects_an_unknown_debian_release(no_lab):
    result = CliRunner().invoke(cli.main, ["lab", "up", "--os", "buster"])
    assert result.exit_code == 2
    assert "'buster' is not one of 'bookworm', 'bullseye'" in result.output
