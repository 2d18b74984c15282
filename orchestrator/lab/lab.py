"""The built-in hospital: bring it up, take it down, say how it is.

``up`` is all-or-nothing: if any step fails, what was created is removed again, and a later
``up`` starts clean (it also clears what a killed earlier run left behind). Every container
carries the label ``simrs-lab`` so nothing else on the machine is ever touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.lab import bmc, images, paths, podman, seed, topology
from orchestrator.lab import host as hostfs
from orchestrator.lab.podman import LabError
from orchestrator.lab.topology import Host, LabSpec

LABEL = "simrs-lab"
# The hospital's message gateway (webhook, e.g. WhatsApp) and mail server, on loopback only.
# inventory/lab/group_vars/all/simrs.yml points notify_channels at these ports.
WEBHOOK_PORT = 18080
SMTP_PORT = 18025
REPO_INVENTORY = Path(__file__).resolve().parents[2] / "inventory" / "lab"
SCHEMA = "/usr/local/share/simrs/schema.sql"
PROBE_TIMEOUT = 2.0
# What the lab needs of this machine's memory: the servers, Ansible and the admin machine's own
# work (RESERVE_MB), and each light client PC (a container running sleep under an init: conmon,
# catatonit, its network namespace; CLIENT_MB is a generous bound).
RESERVE_MB = 4096
CLIENT_MB = 24

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    return


# ---- state ---------------------------------------------------------------------------------


def state_file() -> Path:
    return paths.state_dir() / "lab.json"


def load_state() -> dict | None:
    try:
        return json.loads(state_file().read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise LabError(f"lab state {state_file()} is damaged ({exc}); run `simrs lab down`") from exc


def save_state(state: dict) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lab-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def spec_from_state(state: dict) -> LabSpec:
    return LabSpec(**state["spec"])


def current() -> tuple[LabSpec, dict]:
    """The running lab's spec and state, or a clear error when there is none."""
    state = load_state()
    if state is None or state.get("phase") != "ready":
        raise LabError("the lab is not up: start it with `simrs lab up`", exit_code=2)
    return spec_from_state(state), state


def inventory_path(spec: LabSpec) -> Path:
    """The inventory for this lab: the committed one for the default shape, else a generated one."""
    if (
        spec.connection == "podman"
        and spec.os == topology.LabSpec.os
        and topology.render_inventory(spec) == (REPO_INVENTORY / "hosts.yml").read_text()
    ):
        return REPO_INVENTORY
    return paths.state_dir() / "inventory"


# ---- container helpers ---------------------------------------------------------------------


def exec_in(name: str, *cmd: str, timeout: float = 60, check: bool = True, stdin: str | None = None):
    flags = ["-i"] if stdin is not None else []
    return podman.run("exec", *flags, name, *cmd, check=check, input_text=stdin, timeout=timeout)


def container_state(name: str) -> str | None:
    res = podman.run("container", "inspect", "--format", "{{.State.Status}}", name, check=False)
    return res.out.strip() if res.ok else None


def _copy_files(name: str, files: dict[str, tuple[str, int]]) -> None:
    """Copy {path in container: (text, mode)} into a created or running container."""
    with tempfile.TemporaryDirectory(prefix="simrs-files-") as tmp:
        for dest, (text, mode) in files.items():
            local = Path(tmp) / dest.lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(text)
            local.chmod(mode)
        for top in Path(tmp).iterdir():
            podman.run("cp", f"{top}/.", f"{name}:/{top.name}/")


