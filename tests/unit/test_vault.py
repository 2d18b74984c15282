"""Ansible Vault end to end on the admin machine: the inventory's secrets in a vault-encrypted file
are read with --vault-password-file (real ansible-vault, real ansible-inventory); without the
password, or with a wrong one, one line says what is missing (exit 2); the hospital's own
ansible.cfg beside its inventory is the one in force; scheduled jobs get a root-only password
file, through a systemd credential."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import cli, schedule
from orchestrator.ansible import AnsibleGateway, InventoryError
from orchestrator.errors import SimrsError
from orchestrator.settings import REPO

VAULT = str(Path(sys.executable).with_name("ansible-vault"))


@pytest.fixture
def vaulted(tmp_path):
    """A copy of the lab inventory whose secrets file is vault-encrypted, and its password file."""
    inv = tmp_path / "hospital"
    shutil.copytree(REPO / "inventory" / "lab", inv)
    password = tmp_path / "vault-password"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    secrets = inv / "group_vars" / "all" / "secrets.yml"
    subprocess.run(
        [VAULT, "encrypt", "--vault-password-file", str(password), str(secrets)],
        check=True,
        capture_output=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    assert secrets.read_text().startswith("$ANSIBLE_VAULT;")
    return inv, password


def test_the_vaulted_inventory_is_read_with_its_password(vaulted, tmp_path):
    inv, password = vaulted
    raw = AnsibleGateway(inv, tmp_path / "runs", vault_password_file=password).inventory()
    primary = raw["_meta"]["hostvars"]["simrs-primary"]
    assert primary["simrs_db_app_password"] == "lab-only-app-secret"  # noqa: S105  (the lab's)


def test_without_the_password_or_with_a_wrong_one_one_line_says_what_is_missing(vaulted, tmp_path):
    inv, _password = vaulted
    with pytest.raises(InventoryError, match="no vault password was given: pass --vault-password-file"):
        AnsibleGateway(inv, tmp_path / "runs").inventory()
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    with pytest.raises(InventoryError, match="does not open them"):
        AnsibleGateway(inv, tmp_path / "runs", vault_password_file=wrong).inventory()


def test_every_command_takes_the_vault_password_file(vaulted, tmp_path, monkeypatch):
    inv, password = vaulted
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    res = CliRunner().invoke(cli.main, ["-i", str(inv), "maintain", "log", "genset"])
    assert res.exit_code == 2
    assert "no vault password was given" in res.output
    res = CliRunner().invoke(
        cli.main, ["-i", str(inv), "--vault-password-file", str(password), "maintain", "log", "genset"]
    )
    assert res.exit_code == 0, res.output
    monkeypatch.setenv("SIMRS_VAULT_PASSWORD_FILE", str(password))
    res = CliRunner().invoke(cli.main, ["-i", str(inv), "maintain", "log", "genset"])
    assert res.exit_code == 0, res.output
    monkeypatch.delenv("SIMRS_VAULT_PASSWORD_FILE")
    res = CliRunner().invoke(
        cli.main,
        ["-i", str(inv), "--ask-vault-pass", "maintain", "log", "genset"],
        input="correct horse battery staple\n",
    )
    assert res.exit_code == 0, res.output


def test_the_hospitals_own_ansible_cfg_is_honoured(vaulted, tmp_path):
    inv, password = vaulted
    gateway = AnsibleGateway(inv, tmp_path / "runs")
    assert gateway.config == REPO / "ansible.cfg"
    (inv / "ansible.cfg").write_text(f"[defaults]\nvault_password_file = {password}\n")
    assert gateway.config == inv / "ansible.cfg"
    raw = gateway.inventory()  # its vault_password_file setting opens the secrets
    login = raw["_meta"]["hostvars"]["simrs-primary"]["simrs_app_login_password"]
    assert login == "lab-only-login-secret"


def test_scheduled_jobs_get_a_root_only_password_file_never_the_password(vaulted, tmp_path):
    _inv, password = vaulted
    simrs, inv = Path("/usr/local/bin/simrs"), Path("/etc/simrs/hospital")
    files = schedule.render_systemd({"backup_dump": "*-*-* 01:30"}, simrs, inv, password)
    service = files["simrs-backup-dump.service"]
    assert f"LoadCredential=vault:{password}" in service
    assert "--vault-password-file %d/vault" in service
    assert "correct horse" not in service
    (cron,) = schedule.render_cron({"backup_dump": "*-*-* 01:30"}, simrs, inv, password).values()
    assert f"--vault-password-file {password}" in cron
    password.chmod(0o644)
    with pytest.raises(SimrsError, match="can be read by others"):
        schedule.render_systemd({"backup_dump": "*-*-* 01:30"}, simrs, inv, password)
