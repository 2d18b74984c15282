"""The built-in hospital's shape, as pure data: hosts, addresses, units, lab credentials.

Nothing here touches podman. ``render_inventory`` writes the Ansible inventory that the roles
and the orchestrator use, so the lab and the playbooks agree on every name and address
(``inventory/lab/hosts.yml`` is this function's output for the default lab; a test keeps
them equal).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# The first units are the SOP's own examples; larger labs cycle through more hospital units.
UNITS = ("kasir", "pendaftaran", "farmasi", "poli", "laboratorium", "radiologi", "igd", "ranap")
# Up to SMALL_LAB_CLIENTS client PCs fit the default /24 (198.18.0.21-110, below podman's own range);
# a larger lab (the triage bench: 100, 200 PCs) widens the network to a /22 and puts the further
# PCs in 198.18.1-3.x. MAX_CLIENTS is what the addresses allow; lab.py also refuses a count this
# machine's memory cannot hold.
SMALL_LAB_CLIENTS = 90
MAX_CLIENTS = 500
DEFAULT_SUBNET = "198.18.0.0/24"
WIDE_SUBNET = "198.18.0.0/22"
MAX_PATIENTS = 2_000_000

# Lab-only credentials for a synthetic hospital. A real hospital keeps these in Ansible Vault
# (inventory/example/group_vars/all/vault.yml); nothing prints them.
LAB_DB_APP_USER = "simrs_app"
LAB_DB_APP_PASSWORD = "lab-only-app-secret"  # noqa: S105 (synthetic lab)
LAB_APP_LOGIN_USER = "admin"
LAB_APP_LOGIN_PASSWORD = "lab-only-login-secret"  # noqa: S105 (synthetic lab)


# The Debian release of every lab host (`simrs lab up --os`): 12 by default, or 11 (Python 3.9,
# MariaDB 10.5), the oldest a hospital's servers and PCs are supported on.
OS_RELEASES = ("bookworm", "bullseye")

# How Ansible reaches the lab's hosts: podman exec (fast, the lab's shortcut), or SSH as a hospital does.
CONNECTIONS = ("podman", "ssh")
SSH_USER = "simrs-ops"  # the image's account with passwordless sudo (image/Containerfile)
# How the lab's servers are switched (`simrs lab up --power`): podman itself, or their BMCs
# (orchestrator/lab/bmc.py) over loopback. mixed is the example inventory's: the primary by IPMI,
# the standby woken by Wake-on-LAN with its Redfish BMC for status and power-off.
POWER_MODES = ("podman", "ipmi", "redfish", "wol", "mixed")
BMC_BASE = "127.0.1.0"  # each server's BMC: this + the last octet of its own address
BMC_USER = "simrs-power"
WOL_BROADCAST = "127.255.255.255"  # the loopback network's broadcast: the lab's "server LAN"


# When the lab's servers were put in service (SOP 5.3: replace after about 5 years). The main
# server is as old as the one in the hospital's report; the standby is newer.
IN_SERVICE = {"primary": "2020-09", "standby": "2024-03"}


@dataclass(frozen=True)
class Host:
    name: str
    role: str  # primary | standby | client
    ip: str
    unit: str | None = None

    @property
    def is_server(self) -> bool:
        return self.role in ("primary", "standby")


@dataclass(frozen=True)
class LabSpec:
    clients: int = 3
    patients: int = 500
    network: str = "simrs-lab"
    subnet: str = DEFAULT_SUBNET  # RFC 2544 benchmark range, on an internal network only
    ip_range: str = "198.18.0.128/25"  # podman's own assignments; our fixed addresses are below
    service_ip: str = "198.18.0.10"
    server_name: str = "simrs-server"
    data_fs_mb: int = 256
    backup_disk_mb: int = 512
    backup_disk_label: str = "SIMRS-BACKUP"
    backup_mount: str = "/media/simrs-backup"
    extra: dict[str, str] = field(default_factory=dict)
    connection: str = "podman"  # podman: `podman exec`; ssh: sshd, a sudo account, checked host keys
    power: str = "podman"
    os: str = "bookworm"  # Debian release of the hosts' image (OS_RELEASES)

    def __post_init__(self) -> None:
        if self.os not in OS_RELEASES:
            raise ValueError(f"os must be one of {', '.join(OS_RELEASES)}, not {self.os!r}")
        if self.connection not in CONNECTIONS:
            raise ValueError(f"connection must be one of {', '.join(CONNECTIONS)}, not {self.connection!r}")
        if self.power not in POWER_MODES:
            raise ValueError(f"power must be one of {', '.join(POWER_MODES)}, not {self.power!r}")
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}, not {self.clients}")
        if not 1 <= self.patients <= MAX_PATIENTS:
            raise ValueError(f"patients must be between 1 and {MAX_PATIENTS}, not {self.patients}")
        if self.clients > SMALL_LAB_CLIENTS and self.subnet == DEFAULT_SUBNET:
            object.__setattr__(self, "subnet", WIDE_SUBNET)  # frozen: set once, here

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def address(self, last_octet: int) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + last_octet)


def client_name(index: int) -> tuple[str, str]:
    """The index-th client PC: (host name, unit). 0 -> kasir-01, 1 -> pendaftaran-01, ..."""
    unit = UNITS[index % len(UNITS)]
    return f"{unit}-{index // len(UNITS) + 1:02d}", unit


def client_offset(index: int) -> int:
    """The index-th client PC's offset in the lab's network: .21-.110 of the first /24, then
    .1-.254 of each next /24 (a wide lab's)."""
    if index < SMALL_LAB_CLIENTS:
        return 21 + index
    block, last = divmod(index - SMALL_LAB_CLIENTS, 254)
    return 256 * (block + 1) + last + 1


def hosts(spec: LabSpec) -> list[Host]:
    result = [
        Host("simrs-primary", "primary", spec.address(11)),
        Host("simrs-standby", "standby", spec.address(12)),
    ]
    for i in range(spec.clients):
        name, unit = client_name(i)
        result.append(Host(name, "client", spec.address(client_offset(i)), unit))
    return result


def host_by_name(spec: LabSpec, name: str) -> Host | None:
    return next((h for h in hosts(spec) if h.name == name), None)


def mac_address(ip: str) -> str:
    """A fixed, locally administered MAC address for a lab host, from its IPv4 address."""
    return "02:53:" + ":".join(f"{octet:02x}" for octet in ipaddress.IPv4Address(ip).packed)


def bmc_address(ip: str) -> str:
    return str(ipaddress.IPv4Address(BMC_BASE) + ipaddress.IPv4Address(ip).packed[-1])


def power_lines(spec: LabSpec, host: Host, ca_path: str) -> list[str]:
    """A server's power settings in the inventory; its BMC password is in host_vars (0600)."""
    driver = spec.power if spec.power != "mixed" else ("ipmi" if host.role == "primary" else "wol")
    bmc = bmc_address(host.ip)
    lines = [f"power_driver: {driver}"]
    if driver == "wol":
        lines += [f'power_wol_mac: "{mac_address(host.ip)}"', f"power_wol_broadcast: {WOL_BROADCAST}"]
        if spec.power == "mixed":
            lines.append("power_wol_bmc: redfish")
    if driver == "ipmi":
        lines += [f"power_ipmi_host: {bmc}", f"power_ipmi_user: {BMC_USER}"]
    if driver == "redfish" or (spec.power == "mixed" and driver == "wol"):
        lines += [f"power_redfish_baseuri: {bmc}", f"power_redfish_user: {BMC_USER}"]
        lines.append(f"power_redfish_ca_path: {ca_path}")
    return ["          " + line for line in lines]


def render_inventory(spec: LabSpec, ssh_dir: str = "", ca_path: str = "") -> str:
    """hosts.yml for this lab (YAML written by hand: stable order, comments, no dependency). With
    connection ssh, ``ssh_dir`` holds the login key (id_ed25519) and the lab's known_hosts; with
    BMC power, ``ca_path`` is the lab CA that the Redfish BMCs' certificates are checked against."""
    if spec.connection == "ssh":
        if not ssh_dir:
            raise ValueError("an SSH lab's inventory needs the folder of its key and known_hosts")
        how = [
            "# Every host is a podman container on the internal network " + spec.network + ",",
            f"# reached over SSH as {SSH_USER} with sudo; host keys checked against the lab's known_hosts.",
            "all:",
            "  vars:",
            "    ansible_connection: ssh",
            f"    ansible_user: {SSH_USER}",
            f"    ansible_ssh_private_key_file: {ssh_dir}/id_ed25519",
            "    ansible_ssh_common_args: >-",
            f"      -o UserKnownHostsFile={ssh_dir}/known_hosts -o StrictHostKeyChecking=yes",
            "      -o IdentitiesOnly=yes",
        ]
    else:
        how = [
            "# Every host is a podman container on the internal network " + spec.network + ".",
            "all:",
            "  vars:",
            "    ansible_connection: simrs.downtime.podman",
        ]
    lines = [
        "---",
        "# The built-in lab hospital, generated by `simrs lab up` (orchestrator/lab/topology.py).",
        *how,
        "    ansible_python_interpreter: /usr/bin/python3",
        "  children:",
    ]
    groups = (("simrs_primary", "primary"), ("simrs_standby", "standby"), ("simrs_clients", "client"))
    for group, role in groups:
        lines.append(f"    {group}:")
        if spec.connection == "ssh":
            # On the hosts' groups, not all: the admin machine's own plays (the implicit localhost
            # takes all's variables) run as the operator, without sudo.
            lines += ["      vars:", "        ansible_become: true"]
        lines.append("      hosts:")
        for host in (h for h in hosts(spec) if h.role == role):
            lines.append(f"        {host.name}:")
            if spec.connection == "ssh":
                lines.append(f"          ansible_host: {host.ip}")
            lines.append(f"          simrs_mgmt_ip: {host.ip}")
            if host.unit:
                lines.append(f"          simrs_unit: {host.unit}")
            else:
                lines += power_lines(spec, host, ca_path)
                lines.append(f"          simrs_in_service_since: {IN_SERVICE[host.role]!r}")
    return "\n".join(lines) + "\n"


def sshd_config() -> str:
    """/etc/ssh/sshd_config.d/simrs-lab.conf in an SSH lab: its own host key, keys only, one account."""
    return (
        "# simrs lab up --connection ssh\n"
        "HostKey /etc/ssh/lab/ssh_host_ed25519_key\n"
        "AuthorizedKeysFile /etc/ssh/lab/authorized_keys/%u\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        f"AllowUsers {SSH_USER}\n"
        "UseDNS no\n"
    )


def server_app_conf(spec: LabSpec) -> str:
    """/etc/simrs/app.conf on a server: the web app's own database connection (0600)."""
    return (
        "[simrs]\n"
        "db_host = 127.0.0.1\n"
        "db_port = 3306\n"
        "db_name = sik\n"
        f"db_user = {LAB_DB_APP_USER}\n"
        f"db_password = {LAB_DB_APP_PASSWORD}\n"
        "web_port = 80\n"
    )


def client_conf(spec: LabSpec) -> str:
    """/etc/simrs/client.conf on a client PC: what the SIMRS desktop client is configured with."""
    return (
        "[simrs]\n"
        f"server = {spec.server_name}\n"
        "db_port = 3306\n"
        "db_name = sik\n"
        f"db_user = {LAB_DB_APP_USER}\n"
        f"db_password = {LAB_DB_APP_PASSWORD}\n"
        f"app_user = {LAB_APP_LOGIN_USER}\n"
        f"app_password = {LAB_APP_LOGIN_PASSWORD}\n"
        "web_port = 80\n"
    )


def client_hosts_file(spec: LabSpec, host: Host) -> str:
    return f"127.0.0.1\tlocalhost\n{host.ip}\t{host.name}\n{spec.service_ip}\t{spec.server_name}\n"


def client_net_env(spec: LabSpec, host: Host) -> str:
    return f"ADDRESS={host.ip}/{spec.prefix}\nDEV=eth0\nSUBNET={spec.subnet}\n"


def service_ip_env(spec: LabSpec) -> str:
    return f"SERVICE_IP={spec.service_ip}/{spec.prefix}\nDEV=eth0\n"
