"""Faults the lab can suffer, each with its exact undo. The SOP's branches are tested on these.

| fault            | what happens                                              | heal                  |
| primary-off      | the main server loses power (container killed)            | power on, wait for DB |
| db-crash         | MariaDB service and its socket stopped                    | start them            |
| disk-full        | /data (the database filesystem) filled by rotated logs    | remove those files    |
| client-net HOST  | that PC loses its route, its SIMRS name, or its address   | re-apply its config   |
| backup-corrupt   | bytes flipped in the newest backup on the external disk   | original bytes back   |
| disk-missing     | the external backup disk is unplugged from both servers   | plug it in again      |
| standby-dead     | the standby cannot be switched on (gone from its driver)  | make it switchable    |
| bmc-silent       | the primary's BMC does not answer (IPMI, Redfish)         | it answers again      |
| bmc-password     | the primary's BMC refuses the inventory's password        | the password is back  |
| bmc-liar         | the primary's BMC accepts a power-off, keeps saying "on"  | it switches again     |

Active faults are kept in the lab state, so ``heal`` undoes exactly what ``break`` did.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

from orchestrator.lab import bmc, lab, paths, topology
from orchestrator.lab.podman import LabError

FAULTS = (
    "primary-off",
    "db-crash",
    "disk-full",
    "client-net",
    "backup-corrupt",
    "disk-missing",
    "standby-dead",
    "bmc-silent",
    "bmc-password",
    "bmc-liar",
)
STANDBY = "simrs-standby"
# The standby's power driver (podman) no longer finds it: like a PSU that does not start.
DEAD_STANDBY = "simrs-standby-dead"
CLIENT_NET_MODES = ("route", "dns", "address")
FILLER_DIR = "/data/log/simrs"
CORRUPT_BYTES = 64


def _usage(msg: str) -> LabError:
    return LabError(msg, exit_code=2)


def validate(fault: str, host: str | None, spec: topology.LabSpec) -> None:
    if fault not in FAULTS:
        raise _usage(f"unknown fault {fault!r}; choose one of: {', '.join(FAULTS)}")
    if fault == "client-net":
        clients = [h.name for h in topology.hosts(spec) if h.role == "client"]
        if host is None:
            raise _usage(f"client-net needs a client PC, one of: {', '.join(clients)}")
        if host not in clients:
            raise _usage(f"{host!r} is not a client PC of the lab; choose one of: {', '.join(clients)}")
    elif host is not None:
        raise _usage(f"fault {fault} takes no host (only client-net does)")


def fault_key(fault: str, host: str | None) -> str:
    return f"{fault}:{host}" if host else fault


def break_fault(fault: str, host: str | None = None, mode: str = "route") -> dict:
    spec, state = lab.current()
    validate(fault, host, spec)
    key = fault_key(fault, host)
    if key in state["faults"]:
        raise _usage(f"{key} is already broken; `simrs lab heal {fault}` first")
    record: dict = {"since": time.time()}
    if fault == "primary-off":
        if lab.container_state("simrs-primary") != "running":
            raise _usage("simrs-primary is already off")
        lab.podman.run("kill", "simrs-primary")  # a power cut, not a clean shutdown
    elif fault == "db-crash":
        _need_primary_running(fault)
        lab.exec_in("simrs-primary", "systemctl", "stop", "mariadb.socket", "mariadb.service")
    elif fault == "disk-full":
        _need_primary_running(fault)
        record["files"] = _fill_disk()
    elif fault == "client-net":
        if mode not in CLIENT_NET_MODES:
            raise _usage(f"unknown client-net mode {mode!r}; one of {', '.join(CLIENT_NET_MODES)}")
        _break_client(spec, host, mode)
        record["mode"] = mode
    elif fault == "backup-corrupt":
        record.update(_corrupt_newest_backup())
    elif fault == "disk-missing":
        for server in ("simrs-primary", "simrs-standby"):
            lab.detach_backup_disk(server)
    elif fault == "standby-dead" or fault.startswith("bmc-"):
        _break_power(fault)
    state["faults"][key] = record
    lab.save_state(state)
    return {"fault": key, **record}


def _break_power(fault: str) -> None:
    if fault.startswith("bmc-"):
        bmc.set_fault(lab.bmc_dir(), "simrs-primary", fault.removeprefix("bmc-"))
        return
    if lab.container_state(STANDBY) == "running":
        lab.podman.run("kill", STANDBY)
    lab.podman.run("rename", STANDBY, DEAD_STANDBY)


def heal(fault: str | None = None, host: str | None = None) -> list[str]:
    spec, state = lab.current()
    faults: dict = state["faults"]
    if fault is None:
        keys = list(faults)
    else:
        if fault not in FAULTS:
            raise _usage(f"unknown fault {fault!r}; choose one of: {', '.join(FAULTS)}")
        wanted = fault_key(fault, host)
        keys = [k for k in faults if k == wanted or (host is None and k.split(":")[0] == fault)]
        if not keys:
            active = ", ".join(faults) or "none"
            raise _usage(f"{fault_key(fault, host)} is not broken (active faults: {active})")
    healed = []
    server_touched = False
    for key in keys:
        name, _, target = key.partition(":")
        _heal_one(spec, name, target or None, faults[key])
        del faults[key]
        lab.save_state(state)  # one by one: a failure later keeps the earlier heals recorded
        healed.append(key)
        server_touched |= name in ("primary-off", "db-crash", "disk-full")
    if server_touched:
        # MariaDB retries a full disk once a minute; the service IP waits for its DAD.
        lab.wait_serving(spec, timeout=90)
    return healed


def _heal_one(spec: topology.LabSpec, fault: str, host: str | None, record: dict) -> None:
    if fault == "primary-off":
        if lab.container_state("simrs-primary") != "running":
            lab.power_on("simrs-primary")
        lab.wait_server_ready("simrs-primary")
    elif fault == "db-crash":
        lab.exec_in("simrs-primary", "systemctl", "start", "mariadb.socket", "mariadb.service")
        lab.wait_server_ready("simrs-primary")
    elif fault == "disk-full":
        _need_primary_running(fault)
        lab.exec_in("simrs-primary", "rm", "-f", *record.get("files", []))
    elif fault == "client-net" and host:
        h = topology.host_by_name(spec, host)
        if h is None:
            raise LabError(f"{host} is no longer in the lab")
        lab.exec_in(host, "simrs-netup")
        lab._copy_files(host, {"/etc/hosts": (topology.client_hosts_file(spec, h), 0o644)})
    elif fault == "disk-missing":
        for server in ("simrs-primary", "simrs-standby"):
            lab.attach_backup_disk(server)
    elif fault == "standby-dead":
        if lab.container_state(DEAD_STANDBY) is not None:
            lab.podman.run("rename", DEAD_STANDBY, STANDBY)
    elif fault.startswith("bmc-"):
        bmc.set_fault(lab.bmc_dir(), "simrs-primary", None)
    elif fault == "backup-corrupt":
        path = Path(record["path"])
        original = base64.b64decode(record["original"])
        with path.open("r+b") as handle:
            handle.seek(record["offset"])
            handle.write(original)


def _need_primary_running(fault: str) -> None:
    if lab.container_state("simrs-primary") != "running":
        raise _usage(f"{fault} needs simrs-primary running; it is off (heal primary-off first)")


def _fill_disk() -> list[str]:
    """Fill /data with 'rotated logs' and a stale temp file: the kind of junk a repair may free."""
    res = lab.exec_in("simrs-primary", "df", "--output=avail", "-B1", "/data")
    avail = int(res.out.split()[-1])
    log = f"{FILLER_DIR}/simrs-web.log.1"
    tmp = "/data/tmp/simrs-export.tmp"
    lab.exec_in("simrs-primary", "mkdir", "-p", FILLER_DIR)
    lab.exec_in("simrs-primary", "fallocate", "-l", str(max(avail - (1 << 20), 4096)), log)
    # Then every last block (root's reserve included), so the database cannot write at all.
    lab.exec_in(
        "simrs-primary", "sh", "-c", f"dd if=/dev/zero of={tmp} bs=64k 2>/dev/null; sync; true", timeout=120
    )
    # A new binary log needs a block: from here every commit waits for space, as on a real
    # full disk (reads still work). The flush itself waits too, so it is cut off after 3 s.
    lab.exec_in(
        "simrs-primary", "timeout", "3", "mariadb", "-e", "FLUSH BINARY LOGS", check=False, timeout=30
    )
    return [log, tmp]


def _break_client(spec: topology.LabSpec, host: str | None, mode: str) -> None:
    assert host is not None  # validated above  # noqa: S101
    if lab.container_state(host) != "running":
        raise _usage(f"{host} is not running")
    if mode == "route":
        lab.exec_in(host, "ip", "route", "del", spec.subnet, "dev", "eth0")
    elif mode == "dns":
        lab.exec_in(host, "sed", "-i", f"/\\s{spec.server_name}$/d", "/etc/hosts")
    else:
        lab.exec_in(host, "ip", "addr", "flush", "dev", "eth0")


def _corrupt_newest_backup() -> dict:
    """Flip bytes in the middle of the largest file of the newest backup set (a folder with a
    manifest.json) on the external disk: what a failing disk sector does to a backup."""
    disk = paths.state_dir() / "mnt" / "backup-disk"
    sets = [m.parent for m in disk.rglob("manifest.json") if "lost+found" not in m.parts]
    if not sets:
        raise _usage("there is no backup set on the external disk to corrupt yet; take one first")
    newest_set = max(sets, key=lambda d: ((d / "manifest.json").stat().st_mtime, d.name))
    files = [p for p in newest_set.rglob("*") if p.is_file() and p.name != "manifest.json"]
    if not files:
        raise _usage(f"the newest backup set {newest_set.name} has no data files to corrupt")
    newest = max(files, key=lambda p: p.stat().st_size)
    size = newest.stat().st_size
    offset = max(0, size // 2 - CORRUPT_BYTES // 2)
    with newest.open("r+b") as handle:
        handle.seek(offset)
        original = handle.read(CORRUPT_BYTES)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in original))
    return {"path": str(newest), "offset": offset, "original": base64.b64encode(original).decode()}
