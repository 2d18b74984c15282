"""`simrs preflight`: is the hospital ready for the automation? The decisions, pure.

The playbook preflight.yml only reads (under --check): every server's power driver, every host's
answer, sudo and clock, the primary's service IP, drill IP and external disk; it publishes
``simrs_preflight`` {host: {group, power, host, primary}}. Here those findings, the inventory's own
validation and the schedule's times become one table of rows and a verdict: exit 0 when nothing
must be fixed, 2 when something must, each failing row naming the variable or host to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

OK, WARN, SKIP, FAIL = "ok", "warn", "skip", "FAIL"
CLOCK_SKEW_S = 60  # more and backup sets, the journal and the drill's RPO read wrong times

_POWER_FIX = {
    "podman": "power_podman_container",
    "ipmi": "power_ipmi_host, power_ipmi_user, power_ipmi_password",
    "redfish": "power_redfish_baseuri, power_redfish_user, power_redfish_password",
    "wol": "power_wol_mac, power_wol_broadcast",
    "manual": "power_driver",
}


@dataclass(frozen=True)
class Row:
    check: str
    host: str  # the host it is about, "-" for the site as a whole
    status: str  # ok | warn | skip | FAIL
    detail: str
    fix: str = ""  # what to fix: the variable(s) and where, or the host's own setting

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    rows: tuple[Row, ...]

    @property
    def problems(self) -> list[Row]:
        return [r for r in self.rows if r.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 2

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": [r.as_dict() for r in self.rows]}


# ---- before any host is asked --------------------------------------------------------------------


def unreadable_inventory(message: str, vault_file: str | None) -> Verdict:
    """The inventory could not be read at all: a vault that does not open, or a broken file."""
    if "vault" in message.lower():
        fix = "--vault-password-file FILE (or SIMRS_VAULT_PASSWORD_FILE), or --ask-vault-pass"
        if vault_file:
            fix = f"the vault password in {vault_file}, or re-encrypt the secrets with the right one"
        return Verdict((Row("vault", "-", FAIL, message, fix), _not_asked()))
    return Verdict((Row("inventory", "-", FAIL, message, "the inventory file"), _not_asked()))


def bad_inventory(problems: list[str]) -> Verdict:
    """The inventory's own validation (orchestrator/inventory.py): each problem names its variable."""
    rows = [Row("inventory", _host_of(p), FAIL, p, p.split(":", 1)[0]) for p in problems]
    return Verdict((*rows, _not_asked()))


def _host_of(problem: str) -> str:
    head = problem.split(":", 1)[0]
    return head[head.index("(") + 1 : head.rindex(")")] if "(" in head and head.endswith(")") else "-"


def _not_asked() -> Row:
    return Row("hosts", "-", SKIP, "not asked: fix the rows above first (nothing was changed on any host)")


def inventory_rows(hosts: int, vault_file: str | None) -> list[Row]:
    rows = [Row("inventory", "-", OK, f"read and valid ({hosts} hosts)")]
    if vault_file:
        rows.append(Row("vault", "-", OK, f"the secrets open with the password in {vault_file}"))
    return rows


def schedule_rows(times: Mapping[str, str] | str, analyze: Callable[[str], str | None] | None) -> list[Row]:
    """The scheduled jobs' times (simrs_schedule): each must be a time systemd (or cron) can read.
    ``times`` is the resolved schedule, or the reason it could not be resolved."""
    if isinstance(times, str):
        return [Row("schedule", "-", FAIL, times, "simrs_schedule")]
    rows = []
    for key, expr in times.items():
        problem = analyze(expr) if analyze is not None else None
        if problem:
            rows.append(
                Row(
                    "schedule",
                    "-",
                    FAIL,
                    f"{key} {expr!r}: systemd cannot read it ({problem})",
                    f"simrs_schedule.{key}",
                )
            )
    if not rows:
        listed = ", ".join(f"{k} {v}" for k, v in times.items()) or "no jobs"
        rows.append(Row("schedule", "-", OK, listed))
    return rows


# ---- the hosts' findings -------------------------------------------------------------------------


