"""The lab's secrets in a vault-encrypted file (issue 11, item 2): the SOP runs on it with
--vault-password-file, and without the password it stops at the inventory with one line, exit 2,
before any incident is opened."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from orchestrator.journal import Journal
from orchestrator.settings import REPO
from tests.e2e.conftest import simrs, status


def test_the_sop_runs_on_a_vaulted_inventory_and_stops_clearly_without_its_password(home, lab, tmp_path):
    inventory = Path(status()["inventory"] or REPO / "inventory" / "lab")
    vaulted = tmp_path / "hospital"
    shutil.copytree(inventory if inventory.is_dir() else inventory.parent, vaulted)
    password = tmp_path / "vault-password"
    password.write_text("lab vault password\n")
    password.chmod(0o600)
    secrets = vaulted / "group_vars" / "all" / "secrets.yml"
    vault = str(Path(sys.executable).with_name("ansible-vault"))
    subprocess.run(
        [vault, "encrypt", "--vault-password-file", str(password), str(secrets)],
        check=True,
        capture_output=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )
    assert "lab-only" not in secrets.read_text()

    refused = simrs("-i", str(vaulted), "incident", "open", "--reporter", "kasir-01", timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "no vault password was given: pass --vault-password-file" in refused.stderr
    assert not (home / "journal.sqlite").exists() or Journal(home / "journal.sqlite").incidents() == []

    res = simrs(
        "-i", str(vaulted), "--vault-password-file", str(password),
        "incident", "open", "--reporter", "kasir-01", "--json", timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    view = json.loads(res.stdout)
    assert view["phase"] == "RESOLVED"
    assert view["verdict"] == "NO_FAULT"  # every PC logged in to the SIMRS with the vaulted password