def _host_files(spec: LabSpec, h: Host) -> dict[str, tuple[str, int]]:
    hosts_file = topology.client_hosts_file(spec, h)
    files = {"/etc/hosts": (hosts_file, 0o644)}
    if spec.connection == "ssh":
        keys = ssh_dir()
        files["/etc/ssh/lab/ssh_host_ed25519_key"] = ((keys / "hosts" / h.name).read_text(), 0o600)
        files["/etc/ssh/lab/ssh_host_ed25519_key.pub"] = (
            (keys / "hosts" / f"{h.name}.pub").read_text(),
            0o644,
        )
        files[f"/etc/ssh/lab/authorized_keys/{topology.SSH_USER}"] = (
            (keys / "id_ed25519.pub").read_text(),
            0o644,
        )
        files["/etc/ssh/sshd_config.d/simrs-lab.conf"] = (topology.sshd_config(), 0o644)
    if h.is_server:
        files["/etc/simrs/app.conf"] = (topology.server_app_conf(spec), 0o600)
        if h.role == "primary":
            files["/etc/simrs/service-ip.env"] = (topology.service_ip_env(spec), 0o644)
    else:
        files["/etc/simrs/client.conf"] = (topology.client_conf(spec), 0o600)
        files["/etc/simrs/net.env"] = (topology.client_net_env(spec, h), 0o644)
    return files


# ---- SSH (lab up --connection ssh) ---------------------------------------------------------


def ssh_dir() -> Path:
    """The SSH lab's keys: the login key (id_ed25519), each host's own host key, known_hosts."""
    return paths.state_dir() / "ssh"


def make_ssh_keys(spec: LabSpec) -> None:
    """A login key for Ansible and a host key per host, made on this machine; known_hosts lists each
    host's address and name with its key, so every connection checks the host it reaches."""
    keys = ssh_dir()
    shutil.rmtree(keys, ignore_errors=True)
    (keys / "hosts").mkdir(parents=True, mode=0o700)
    keys.chmod(0o700)

    def keygen(path: Path, comment: str) -> str:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return path.with_name(path.name + ".pub").read_text().split()[:2]

    keygen(keys / "id_ed25519", "simrs lab admin")
    lines = []
    for h in topology.hosts(spec):
        kind, key = keygen(keys / "hosts" / h.name, h.name)
        lines.append(f"{h.ip},{h.name} {kind} {key}")
    (keys / "known_hosts").write_text("\n".join(lines) + "\n")


def start_client_sshd(name: str) -> None:
    """A client PC runs a plain process, not systemd: its sshd is started by hand."""
    exec_in(name, "sh", "-c", "mkdir -p -m 0755 /run/sshd && /usr/sbin/sshd")


def wait_ssh(spec: LabSpec, names: list[str], timeout: float = 60) -> None:
    """Until each named host's sshd accepts a TCP connection on its lab address."""
    import socket  # noqa: PLC0415

    def answers(ip: str) -> bool:
        try:
            with socket.create_connection((ip, 22), timeout=1):
                return True
        except OSError:
            return False

    for h in (h for h in topology.hosts(spec) if h.name in names):
        wait_for(f"sshd on {h.name}", lambda ip=h.ip: answers(ip), timeout)


def _create(spec: LabSpec, h: Host, image: str) -> None:
    state = paths.state_dir()
    args = [
        "create",
        "--name",
        h.name,
        "--hostname",
        h.name,
        "--label",
        LABEL,
        "--label",
        f"simrs-role={h.role}",
        "--network",
        spec.network,
        "--ip",
        h.ip,
        # A real server keeps its network card's address over a restart; podman would give the
        # container a new one each start, and the admin machine's ARP entry for the old one would
        # fail its first checks after a planned restart.
        "--mac-address",
        topology.mac_address(h.ip),
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "NET_RAW",
        # Forwarding on would let a stale ARP entry still reach a moved IP: hide the very bug
        # a failover test must catch.
        "--sysctl",
        "net.ipv4.ip_forward=0",
        "--no-hosts",
        "--dns=none",
    ]
    if h.is_server:
        args += ["--systemd=always", "-v", f"{state / 'attach' / h.name}:{spec.backup_mount}:rslave"]
        if h.role == "primary":
            args += ["-v", f"{state / 'mnt' / 'data'}:/data"]
        args += [image, "/sbin/init"]
    else:
        args += ["--init", image, "sleep", "infinity"]
    podman.run(*args)
    _copy_files(h.name, _host_files(spec, h))


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_server_ready(name: str, timeout: float = 90) -> None:
    wait_for(
        f"MariaDB on {name}",
        lambda: exec_in(name, "mariadb", "-e", "SELECT 1", check=False, timeout=10).ok,
        timeout,
    )


