"""The hospital as read from the inventory: one reader, validated as a whole before anything runs.

Every command that reads the inventory goes through ``load``: it asks Ansible for the inventory once
(``Gateway.inventory``, the ``ansible-inventory`` call), checks every setting the orchestrator and the
roles rely on (groups, addresses, prefixes, windows, policies, ports, power drivers and their
settings, backup disk, notification channels, maintenance times) and raises one
``BadInventoryError`` naming *each* variable to fix, before any host is touched and before anything
is journaled. A value that is still a Jinja template (a vault reference, say) is left to Ansible.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.ansible import parse_inventory
from orchestrator.errors import InventoryError, SimrsError

POWER_DRIVERS = ("podman", "wol", "ipmi", "redfish", "manual")
CHANNELS = ("screen", "webhook", "email")
MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
SERVER_GROUPS = ("simrs_primary", "simrs_standby")


class BadInventoryError(InventoryError):
    """The inventory has settings that cannot work; every one is named."""

    def __init__(self, problems: list[str], source: str = "the inventory") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{source} needs fixing before anything runs ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}; nothing was changed on any host):\n{lines}"
        )


@dataclass(frozen=True)
class Hospital:
    """What the engine needs to know of the inventory."""

    clients: tuple[str, ...]
    primary: str
    standby: str | None
    repair_window_minutes: int
    failover_policy: str
    notify_lang: str = "id"
    info: dict[str, Any] = field(default_factory=dict)  # simrs_hospital: name, address, head of unit
    prestage: bool = True  # simrs_prestage: ready the standby during the repair window
    units: dict[str, str] = field(default_factory=dict)  # client PC -> its unit (simrs_unit)
    triage_per_unit: int = 2  # simrs_triage_per_unit: PCs per unit probed before the verdict

    @classmethod
    def from_inventory(cls, raw: dict[str, Any]) -> Hospital:
        inv = parse_inventory(raw)
        groups, hostvars = inv["groups"], inv["hostvars"]
        problems = validate(groups, hostvars)
        if problems:
            raise BadInventoryError(problems)
        anyvars = hostvars.get(groups["simrs_primary"][0], {})
        standby = groups.get("simrs_standby") or [None]
        info = anyvars.get("simrs_hospital") or {}
        prestage = anyvars.get("simrs_prestage", True)
        return cls(
            tuple(groups["simrs_clients"]),
            groups["simrs_primary"][0],
            standby[0],
            anyvars.get("simrs_repair_window_minutes", 60),
            anyvars.get("simrs_failover_policy", "approve"),
            anyvars.get("notify_lang", "id"),
            {
                "name": info.get("name", ""),
                "address": info.get("address", ""),
                "head_of_unit": info.get("head_of_unit", ""),
            },
            prestage and standby[0] is not None,
            {pc: str(hostvars.get(pc, {}).get("simrs_unit") or pc) for pc in groups["simrs_clients"]},
            int(anyvars.get("simrs_triage_per_unit", 2)),
        )


@dataclass(frozen=True)
class Site:
    """The inventory, read once and validated: its raw form for the settings readers of each
    operation (drill, maintenance, schedule), and the hospital for the engine."""

    raw: dict[str, Any]
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]
    hospital: Hospital


def load(raw: dict[str, Any]) -> Site:
    """Validate the whole inventory (every problem at once), then build the hospital."""
    inv = parse_inventory(raw)
    problems = validate(inv["groups"], inv["hostvars"])
    for check in _operation_checks():
        problem = check(raw)
        if problem:
            problems.append(problem)
    if problems:
        raise BadInventoryError(problems)
    return Site(raw, inv["groups"], inv["hostvars"], Hospital.from_inventory(raw))


def _operation_checks() -> list[Callable[[dict[str, Any]], str | None]]:
    """The settings readers of the operations (maintenance times, ...), as checks: their own
    refusal becomes one more problem in the list."""
    from orchestrator import maintenance  # noqa: PLC0415  (maintenance imports the gateway's types)

    def maintenance_settings(raw: dict[str, Any]) -> str | None:
        try:
            maintenance.Policy.from_inventory(raw)
        except SimrsError as exc:
            return f"simrs_maintenance: {exc}"
        return None

    return [maintenance_settings]


# ---- the checks (pure) ---------------------------------------------------------------------------


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _ipv4(value: Any) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        return None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    def __init__(self, hostvars: dict[str, dict[str, Any]]) -> None:
        self.hostvars = hostvars
        self.problems: list[str] = []

    def say(self, var: str, host: str | None, what: str) -> None:
        where = f" ({host})" if host else ""
        line = f"{var}{where}: {what}"
        if line not in self.problems:
            self.problems.append(line)

    def address(
        self, var: str, host: str, value: Any, required: bool = False
    ) -> ipaddress.IPv4Address | None:
        if value is None or value == "":
            if required:
                self.say(var, host, "is not set: the IPv4 address the SIMRS clients use (e.g. 10.10.1.10)")
            return None
        if _templated(value):
            return None
        address = _ipv4(value)
        if address is None:
            self.say(var, host, f"{value!r} is not an IPv4 address (four numbers 0-255, e.g. 10.10.1.10)")
        elif address.is_unspecified or address.is_multicast or address.is_loopback:
            self.say(var, host, f"{value} cannot be a host's address (unspecified, loopback or multicast)")
            return None
        return address

    def whole(self, var: str, host: str | None, value: Any, low: int, high: int, unit: str) -> None:
        if value is None or _templated(value):
            return
        if not _whole(value) or not low <= value <= high:
            self.say(var, host, f"must be a whole number of {unit} from {low} to {high}, not {value!r}")

    def choice(self, var: str, host: str | None, value: Any, allowed: tuple[str, ...]) -> None:
        if value is None or _templated(value):
            return
        if value not in allowed:
            self.say(var, host, f"must be one of {', '.join(allowed)}, not {value!r}")

    def needed(self, var: str, host: str, v: dict[str, Any], why: str) -> None:
        if not v.get(var) and v.get(var) != 0:
            self.say(var, host, f"is not set: {why}")


def validate(groups: dict[str, list[str]], hostvars: dict[str, dict[str, Any]]) -> list[str]:
    """Every problem in the inventory, in words that name the variable and what to write."""
    c = _Checker(hostvars)
    _groups(c, groups)
    primary = (groups.get("simrs_primary") or [None])[0]
    servers = [h for g in SERVER_GROUPS for h in groups.get(g, [])]
    mgmt: dict[str, ipaddress.IPv4Address] = {}
    for host in sorted(set(servers) | set(groups.get("simrs_clients", []))):
        address = c.address("simrs_mgmt_ip", host, hostvars.get(host, {}).get("simrs_mgmt_ip"))
        if address is not None:
            mgmt[host] = address
    for host in servers:
        _server(c, host, hostvars.get(host, {}), mgmt)
    if primary is not None:
        _settings(c, hostvars.get(primary, {}))
    return c.problems


def _groups(c: _Checker, groups: dict[str, list[str]]) -> None:
    primary, standby, clients = (
        groups.get(g, []) for g in ("simrs_primary", "simrs_standby", "simrs_clients")
    )
    if len(primary) != 1:
        c.say(
            "simrs_primary",
            None,
            f"must hold exactly one host (the main SIMRS server), not {primary or 'none'}",
        )
    if len(standby) > 1:
        c.say("simrs_standby", None, f"must hold at most one host (the cold standby), not {standby}")
    if not clients:
        c.say("simrs_clients", None, "has no hosts: list the unit PCs that run the SIMRS client")
    both = sorted((set(primary) | set(standby)) & set(clients)) + sorted(set(primary) & set(standby))
    for host in both:
        c.say("groups", host, "is in more than one of simrs_primary, simrs_standby, simrs_clients")


def _server(c: _Checker, host: str, v: dict[str, Any], mgmt: dict[str, ipaddress.IPv4Address]) -> None:
    service = c.address("simrs_service_ip", host, v.get("simrs_service_ip"), required=True)
    if service is not None and service in mgmt.values():
        owner = next(h for h, a in mgmt.items() if a == service)
        c.say(
            "simrs_service_ip", host, f"{service} is {owner}'s own address (simrs_mgmt_ip): pick a free one"
        )
    prefix = v.get("simrs_service_prefix")
    c.whole("simrs_service_prefix", host, prefix, 8, 32, "bits")
    if service is not None and _whole(prefix) and 8 <= prefix <= 30:
        net = ipaddress.IPv4Network(f"{service}/{prefix}", strict=False)
        if service in (net.network_address, net.broadcast_address):
            c.say("simrs_service_ip", host, f"{service} is the network or broadcast address of {net}")
    drill = c.address("simrs_drill_ip", host, v.get("simrs_drill_ip"))
    if drill is not None and (drill == service or drill in mgmt.values()):
        c.say("simrs_drill_ip", host, f"{drill} is already used (the service IP or a host's own address)")
    c.whole("simrs_db_port", host, v.get("simrs_db_port"), 1, 65535, "(a TCP port)")
    c.whole("simrs_web_port", host, v.get("simrs_web_port"), 1, 65535, "(a TCP port)")
    _power(c, host, v)


def _power(c: _Checker, host: str, v: dict[str, Any]) -> None:
    driver = v.get("power_driver")
    c.choice("power_driver", host, driver, POWER_DRIVERS)
    if driver == "wol":
        mac = v.get("power_wol_mac")
        if not mac:
            c.say("power_wol_mac", host, "is not set: Wake-on-LAN needs the server's MAC (aa:bb:cc:dd:ee:ff)")
        elif not _templated(mac) and not MAC.match(str(mac)):
            c.say("power_wol_mac", host, f"{mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
        if not v.get("power_wol_broadcast"):
            c.say(
                "power_wol_broadcast", host, "is not set: the directed broadcast of its network (10.10.1.255)"
            )
        elif not _templated(v["power_wol_broadcast"]) and _ipv4(v["power_wol_broadcast"]) is None:
            c.say("power_wol_broadcast", host, f"{v['power_wol_broadcast']!r} is not an IPv4 address")
    bmc = driver
    if driver == "wol" and v.get("power_wol_bmc"):
        c.choice("power_wol_bmc", host, v["power_wol_bmc"], ("ipmi", "redfish"))
        bmc = v["power_wol_bmc"]
    if bmc == "ipmi":
        for var, why in (
            ("power_ipmi_host", "the BMC's address"),
            ("power_ipmi_user", "the BMC account (power control rights only)"),
            ("power_ipmi_password", "its password (Ansible Vault)"),
        ):
            c.needed(var, host, v, why)
        c.whole("power_ipmi_port", host, v.get("power_ipmi_port"), 1, 65535, "(a UDP port)")
    elif bmc == "redfish":
        for var, why in (
            ("power_redfish_baseuri", "the BMC's address (host or host:port)"),
            ("power_redfish_user", "the BMC account (power control rights only)"),
            ("power_redfish_password", "its password (Ansible Vault)"),
        ):
            c.needed(var, host, v, why)


def _settings(c: _Checker, v: dict[str, Any]) -> None:
    """The site-wide settings (group_vars/all), read from the primary's variables."""
    c.whole("simrs_repair_window_minutes", None, v.get("simrs_repair_window_minutes"), 1, 24 * 60, "minutes")
    c.choice("simrs_failover_policy", None, v.get("simrs_failover_policy"), ("approve", "auto"))
    prestage = v.get("simrs_prestage")
    if prestage is not None and not isinstance(prestage, bool) and not _templated(prestage):
        c.say("simrs_prestage", None, f"must be true or false, not {prestage!r}")
    c.choice("notify_lang", None, v.get("notify_lang"), ("id", "en"))
    c.whole("simrs_triage_per_unit", None, v.get("simrs_triage_per_unit"), 1, 50, "PCs")
    timeout = v.get("simrs_check_timeout_seconds")
    if (
        timeout is not None
        and not _templated(timeout)
        and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60)
    ):
        c.say(
            "simrs_check_timeout_seconds",
            None,
            f"must be a number of seconds above 0, up to 60, not {timeout!r}",
        )
    disk = v.get("backup_disk")
    if disk is not None and not _templated(disk):
        if not isinstance(disk, dict):
            c.say("backup_disk", None, "must be a mapping with label and mount_point")
        else:
            mount = str(disk.get("mount_point") or "")
            if not mount.startswith("/"):
                c.say("backup_disk.mount_point", None, f"must be an absolute path, not {mount!r}")
            if not disk.get("label"):
                c.say("backup_disk.label", None, "is not set: the external disk's filesystem label")
    _channels(c, v.get("notify_channels"))
    schedule = v.get("simrs_schedule")
    if schedule is not None and not _templated(schedule):
        if not isinstance(schedule, dict):
            c.say("simrs_schedule", None, "must be a mapping of job: time (or null)")
        else:
            for job, when in schedule.items():
                if when is not None and not isinstance(when, str):
                    c.say(
                        f"simrs_schedule.{job}",
                        None,
                        f"must be a systemd calendar time or null, not {when!r}",
                    )


def _channels(c: _Checker, channels: Any) -> None:
    if channels is None or _templated(channels):
        return
    if not isinstance(channels, list):
        c.say("notify_channels", None, "must be a list of channels (type: screen | webhook | email)")
        return
    for i, ch in enumerate(channels):
        var = f"notify_channels[{i}]"
        if not isinstance(ch, dict):
            c.say(var, None, "must be a mapping with a type")
            continue
        kind = ch.get("type")
        c.choice(f"{var}.type", None, kind, CHANNELS)
        if kind == "webhook":
            url = str(ch.get("url") or "")
            if not _templated(url) and not re.match(r"^https?://[^\s/]+", url):
                c.say(f"{var}.url", None, f"must be an http(s) URL, not {url!r}")
        if kind == "email":
            if not ch.get("host"):
                c.say(f"{var}.host", None, "is not set: the mail server")
            if not ch.get("to"):
                c.say(f"{var}.to", None, "is not set: who gets the notices")
            c.whole(f"{var}.port", None, ch.get("port"), 1, 65535, "(a TCP port)")
