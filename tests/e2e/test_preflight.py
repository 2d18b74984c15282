"""simrs preflight against the real lab (issue 11, item 6): the lab passes; a copy of its inventory
with a wrong service IP, a standby power driver that does not answer and a disk that is not the
labelled one names each problem (exit 2); a vault that does not open is named before any host is
asked. Nothing changes on any host: the run is under --check, would change nothing, and the
standby, the addresses and the disk are as they were."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from orchestrator.settings import REPO
from tests.e2e.conftest import simrs, status


def preflight(*args: str) -> tuple[int, dict, str]:
    res = simrs(*args, "preflight", "--json", timeout=300)
    try:
        return res.returncode, json.loads(res.stdout), res.stderr
    except json.JSONDecodeError:
        return res.returncode, {}, res.stderr


def failing(view: dict) -> dict[tuple[str, str], dict]:
    return {(r["check"], r["host"]): r for r in view["rows"] if r["status"] == "FAIL"}


def hosts_state() -> dict[str, str]:
    """What preflight must leave alone: the standby off, the primary's addresses, the disk's marker."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout.strip()

    return {
        "standby": run("podman", "container", "inspect", "--format", "{{.State.Status}}", "simrs-standby"),
        "addresses": run("podman", "exec", "simrs-primary", "ip", "-4", "-o", "addr", "show", "dev", "eth0"),
        "marker": run("podman", "exec", "simrs-primary", "cat", "/media/simrs-backup/.simrs-backup-disk"),
    }


def lab_copy(tmp_path: Path) -> Path:
    inventory = Path(status()["inventory"] or REPO / "inventory" / "lab")
    copy = tmp_path / "hospital"
    shutil.copytree(inventory if inventory.is_dir() else inventory.parent, copy)
    return copy


def test_the_lab_passes_and_a_wrong_copy_names_each_problem(home, lab, tmp_path):
    before = hosts_state()
    assert before["standby"] in ("created", "exited")  # a cold standby: off

    rc, view, err = preflight()
    assert rc == 0, err + json.dumps(view, indent=1)
    assert view["ok"]
    assert view["changed"] == {}
    checks = {(r["check"], r["host"]): r["status"] for r in view["rows"]}
    for check in ("service IP", "drill IP", "backup disk", "power"):
        assert checks[(check, "simrs-primary")] == "ok", check
    assert checks[("power", "simrs-standby")] == "ok"
    assert checks[("reach", "simrs-standby")] == "skip"  # a cold standby: not contacted
    for pc in ("kasir-01", "pendaftaran-01", "farmasi-01"):
        assert checks[("sudo", pc)] == "ok"

    wrong = lab_copy(tmp_path)
    settings = wrong / "group_vars" / "all" / "simrs.yml"
    site = yaml.safe_load(settings.read_text())
    site["simrs_service_ip"] = "198.18.0.99"  # no host holds it: not the address the PCs use
    site["backup_disk"]["label"] = "SIMRS-BACKUP-2"  # the disk at the mount point is not this one
    settings.write_text(yaml.safe_dump(site))
    hosts = wrong / "hosts.yml"
    tree = yaml.safe_load(hosts.read_text())
    tree["all"]["children"]["simrs_standby"]["hosts"]["simrs-standby"]["power_podman_container"] = (
        "simrs-gone"
    )
    hosts.write_text(yaml.safe_dump(tree))

    rc, view, err = preflight("-i", str(wrong))
    assert rc == 2, err + json.dumps(view, indent=1)
    assert view["changed"] == {}
    bad = failing(view)
    assert set(bad) == {
        ("service IP", "simrs-primary"),
        ("backup disk", "simrs-primary"),
        ("power", "simrs-standby"),
    }
    assert "198.18.0.99 is not on simrs-primary" in bad[("service IP", "simrs-primary")]["detail"]
    assert bad[("service IP", "simrs-primary")]["fix"].startswith("simrs_service_ip")
    assert "marked 'SIMRS-BACKUP', not 'SIMRS-BACKUP-2'" in bad[("backup disk", "simrs-primary")]["detail"]
    assert bad[("backup disk", "simrs-primary")]["fix"] == "backup_disk.label"
    assert "simrs-gone" in bad[("power", "simrs-standby")]["detail"]
    assert bad[("power", "simrs-standby")]["fix"] == "power_podman_container (simrs-standby)"

    # The table names the same, for a person.
    res = simrs("-i", str(wrong), "preflight", timeout=300)
    assert res.returncode == 2
    assert "not ready: 3 to fix" in res.stdout
    assert "power_podman_container (simrs-standby)" in res.stdout

    vaulted = lab_copy(tmp_path / "vaulted")
    secrets = vaulted / "group_vars" / "all" / "secrets.yml"
    right, wrong_password = tmp_path / "right", tmp_path / "wrong"
    right.write_text("the hospital's vault password\n")
    wrong_password.write_text("not the vault password\n")
    subprocess.run(
        [str(Path(sys.executable).with_name("ansible-vault")), "encrypt", "--vault-password-file", str(right),
         str(secrets)],
        check=True, capture_output=True, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )  # fmt: skip
    rc, view, err = preflight("-i", str(vaulted), "--vault-password-file", str(wrong_password))
    assert rc == 2, err
    bad = failing(view)
    assert list(bad) == [("vault", "-")]
    assert str(wrong_password) in bad[("vault", "-")]["fix"]
    assert view["rows"][-1]["check"] == "hosts"  # no host was asked

    assert hosts_state() == before
