"""The benchmarks' own small hospital: podman containers on their own internal network.

Owns: the network `simrs-bench` (198.18.17.0/24, no route out) and containers named `bench-*`,
created from the lab's image (localhost/simrs-host:lab, built by `simrs lab up`, never pulled) and
removed again by `Bench.close()` (benches call it in a `finally`). It never touches the lab's
`simrs-*` containers, the `simrs-lab` network or Molecule's containers. Also: filling a server
with SIMRS-shaped rows (orchestrator/lab/seed.py), an inventory in a temporary folder, and running
the project's real playbooks through ansible-runner with per-task times from its events.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ansible_runner
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator.lab import seed  # noqa: E402
from orchestrator.lab.podman import podman_env  # noqa: E402

IMAGE = os.environ.get("SIMRS_BENCH_IMAGE") or "localhost/simrs-host:lab"  # another build: by its hash tag
NETWORK = "simrs-bench"
SUBNET = "198.18.17.0/24"
IP_RANGE = "198.18.17.128/25"
SERVICE_IP = "198.18.17.10"
DISK_IN_HOST = "/media/simrs-backup"
APP_USER = "simrs_app"
APP_PASSWORD = "bench-only-app-secret"  # noqa: S105 (a throwaway container's account)


def sh(*args: str, check: bool = True, input_text: str | None = None, timeout: int = 7200) -> str:
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        input=input_text,
        env={**os.environ, **podman_env()},
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])} ... exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def podman(*args: str, **kwargs: Any) -> str:
    return sh("podman", *args, **kwargs)


def in_host(name: str, script: str, **kwargs: Any) -> str:
    """Run a shell script inside a container."""
    return podman("exec", "-i", name, "bash", "-c", script, **kwargs)


def timed_in_host(name: str, script: str) -> float:
    """Seconds a shell script takes inside a container (timed there, not across podman exec)."""
    out = in_host(name, f's=$(date +%s.%N); {script}; e=$(date +%s.%N); echo "$s $e"')
    start, end = out.split()[-2:]
    return float(end) - float(start)


def drop_caches() -> bool:
    """Cold page cache for the next measurement (root on the machine); False where not allowed."""
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


@dataclasses.dataclass
class PlayRun:
    status: str
    rc: int
    seconds: float
    tasks: list[tuple[str, str, float]]  # (host, task name, seconds)
    stats: dict[str, Any]
    failures: list[str]
    # task name -> (start, end) as epoch seconds, from the runner's events
    windows: dict[str, tuple[float, float]]

    def task_seconds(self, fragment: str) -> float:
        return sum(s for _h, name, s in self.tasks if fragment in name)


class Bench:
    """Containers bench-<name> on simrs-bench, an external disk folder on this machine bound into
    the servers, an inventory; everything removed by close()."""

    def __init__(self, disk_mb: int = 0) -> None:
        """disk_mb > 0: the external disk is an ext4 filesystem of its own (a fully allocated image
        on a loop device, labelled like the real one), as a USB disk is; 0: a plain folder on this
        machine's filesystem, which the database's files share."""
        self.work = Path(tempfile.mkdtemp(prefix="simrs-bench-", dir="/var/tmp"))
        self.disk = self.work / "backup-disk"
        self.disk.mkdir(mode=0o700)
        self.disk_mounted = False
        if disk_mb > 0:
            image = self.work / "backup-disk.img"
            subprocess.run(["fallocate", "-l", f"{disk_mb}M", str(image)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-L", "SIMRS-BACKUP", str(image)], check=True)
            subprocess.run(["mount", "-o", "loop", str(image), str(self.disk)], check=True)
            self.disk_mounted = True
            self.disk.chmod(0o700)
        self.containers: list[str] = []
        self.network_made = False
        self.inventory_hosts: dict[str, dict[str, Any]] = {}

    # --- containers -----------------------------------------------------------------------------

    def network(self) -> None:
        if self._exists("network", NETWORK):
            raise RuntimeError(
                f"network {NETWORK} already exists: a bench is running, or an earlier one was killed "
                f"(remove it with: podman network rm {NETWORK})"
            )
        podman(
            "network",
            "create",
            "--internal",
            "--disable-dns",
            "--subnet",
            SUBNET,
            "--ip-range",
            IP_RANGE,
            NETWORK,
        )
        self.network_made = True

    @staticmethod
    def _exists(kind: str, name: str) -> bool:
        return (
            subprocess.run(
                ["podman", kind, "exists", name], env={**os.environ, **podman_env()}, check=False
            ).returncode
            == 0
        )

    def server(self, short: str, ip: str, group: str) -> str:
        name = f"bench-{short}"
        if self._exists("container", name):
            raise RuntimeError(f"container {name} already exists: remove it first (podman rm -f {name})")
        podman(
            "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", ip,
            "--sysctl", "net.ipv4.ip_forward=0", "--no-hosts", "--dns", "none", "--systemd", "always",
            "--mount", f"type=bind,source={self.disk},destination={DISK_IN_HOST}",
            IMAGE, "/sbin/init",
        )  # fmt: skip
        self.containers.append(name)
        self.inventory_hosts[name] = {"group": group, "simrs_mgmt_ip": ip}
        return name

    def client(self, short: str, ip: str) -> str:
        name = f"bench-{short}"
        if self._exists("container", name):
            raise RuntimeError(f"container {name} already exists: remove it first (podman rm -f {name})")
        podman(
            "run", "-d", "--init", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", ip,
            "--no-hosts", "--dns", "none", IMAGE, "sleep", "infinity",
        )  # fmt: skip
        self.containers.append(name)
        return name

    def close(self) -> None:
        for name in reversed(self.containers):
            podman("rm", "-f", "-t", "0", name, check=False)
        if self.network_made:
            podman("network", "rm", NETWORK, check=False)
        if self.disk_mounted:
            subprocess.run(["umount", str(self.disk)], check=False)
        shutil.rmtree(self.work, ignore_errors=True)

    # --- the SIMRS database -----------------------------------------------------------------------

    def prepare_server(self, name: str, patients: int = 0) -> None:
        """Booted, MariaDB up, the SIMRS schema, the app account; `patients` synthetic patients
        (and two visits each) from the lab's seed."""
        in_host(name, "timeout 120 systemctl is-system-running --wait >/dev/null; true")
        in_host(
            name,
            "for i in $(seq 120); do mariadb -e 'SELECT 1' >/dev/null 2>&1 && exit 0; sleep 0.5; done; "
            "exit 1",
        )
        in_host(name, "mariadb < /usr/local/share/simrs/schema.sql")
        in_host(
            name,
            "mariadb",
            input_text=seed.accounts_sql(APP_USER, APP_PASSWORD, "admin", "bench-only-login"),
        )
        if patients:
            self.seed(name, patients)

    def seed(self, name: str, patients: int) -> None:
        proc = subprocess.Popen(
            ["podman", "exec", "-i", name, "mariadb", "sik"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **podman_env()},
            text=True,
        )
        for chunk in seed.seed_sql(patients):
            proc.stdin.write(chunk)
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"seeding {name} failed: {proc.stderr.read()[-600:]}")

    def data_bytes(self, name: str, db: str = "sik") -> int:
        """The database's files on the server's disk (what a physical restore must write back)."""
        return int(in_host(name, f"du -s --block-size=1 /data/mysql/{db} | cut -f1").strip())

    # --- Ansible ----------------------------------------------------------------------------------

    def write_inventory(self, extra: dict[str, Any] | None = None) -> Path:
        groups: dict[str, dict[str, Any]] = {}
        for host, info in self.inventory_hosts.items():
            groups.setdefault(info["group"], {"hosts": {}})["hosts"][host] = {
                "simrs_mgmt_ip": info["simrs_mgmt_ip"],
                "power_driver": "podman",
            }
        inventory = {
            "all": {
                "vars": {
                    "ansible_connection": "simrs.downtime.podman",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "simrs_service_ip": SERVICE_IP,
                    "simrs_db_databases": ["sik"],
                    "simrs_db_app_user": APP_USER,
                    "simrs_db_app_password": APP_PASSWORD,
                    "backup_disk": {"label": "SIMRS-BACKUP", "mount_point": DISK_IN_HOST},
                    **(extra or {}),
                },
                "children": groups,
            }
        }
        path = self.work / "inventory" / "hosts.yml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        return path

    def play(
        self, playbook: str, extravars: dict[str, Any] | None = None, limit: str | None = None
    ) -> PlayRun:
        """One real playbook of the project through ansible-runner (as the orchestrator runs them)."""
        inventory = self.write_inventory()
        private = Path(tempfile.mkdtemp(prefix="runner-", dir=self.work))
        tasks: list[tuple[str, str, float]] = []
        failures: list[str] = []
        stats: dict[str, Any] = {}
        windows: dict[str, tuple[float, float]] = {}

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data", {})
            if event.get("event") in ("runner_on_ok", "runner_on_failed"):
                tasks.append((data.get("host", ""), data.get("task", ""), float(data.get("duration") or 0)))
                if data.get("start") and data.get("end"):
                    windows[data.get("task", "")] = (epoch(data["start"]), epoch(data["end"]))
                if event["event"] == "runner_on_failed" and not data.get("ignore_errors"):
                    failures.append(f"{data.get('task')}: {data.get('res', {}).get('msg', '')}"[:600])
            if event.get("event") == "playbook_on_stats":
                stats.update(data.get("artifact_data") or {})
            return False  # no artifacts kept on disk: patient-shaped data stays in the containers

        env = {
            **podman_env(),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        }
        # ansible-runner looks up ansible-playbook on this process's PATH: the venv's first.
        venv_bin = str(Path(sys.executable).parent)
        if os.environ.get("PATH", "").split(os.pathsep)[0] != venv_bin:
            os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
        started = time.monotonic()
        result = ansible_runner.run(
            private_data_dir=str(private),
            playbook=str(REPO / "playbooks" / playbook),
            inventory=str(inventory),
            extravars=extravars or {},
            limit=limit,
            envvars=env,
            event_handler=on_event,
            quiet=True,
            project_dir=str(REPO),
        )
        seconds = time.monotonic() - started
        shutil.rmtree(private, ignore_errors=True)
        return PlayRun(result.status, result.rc, seconds, tasks, stats, failures, windows)


def epoch(text: str) -> float:
    """An ansible-runner event time (ISO 8601, UTC, no zone) as epoch seconds."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def machine_load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
