"""The demo's path over SSH with sudo (issue 11, item 4) on the oldest servers supported (item 3):
a lab brought up with --connection ssh --os bullseye (Debian 11: Python 3.9, MariaDB 10.5, on
every server and PC) is reached as a non-root account with passwordless sudo (become), host keys
checked against the lab's known_hosts; a backup and its test restore on the standby, then the
primary switched off: triage, the server check, the repair window, the failover to the standby and
the verification of every PC all run over SSH. The podman-exec Debian 12 lab is brought back
afterwards for the tests that follow."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import simrs, simrs_json, status


@pytest.fixture
def ssh_lab(lab):
    assert simrs("lab", "down", timeout=300).returncode in (0, 2)
    started = time.monotonic()
    res = simrs("lab", "up", "--connection", "ssh", "--os", "bullseye", timeout=1200)
    assert res.returncode == 0, res.stderr
    print(f"lab up --connection ssh --os bullseye (image build included): {time.monotonic() - started:.1f} s")
    yield status()
    assert simrs("lab", "down", timeout=300).returncode == 0
    assert simrs("lab", "up", timeout=900).returncode == 0


def accepted(host: str) -> int:
    """Logins sshd accepted on a server for the lab's account (its journal)."""
    out = subprocess.run(
        ["podman", "exec", host, "journalctl", "-u", "ssh", "--no-pager", "-o", "cat"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    return out.count("Accepted publickey for simrs-ops")


def on_host(host: str, command: str) -> str:
    return subprocess.run(
        ["podman", "exec", host, "sh", "-c", command], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


def test_the_demo_path_runs_over_ssh_with_sudo_on_debian_11(home, ssh_lab):
    assert ssh_lab["os"] == "bullseye"
    for host in ("simrs-primary", "kasir-01"):
        assert on_host(host, ". /etc/os-release; echo $VERSION_ID") == "11", host
        assert on_host(host, "python3 -c 'import sys; print(sys.version_info[:2])'") == "(3, 9)", host
    assert "10.5." in on_host("simrs-primary", "mariadb --version")
    inventory = Path(ssh_lab["inventory"])
    tree = yaml.safe_load((inventory / "hosts.yml").read_text())
    settings = tree["all"]["vars"]
    assert settings["ansible_connection"] == "ssh"
    assert settings["ansible_user"] == "simrs-ops"
    assert all(group["vars"]["ansible_become"] for group in tree["all"]["children"].values())
    assert "StrictHostKeyChecking=yes" in settings["ansible_ssh_common_args"]
    known_hosts = Path(settings["ansible_ssh_private_key_file"]).with_name("known_hosts")
    assert "198.18.0.12,simrs-standby ssh-ed25519 " in known_hosts.read_text()

    # The account is not root; sudo without a password makes it root (what become does).
    who = subprocess.run(
        ["ssh", "-i", settings["ansible_ssh_private_key_file"], "-o", f"UserKnownHostsFile={known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "simrs-ops@198.18.0.21",
         "id -un; sudo -n id -un"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert who.stdout.split() == ["simrs-ops", "root"], who.stderr

    started = time.monotonic()
    rc, view, err = simrs_json("backup", "run", timeout=900)
    assert rc == 0, err
    print(f"backup over SSH: {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    rc, verified, err = simrs_json("backup", "verify", "--test-restore", timeout=900)
    assert rc == 0, err
    assert verified["ok"] is True, verified
    assert [row["test_restored"] for row in verified["sets"]] == [True], verified["sets"]
    print(f"backup verify --test-restore over SSH: {time.monotonic() - started:.1f} s")

    assert simrs("lab", "break", "primary-off").returncode == 0
    started = time.monotonic()
    rc, view, err = simrs_json(
        "incident", "open", "--reporter", "kasir-01", "--window", "10s", "--policy", "auto", timeout=1200
    )
    print(f"incident (triage to verification) over SSH: {time.monotonic() - started:.1f} s")
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert view["server"] == "HOST_DOWN"
    assert view["failover"]["done"][-1] == "verify"
    assert status()["service_ip_owners"] == ["simrs-standby"]
    # The standby was reached over SSH (sshd logged the account's logins), not by podman exec.
    assert accepted("simrs-standby") > 0
