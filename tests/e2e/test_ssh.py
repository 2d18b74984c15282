"""The demo's path over SSH with sudo (issue 11, item 4) on the oldest servers supported (item 3):
a lab brought up with --connection ssh --os bullseye (Debian 11: Python 3.9, MariaDB 10.5, on
every server and PC) is reached as a non-root account with passwordless sudo (become), host keys
checked against the lab's known_hosts; a backup and its test restore on the standby, then the
primary switched off: triage, the server check, the repair window, the failover to the standby and
the verification of every PC all run over SSH. The podman-exec Debian 12 lab is brought back
afterwards for the tests that follow."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.lab import images, lab, podman
from tests.e2e.conftest import REPO, simrs, simrs_json, status

# The hospital's admin machine, where the timers run: a systemd host on the lab network (an
# address no lab host uses) with this checkout's simrs, reaching the servers over SSH.
ADMIN, ADMIN_IP = "simrs-admin", "198.18.0.5"


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


@contextlib.contextmanager
def admin_machine(*shared: Path) -> Iterator[None]:
    """A Debian 12 systemd container (the lab's image) on the lab network; ``shared`` folders (this
    checkout with its venv, the venv's Python, the inventory, the SSH keys) at their own paths,
    read-only. Removed afterwards (and by `lab down`, which removes everything labelled simrs-lab)."""
    volumes = [arg for path in dict.fromkeys(shared) for arg in ("-v", f"{path}:{path}:ro")]
    # The lab's podman settings (runc: crun does not run on this machine kind, docs/lab.md).
    podman.run(
        "run", "-d", "--name", ADMIN, "--hostname", ADMIN, "--label", lab.LABEL,
        "--network", "simrs-lab", "--ip", ADMIN_IP, "--no-hosts", "--dns=none", "--systemd=always",
        *volumes, images.HOST_IMAGE_ALIAS, "/sbin/init", timeout=120,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while on_admin("systemctl is-system-running", check=False) not in ("running", "degraded"):
            assert time.monotonic() < deadline, "the admin machine's systemd did not start"
            time.sleep(0.5)
        yield
    finally:
        subprocess.run(
            ["podman", "rm", "-f", "-t", "0", ADMIN], capture_output=True, timeout=120, check=False
        )


def on_admin(command: str, check: bool = True) -> str:
    res = subprocess.run(
        ["podman", "exec", ADMIN, "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert not check or res.returncode == 0, (
        f"{command}: rc {res.returncode}\n{res.stdout[-2000:]}{res.stderr[-2000:]}"
    )
    return res.stdout.strip()


def vaulted_without_private_key(inventory: Path, to: Path) -> Path:
    """A copy of the inventory as a hospital keeps it: its secrets vault-encrypted, no backup
    private key (the IT team holds it, not the admin machine's timers); the vault password file."""
    shutil.copytree(inventory, to / "hospital")
    group_vars = to / "hospital" / "group_vars" / "all"
    key_file = group_vars / "backup_key.yml"
    key_file.write_text(
        "".join(line for line in key_file.read_text().splitlines(True) if "AGE-SECRET-KEY" not in line)
    )
    password = to / "vault-password"
    password.write_text("lab vault password\n")
    password.chmod(0o600)
    subprocess.run(
        [str(Path(sys.executable).with_name("ansible-vault")), "encrypt",
         "--vault-password-file", str(password), str(group_vars / "secrets.yml")],
        check=True, capture_output=True, env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
    )  # fmt: skip
    assert "lab-only" not in (group_vars / "secrets.yml").read_text()
    assert "AGE-SECRET-KEY" not in "".join(p.read_text() for p in (to / "hospital").rglob("*") if p.is_file())
    return to / "hospital"


def run_the_scheduled_backup_on_a_systemd_admin_machine(inventory: Path, tmp_path: Path) -> None:
    """The scheduled backup as a hospital runs it (issue 11, 18): the unit `simrs schedule install`
    writes on a systemd admin machine, the vault password handed over as a systemd credential, no
    private key anywhere; without the password the same job stops with one line, exit 2."""
    hospital = vaulted_without_private_key(inventory, tmp_path)
    vault = tmp_path / "vault-password"
    simrs_bin = Path(sys.executable).with_name("simrs")
    started = time.monotonic()
    # The venv's own Python, where it is not the system's (/usr is the container's own Debian 12).
    python = [Path(sys.base_prefix)] if Path(sys.base_prefix) != Path("/usr") else []
    with admin_machine(REPO, *python, tmp_path, lab.ssh_dir()):
        on_admin(f"{simrs_bin} -i {hospital} --vault-password-file {vault} schedule install --kind systemd")
        assert f"LoadCredential=vault:{vault}" in on_admin(
            "cat /etc/systemd/system/simrs-backup-dump.service"
        )
        # This container's systemd runs on cgroup v1 with no release agent, so it never hears that
        # a unit's cgroup emptied: the SSH master Ansible leaves for ControlPersist ends on SIGTERM,
        # yet systemd waits TimeoutStopSec and calls the run a timeout (reproduced with a plain
        # `ansible -m ping` unit). A real admin machine (cgroup v2) needs no such drop-in.
        drop_in = "/etc/systemd/system/simrs-backup-dump.service.d"
        on_admin(
            f"mkdir -p {drop_in} && printf '[Service]\\nKillMode=process\\n' > {drop_in}/lab-cgroup-v1.conf"
            " && systemctl daemon-reload"
        )
        code = on_admin("systemctl start simrs-backup-dump.service; echo $?")  # a oneshot: waits for it
        log = on_admin("journalctl -u simrs-backup-dump.service --no-pager -o short-monotonic")
        assert code == "0", log[-4000:]
        assert on_admin("systemctl show -P Result simrs-backup-dump.service") == "success", log[-4000:]
        assert "lab vault password" not in log
        refused = subprocess.run(
            ["podman", "exec", ADMIN, "systemd-run", "--wait", "--pipe", "--quiet", "--collect",
             "-p", "KillMode=process", "--setenv=SIMRS_LANG=en",
             str(simrs_bin), "-i", str(hospital), "backup", "run"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, refused.stderr
        assert "no vault password was given" in errors[0]
    print(f"the scheduled backup on a systemd admin machine over SSH: {time.monotonic() - started:.1f} s")


def on_host(host: str, command: str) -> str:
    return subprocess.run(
        ["podman", "exec", host, "sh", "-c", command], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()


def test_the_demo_path_runs_over_ssh_with_sudo_on_debian_11(home, ssh_lab, tmp_path):
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

    run_the_scheduled_backup_on_a_systemd_admin_machine(inventory, tmp_path)
    rc, listing, err = simrs_json("backup", "list")
    assert rc == 0, err
    assert len(listing["sets"]) == 1, listing["sets"]
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