def judge(
    findings: Mapping[str, Mapping[str, Any] | None],
    primary: str,
    standby: str | None,
    clients: list[str],
    *,
    clock_skew_s: int = CLOCK_SKEW_S,
) -> list[Row]:
    """The rows for what the hosts said (simrs_preflight). A host with no findings at all (the run
    ended before it) is a problem: nothing unchecked passes."""
    rows: list[Row] = []
    for server in [primary, *([standby] if standby else [])]:
        rows.append(_power(server, (findings.get(server) or {}).get("power"), server == primary))
    for host in [primary, *([standby] if standby else []), *clients]:
        seen = findings.get(host) or {}
        rows.extend(_host(host, seen.get("host"), seen.get("power"), host == standby, clock_skew_s))
    seen = findings.get(primary) or {}
    facts = seen.get("primary")
    if facts:
        rows.append(_service_ip(primary, facts.get("service_ip") or {}))
        rows.append(_drill_ip(primary, facts.get("drill_ip")))
        rows.append(_disk(primary, facts.get("disk") or {}))
    else:
        why = "not checked: the primary does not answer (see above)"
        if (seen.get("host") or {}).get("reachable"):
            why = "not checked: the run ended before it (see the run's log)"
        for check, fix in (
            ("service IP", "simrs_service_ip"),
            ("drill IP", "simrs_drill_ip"),
            ("backup disk", "backup_disk"),
        ):
            rows.append(Row(check, primary, FAIL, why, fix))
    return rows


def _power(host: str, power: Mapping[str, Any] | None, is_primary: bool) -> Row:
    if not power:
        return Row("power", host, FAIL, "not checked: the run ended before it", f"power_driver ({host})")
    driver = str(power.get("driver") or "manual")
    if not power.get("ok"):
        fix = f"{_POWER_FIX.get(driver, 'power_driver')} ({host})"
        return Row("power", host, FAIL, f"{driver}: the driver does not answer: {power.get('detail')}", fix)
    detail = f"{driver}: {power.get('detail')}"
    if driver in ("wol", "manual") and not is_primary:
        # These drivers cannot read the power: the failover will wake it (wol) or ask a person.
        return Row("power", host, WARN, f"{detail} (this driver cannot read the power state)")
    return Row("power", host, OK, detail)


def _host(
    host: str,
    seen: Mapping[str, Any] | None,
    power: Mapping[str, Any] | None,
    is_standby: bool,
    clock_skew_s: int,
) -> list[Row]:
    if not seen:
        return [Row("reach", host, FAIL, "not checked: the run ended before it", f"{host}")]
    if not seen.get("checked"):
        return [Row("reach", host, SKIP, "switched off (a cold standby): not contacted")]
    fix_reach = f"ansible_host, ansible_user and its SSH key, or the host itself ({host})"
    if seen.get("unreachable"):
        detail = f"does not answer Ansible: {seen.get('detail') or 'unreachable'}"
        if is_standby and (power or {}).get("driver_state") != "on":
            # A cold standby whose driver cannot tell (wol, manual, a failing driver) may be off.
            return [Row("reach", host, SKIP, f"{detail} (may be switched off: see its power row)")]
        return [Row("reach", host, FAIL, detail, fix_reach)]
    user = str(seen.get("user") or "")
    if not seen.get("reachable"):
        return [
            Row("reach", host, OK, "answers"),
            Row(
                "sudo",
                host,
                FAIL,
                f"tasks cannot run: {seen.get('detail') or 'the command failed'}",
                f"ansible_become and the account's sudo rights (passwordless) ({host})",
            ),
        ]
    rows = [Row("reach", host, OK, f"answers as {user or '?'}")]
    if str(seen.get("uid")) != "0":
        rows.append(
            Row(
                "sudo",
                host,
                FAIL,
                f"tasks run as {user or 'uid ' + str(seen.get('uid'))}, not root",
                f"ansible_become: true, and passwordless sudo for {user or 'ansible_user'} ({host})",
            )
        )
    else:
        how = "as root through become (sudo)" if seen.get("become") else "as root"
        rows.append(Row("sudo", host, OK, f"tasks run {how}"))
    skew = seen.get("clock_skew")
    if skew is None:
        rows.append(Row("clock", host, WARN, "its time could not be read"))
    elif int(skew) > clock_skew_s:
        rows.append(
            Row(
                "clock",
                host,
                FAIL,
                f"{int(skew)} s off the admin machine's clock (over {clock_skew_s} s)",
                f"its time sync: chrony or systemd-timesyncd ({host})",
            )
        )
    else:
        rows.append(Row("clock", host, OK, f"within {int(skew)} s of the admin machine"))
    return rows


def _macs(view: Mapping[str, Any]) -> str:
    return ", ".join(view.get("answered_by") or []) or "another host"