# ---- up / down -----------------------------------------------------------------------------


def leftovers(spec: LabSpec) -> bool:
    """Anything a lab (or a killed `lab up`) left: containers, the network, state, mounts."""
    containers = podman.run("ps", "-aq", "--filter", f"label={LABEL}", check=False).out.split()
    network = podman.run("network", "exists", spec.network, check=False).ok
    state = paths.state_dir()
    mounted = any(hostfs.is_mountpoint(state / sub) for sub in ("attach", "mnt/data", "mnt/backup-disk"))
    return bool(containers) or network or state_file().exists() or mounted


def available_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    """This machine's available memory in MB (MemAvailable)."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    raise LabError(f"cannot read MemAvailable from {meminfo}")


def max_clients(free_mb: int) -> int:
    """How many client PCs a lab may have with free_mb of memory available (at most MAX_CLIENTS)."""
    return max(0, min(topology.MAX_CLIENTS, (free_mb - RESERVE_MB) // CLIENT_MB))


def require_room(spec: LabSpec, free_mb: int | None = None) -> None:
    """Refuse (exit 2), before anything is created, a lab this machine cannot hold."""
    free_mb = available_mb() if free_mb is None else free_mb
    room = max_clients(free_mb)
    if spec.clients > room:
        raise LabError(
            f"--clients {spec.clients} is more than this machine can hold now: {free_mb} MB of memory "
            f"is available, the lab keeps {RESERVE_MB} MB for its servers and Ansible and needs about "
            f"{CLIENT_MB} MB per client PC, so at most {room}. Use fewer client PCs or free memory.",
            exit_code=2,
        )


def up(spec: LabSpec, progress: Progress = _quiet) -> dict:
    hostfs.require_root()
    podman.require_podman()
    require_room(spec)
    state = load_state()
    if state is not None and state.get("phase") == "ready":
        raise LabError(
            f"the lab is already up ({len(topology.hosts(spec_from_state(state)))} hosts): "
            "see `simrs lab status`, or `simrs lab down` first",
            exit_code=2,
        )
    if leftovers(spec):
        progress("clearing what an earlier, unfinished `lab up` left behind")
        _teardown(spec, progress)
    started = time.monotonic()
    image = images.ensure_images(progress, spec.os)
    save_state({"phase": "building", "spec": dataclasses.asdict(spec), "image": image})
    try:
        _build(spec, image, progress)
    except BaseException:  # Ctrl-C included: never leave a half-built lab
        progress("lab up failed: removing what was created")
        with contextlib.suppress(Exception):
            _teardown(spec, _quiet)
        raise
    state = {
        "phase": "ready",
        "spec": dataclasses.asdict(spec),
        "image": image,
        "inventory": str(inventory_path(spec)),
        "faults": {},
        "up_seconds": round(time.monotonic() - started, 1),
    }
    save_state(state)
    return state


def _build(spec: LabSpec, image: str, progress: Progress) -> None:
    state = paths.state_dir()
    progress("data disk and external backup disk (loop filesystems)")
    hostfs.make_loop_fs(state / "data.img", state / "mnt" / "data", spec.data_fs_mb, "SIMRS-DATA")
    hostfs.make_loop_fs(
        state / "backup-disk.img", state / "mnt" / "backup-disk", spec.backup_disk_mb, spec.backup_disk_label
    )
    mark_backup_disk(state / "mnt" / "backup-disk", spec.backup_disk_label)
    hostfs.make_shared_dir(state / "attach")
    for h in topology.hosts(spec):
        if h.is_server:
            (state / "attach" / h.name).mkdir(parents=True, exist_ok=True)
    hostfs.contain_lab_traffic()
    progress(f"network {spec.network} (internal, {spec.subnet})")
    podman.run(
        "network",
        "create",
        "--internal",
        "--subnet",
        spec.subnet,
        "--ip-range",
        spec.ip_range,
        "--label",
        LABEL,
        spec.network,
    )
    lab_hosts = topology.hosts(spec)
    if spec.connection == "ssh":
        progress("SSH: a login key and a host key per host (known_hosts in the lab's state)")
        make_ssh_keys(spec)
    progress(f"creating {len(lab_hosts)} hosts")
    created = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda h: _create(spec, h, image), lab_hosts))
    progress(f"created {len(lab_hosts)} hosts in {time.monotonic() - created:.0f} s")
    # The standby stays created but never started: a cold standby is powered off.
    progress("powering on the primary server and the client PCs")
    names = [h.name for h in lab_hosts if h.role != "standby"]
    podman.run("start", names[0], timeout=180)  # the primary first: it boots while the PCs start
    clients = names[1:]
    batches = [clients[i : i + 25] for i in range(0, len(clients), 25)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda batch: podman.run("start", *batch, timeout=180), batches))
    if spec.connection == "ssh":
        for h in lab_hosts:
            if h.role == "client":
                start_client_sshd(h.name)
    # Plugged in after power-on, so the mount arrives by propagation and can leave the same way.
    # The standby sees the same disk when it is switched on (it reads the backups to restore).
    attach_backup_disk("simrs-primary")
    attach_backup_disk("simrs-standby")
    progress("waiting for MariaDB on simrs-primary")
    wait_server_ready("simrs-primary")
    progress(f"loading the SIMRS schema and {spec.patients} synthetic patients")
    exec_in("simrs-primary", "sh", "-c", f"mariadb < {SCHEMA}")
    exec_in(
        "simrs-primary",
        "mariadb",
        stdin=seed.accounts_sql(
            topology.LAB_DB_APP_USER,
            topology.LAB_DB_APP_PASSWORD,
            topology.LAB_APP_LOGIN_USER,
            topology.LAB_APP_LOGIN_PASSWORD,
        ),
    )
    exec_in("simrs-primary", "mariadb", "sik", stdin="".join(seed.seed_sql(spec.patients)), timeout=1800)
    progress(f"BMCs of the servers (IPMI, Redfish, Wake-on-LAN) on {topology.BMC_BASE[:-2]}.x")
    start_bmcs(spec)
    write_inventory(spec)
    ensure_backup_key(progress)
    if spec.connection == "ssh":
        progress("waiting for sshd on every running host")
        wait_ssh(spec, names)
    progress(f"message gateway and mail server on 127.0.0.1:{WEBHOOK_PORT} and :{SMTP_PORT}")
    start_receivers()
    progress("waiting for every client to reach the SIMRS through the service IP")
    wait_serving(spec)


def wait_serving(spec: LabSpec, timeout: float | None = None) -> None:
    """Until every running client PC reaches the SIMRS through the service IP. A PC that did once
    is not asked again (a large lab's round of probes takes a while by itself)."""
    clients = [
        h.name for h in topology.hosts(spec) if h.role == "client" and container_state(h.name) == "running"
    ]
    waiting = set(clients)

    def all_served() -> bool:
        waiting.difference_update(n for n, p in probe_clients(sorted(waiting)).items() if p.ok)
        return not waiting

    wait_for("the clients to reach the SIMRS", all_served, timeout=timeout or 60 + len(clients))


BACKUP_KEY_VARS = REPO_INVENTORY / "group_vars" / "all" / "backup_key.yml"


def ensure_backup_key(progress: Progress = _quiet, path: Path = BACKUP_KEY_VARS) -> None:
    """The lab's backup key pair, made once with age-keygen (kept across `lab down`/`up`, so the
    sets already on the lab's disk stay readable): backup_recipients, the public key every lab
    backup is encrypted to, and backup_private_key, a lab secret like the others (0600, not in
    git). A real hospital makes its pair as docs/runbook-backup-encryption.md says."""
    if path.exists():
        return
    if shutil.which("age-keygen") is None:
        raise LabError("age-keygen is missing (the age package): run scripts/setup (as root)", exit_code=2)
    progress("making the lab's backup key pair (age-keygen)")
    made = subprocess.run(["age-keygen"], capture_output=True, text=True, timeout=30, check=False)
    secret = next((ln for ln in made.stdout.splitlines() if ln.startswith("AGE-SECRET-KEY-")), "")
    public = next(
        (ln.split(":", 1)[1].strip() for ln in made.stdout.splitlines() if ln.startswith("# public key:")), ""
    )
    if made.returncode != 0 or not secret or not public.startswith("age1"):
        raise LabError(f"age-keygen failed: {made.stderr.strip()[-300:]}")
    text = (
        "---\n"
        "# LAB ONLY, made by `simrs lab up` (age-keygen); not in git. The backups of the lab are\n"
        "# encrypted to backup_recipients. A real hospital keeps backup_private_key in Ansible Vault,\n"
        "# with the IT team (docs/runbook-backup-encryption.md), never on the primary.\n"
        f"backup_recipients:\n  - {public}\n"
        f"backup_private_key: {secret}\n"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def write_inventory(spec: LabSpec) -> None:
    target = inventory_path(spec)
    if target == REPO_INVENTORY:
        return
    target.mkdir(parents=True, exist_ok=True)
    (target / "hosts.yml").write_text(
        topology.render_inventory(spec, ssh_dir=str(ssh_dir()), ca_path=str(bmc_dir() / bmc.CA_CERT))
    )
    link = target / "group_vars"
    if not link.is_symlink():
        link.symlink_to(REPO_INVENTORY / "group_vars")
    if spec.power != "podman":
        write_bmc_host_vars(target, spec, bmc_login()["password"])


# ---- the servers' BMCs (orchestrator/lab/bmc.py) ---------------------------------------------


def bmc_dir() -> Path:
    return paths.state_dir() / "bmc"


def bmc_login() -> dict[str, str]:
    """The lab's BMC account (generated per lab, 0600 in the lab state; never printed)."""
    config = json.loads((bmc_dir() / bmc.CONFIG).read_text())
    return {"user": config["user"], "password": config["password"]}


def start_bmcs(spec: LabSpec) -> None:
    servers = [
        {
            "name": h.name,
            "container": h.name,
            "address": topology.bmc_address(h.ip),
            "mac": topology.mac_address(h.ip),
        }
        for h in topology.hosts(spec)
        if h.is_server
    ]
    login = bmc.new_login()
    config = {**login, "lab_disks": True, "wol_address": topology.WOL_BROADCAST, "wol_port": 9}
    config["servers"] = servers
    bmc.write_config(bmc_dir(), config)
    bmc.start(bmc_dir())


def write_bmc_host_vars(target: Path, spec: LabSpec, secret: str) -> None:
    """The BMC password per server (a Vault value in a real inventory), and the admin machine's
    Python for the BMC modules (pyghmi is installed with simrs)."""
    host_vars = target / "host_vars"
    host_vars.mkdir(exist_ok=True)
    for h in topology.hosts(spec):
        if h.is_server:
            text = (
                "---\n# LAB ONLY: the lab BMC's password, generated by `simrs lab up`.\n"
                f"power_ipmi_password: {json.dumps(secret)}\npower_redfish_password: {json.dumps(secret)}\n"
            )
            fd = os.open(host_vars / f"{h.name}.yml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
    (host_vars / "localhost.yml").write_text(
        '---\nansible_connection: local\nansible_python_interpreter: "{{ ansible_playbook_python }}"\n'
    )


def mark_backup_disk(mount_point: Path, label: str) -> None:
    """The hospital's IT marked its external disk once when they set it up (the backup role's
    marker: the role refuses to write to an unmarked disk)."""
    marker = mount_point / ".simrs-backup-disk"
    if not marker.exists():
        marker.write_text(
            f"label={label}\ninitialized_at={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
            "initialized_on=simrs lab up\n"
        )


def attach_backup_disk(server: str) -> None:
    state = paths.state_dir()
    hostfs.bind(state / "mnt" / "backup-disk", state / "attach" / server)


def detach_backup_disk(server: str) -> None:
    """Unplug the external disk from a server; the unmount propagates into the container."""
    hostfs.unmount(paths.state_dir() / "attach" / server)


def backup_disk_attached(server: str) -> bool:
    return hostfs.is_mountpoint(paths.state_dir() / "attach" / server)


def power_on(server: str) -> None:
    """Start a server container. The external disk, if plugged in, is unplugged for the start and
    plugged in again after it: a mount present at start would be copied into the container and
    could then never be unplugged by propagation."""
    plugged = backup_disk_attached(server)
    if plugged:
        detach_backup_disk(server)
    podman.run("start", server, timeout=120)
    if plugged:
        attach_backup_disk(server)


def down(progress: Progress = _quiet) -> None:
    hostfs.require_root()
    state = load_state()
    spec = spec_from_state(state) if state else LabSpec()
    if state is None and not leftovers(spec):
        raise LabError("the lab is not up: nothing to take down", exit_code=2)
    _teardown(spec, progress)


def inbox_dir() -> Path:
    return paths.state_dir() / "inbox"


def _receivers(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.lab.receivers", "--dir", str(inbox_dir()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_receivers() -> None:
    inbox_dir().mkdir(parents=True, exist_ok=True)
    res = _receivers("--http-port", str(WEBHOOK_PORT), "--smtp-port", str(SMTP_PORT), "--background")
    if res.returncode != 0:
        hint = ""
        if "No module named 'aiosmtpd'" in res.stderr:
            hint = " (the lab needs the extra 'lab': pip install 'simrs-downtime[lab]')"
        raise LabError(
            f"the lab's message gateway and mail server did not start{hint}: {res.stderr.strip()[-400:]}"
        )


def inbox() -> dict[str, list[dict]]:
    """Every notice the lab's webhook and mail server received, oldest first."""

    def read(name: str) -> list[dict]:
        path = inbox_dir() / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    posts = read("http.jsonl")
    for post in posts:
        try:
            post["json"] = json.loads(post.get("body") or "null")
        except json.JSONDecodeError:
            post["json"] = None
    return {"webhook": posts, "email": read("smtp.jsonl")}


def stop_receivers() -> None:
    if (inbox_dir() / "receivers.json").exists():
        _receivers("--stop")


def _teardown(spec: LabSpec, progress: Progress) -> None:
    stop_receivers()
    bmc.stop(bmc_dir())
    names = podman.run("ps", "-aq", "--filter", f"label={LABEL}", check=False).out.split()
    if names:
        progress(f"removing {len(names)} containers")
        podman.run("rm", "-f", "-t", "0", *names, timeout=180 + len(names))
    if podman.run("network", "exists", spec.network, check=False).ok:
        progress(f"removing network {spec.network}")
        podman.run("network", "rm", "-f", spec.network)
    state = paths.state_dir()
    hostfs.unmount(state / "attach")
    hostfs.unmount(state / "mnt")
    for leftover in ("data.img", "backup-disk.img", "lab.json"):
        (state / leftover).unlink(missing_ok=True)
    shutil.rmtree(inbox_dir(), ignore_errors=True)
    shutil.rmtree(ssh_dir(), ignore_errors=True)
    shutil.rmtree(bmc_dir(), ignore_errors=True)
    inv = state / "inventory"
    if inv.exists():
        (inv / "group_vars").unlink(missing_ok=True)
        (inv / "hosts.yml").unlink(missing_ok=True)
        shutil.rmtree(inv / "host_vars", ignore_errors=True)
        inv.rmdir()


# ---- status --------------------------------------------------------------------------------


@dataclass
class Probe:
    ok: bool
    failed: str | None = None
    served_by: str | None = None
    detail: str = ""
    checks: list[dict] = field(default_factory=list)


def probe_client(name: str, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Run the SIMRS client check on one PC; bounded by the probe's own timeouts."""
    try:
        res = exec_in(
            name, "simrs-probe", "--json", "--timeout", str(timeout), check=False, timeout=timeout * 4 + 5
        )
        data = json.loads(res.out)
    except (LabError, json.JSONDecodeError) as exc:
        return Probe(False, "exec", detail=str(exc)[:200])
    failed = data.get("failed") or data.get("error")
    detail = next((c["detail"] for c in data.get("checks", []) if not c["ok"]), "")
    return Probe(bool(data.get("ok")), failed, data.get("served_by"), detail, data.get("checks", []))


def probe_clients(names: list[str]) -> dict[str, Probe]:
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        return dict(zip(names, pool.map(probe_client, names), strict=True))


def _ips(name: str) -> list[str]:
    """The host's IPv4 addresses. A slow podman (a loaded machine) is asked again, never read as
    "no addresses": a status that says nobody holds the service IP must mean it."""
    why = ""
    for attempt in range(3):
        try:
            res = exec_in(name, "ip", "-4", "-o", "addr", "show", "scope", "global", check=False, timeout=20)
        except podman.LabError as exc:  # did not answer in time
            why = str(exc)
        else:
            if res.ok:
                return [ln.split()[3].split("/")[0] for ln in res.out.splitlines() if len(ln.split()) > 3]
            why = res.err.strip()[:200]
        if container_state(name) != "running":
            return []
        time.sleep(1 + attempt)
    raise podman.LabError(f"cannot read {name}'s addresses (podman exec failed 3 times): {why}")


def status() -> dict:
    spec, state = current()
    running_clients = []
    hosts_out = []
    for h in topology.hosts(spec):
        cstate = container_state(h.name)
        power = {"running": "running", None: "missing"}.get(cstate, "off")
        entry: dict = {
            "name": h.name,
            "role": h.role,
            "unit": h.unit,
            "state": power,
            "ips": _ips(h.name) if power == "running" else [],
        }
        if h.role == "client" and power == "running":
            running_clients.append(h.name)
        hosts_out.append(entry)
    probes = probe_clients(running_clients)
    for entry in hosts_out:
        if entry["role"] == "client":
            p = probes.get(entry["name"])
            entry["reaches_simrs"] = bool(p and p.ok)
            entry["failed_check"] = p.failed if p else "host off"
            entry["served_by"] = p.served_by if p else None
    owners = [e["name"] for e in hosts_out if spec.service_ip in e["ips"]]
    return {
        "hosts": hosts_out,
        "service_ip": spec.service_ip,
        "service_ip_owners": owners,
        "os": spec.os,
        "faults": state.get("faults", {}),
        "inventory": state.get("inventory"),
        "workload": workload_summary(spec),
    }


# ---- workload ------------------------------------------------------------------------------

WORKLOAD_RECORD = "/var/lib/simrs-workload/record.jsonl"


def workload_host(spec: LabSpec) -> str:
    """The registration desk (pendaftaran) registers visits; a one-client lab uses its client."""
    clients = [h for h in topology.hosts(spec) if h.role == "client"]
    return next((h.name for h in clients if h.unit == "pendaftaran"), clients[0].name)


def workload_running(spec: LabSpec) -> bool:
    res = exec_in(workload_host(spec), "pgrep", "-f", "simrs-workload", check=False, timeout=10)
    return res.ok


def workload_start(interval: float = 0.5) -> None:
    spec, _state = current()
    if interval <= 0 or interval > 60:
        raise LabError("--interval must be between 0 and 60 seconds", exit_code=2)
    if workload_running(spec):
        raise LabError("the workload is already running: `simrs lab workload stop` first", 2)
    podman.run(
        "exec",
        "-d",
        workload_host(spec),
        "simrs-workload",
        "--interval",
        str(interval),
        "--record",
        WORKLOAD_RECORD,
    )


def workload_stop() -> None:
    spec, _state = current()
    exec_in(workload_host(spec), "pkill", "-TERM", "-f", "simrs-workload", check=False)
    wait_for("the workload to stop", lambda: not workload_running(spec), timeout=10)


def workload_record(spec: LabSpec) -> list[dict]:
    res = exec_in(workload_host(spec), "cat", WORKLOAD_RECORD, check=False, timeout=30)
    return [json.loads(line) for line in res.out.splitlines() if line.strip()] if res.ok else []


def workload_summary(spec: LabSpec) -> dict:
    if container_state(workload_host(spec)) != "running":
        return {"running": False, "committed": None, "errors": None}
    records = workload_record(spec)
    committed = [r for r in records if "no_rawat" in r]
    return {
        "running": workload_running(spec),
        "committed": len(committed),
        "errors": len(records) - len(committed),
        "last_committed": committed[-1] if committed else None,
    }