def _service_ip(primary: str, view: Mapping[str, Any]) -> Row:
    address = view.get("address") or "?"
    fix = "simrs_service_ip, simrs_service_prefix, simrs_service_interface"
    if not view.get("ok"):
        return Row("service IP", primary, FAIL, f"{address}: could not be checked: {view.get('detail')}", fix)
    if not view.get("free"):
        return Row(
            "service IP",
            primary,
            FAIL,
            f"{address}: another host answers for it (MAC {_macs(view)}): two hosts would hold it",
            "simrs_service_ip (or remove the address from the other host)",
        )
    if not view.get("held"):
        has = ", ".join(view.get("addresses") or []) or "no IPv4 address"
        return Row(
            "service IP",
            primary,
            FAIL,
            f"{address} is not on {primary} (its interface has {has}); no host answers for it",
            "simrs_service_ip (the address the PCs use), or fail back first if the standby serves",
        )
    return Row("service IP", primary, OK, f"{address} is on {primary}; no other host answers for it")


def _drill_ip(primary: str, view: Mapping[str, Any] | None) -> Row:
    if view is None:
        return Row(
            "drill IP", primary, WARN, "simrs_drill_ip is not set: `simrs drill` cannot run", "simrs_drill_ip"
        )
    address = view.get("address") or "?"
    if not view.get("ok"):
        return Row(
            "drill IP",
            primary,
            FAIL,
            f"{address}: could not be checked: {view.get('detail')}",
            "simrs_drill_ip",
        )
    if view.get("held"):
        return Row(
            "drill IP", primary, FAIL, f"{address} is on {primary} itself: it must be free", "simrs_drill_ip"
        )
    if not view.get("free"):
        return Row(
            "drill IP",
            primary,
            FAIL,
            f"{address} is in use (MAC {_macs(view)}): it must be free",
            "simrs_drill_ip",
        )
    return Row("drill IP", primary, OK, f"{address} is free")


def _disk(primary: str, disk: Mapping[str, Any]) -> Row:
    mount = disk.get("mount_point") or "?"
    label = str(disk.get("label") or "")
    uuid = str(disk.get("uuid") or "")
    name = uuid or label
    if not disk.get("ok"):
        return Row(
            "backup disk",
            primary,
            FAIL,
            f"{mount}: could not be read: {disk.get('detail')}",
            "backup_disk.mount_point",
        )
    if not disk.get("mounted"):
        what = "only a folder on the server's own disk" if disk.get("exists") else "no such folder"
        return Row(
            "backup disk",
            primary,
            FAIL,
            f"nothing is mounted at {mount} ({what}): plug in the disk {name} and mount it there",
            f"backup_disk.mount_point, or mount the disk ({primary})",
        )
    wrong = _disk_identity(primary, disk, mount, name, bool(uuid))
    if wrong is not None:
        return wrong
    free = disk.get("free_bytes")
    room = f", {int(free) / 2**30:.1f} GiB free" if isinstance(free, int | float) else ""
    return Row("backup disk", primary, OK, f"{name} mounted at {mount}{room}")


def _disk_identity(primary: str, disk: Mapping[str, Any], mount: str, name: str, by_uuid: bool) -> Row | None:
    """A mounted disk that is not the hospital's (its device's label or UUID, its marker), or None."""
    setting = "backup_disk.uuid" if by_uuid else "backup_disk.label"
    device = str(disk.get("device_uuid") or "") if by_uuid else str(disk.get("device_label") or "")
    if device and device != name:
        return Row("backup disk", primary, FAIL, f"the disk at {mount} is {device!r}, not {name!r}", setting)
    marker = disk.get("marker")
    if not marker:
        return Row(
            "backup disk",
            primary,
            FAIL,
            f"the disk at {mount} has no .simrs-backup-disk marker: if it is the backup disk {name}, "
            "mark it once with `simrs backup run --initialize-disk`",
            f"the disk ({primary}) or {setting}",
        )
    marked = str((marker.get("uuid") if by_uuid else marker.get("label")) or "")
    if marked != name:
        return Row(
            "backup disk",
            primary,
            FAIL,
            f"the disk at {mount} is marked {marked!r}, not {name!r}: another disk, or the wrong setting",
            setting,
        )
    if not disk.get("writable") or "ro" in (disk.get("options") or []):
        return Row(
            "backup disk",
            primary,
            FAIL,
            f"the disk at {mount} is mounted read-only",
            f"remount it read-write ({primary})",
        )
    return None


def verdict(*parts: list[Row]) -> Verdict:
    return Verdict(tuple(r for part in parts for r in part))
