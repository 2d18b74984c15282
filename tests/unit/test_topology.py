from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from orchestrator.lab import images, lab, topology
from orchestrator.lab.topology import LabSpec

REPO = Path(__file__).resolve().parents[2]


def test_default_lab_has_the_sop_units_and_fixed_addresses():
    hosts = topology.hosts(LabSpec())
    assert [(h.name, h.role, h.ip, h.unit) for h in hosts] == [
        ("simrs-primary", "primary", "198.18.0.11", None),
        ("simrs-standby", "standby", "198.18.0.12", None),
        ("kasir-01", "client", "198.18.0.21", "kasir"),
        ("pendaftaran-01", "client", "198.18.0.22", "pendaftaran"),
        ("farmasi-01", "client", "198.18.0.23", "farmasi"),
    ]


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, ("kasir-01", "kasir")),
        (2, ("farmasi-01", "farmasi")),
        (7, ("ranap-01", "ranap")),
        (8, ("kasir-02", "kasir")),
        (21, ("radiologi-03", "radiologi")),
    ],
)
def test_client_names_cycle_through_hospital_units(index, expected):
    assert topology.client_name(index) == expected


@pytest.mark.parametrize("clients", [1, 3, 20, topology.MAX_CLIENTS])
def test_fixed_addresses_are_unique_in_subnet_and_outside_podmans_range(clients):
    spec = LabSpec(clients=clients)
    subnet = ipaddress.ip_network(spec.subnet)
    podman_range = ipaddress.ip_network(spec.ip_range)
    fixed = [h.ip for h in topology.hosts(spec)] + [spec.service_ip]
    assert len(set(fixed)) == len(fixed)
    for ip in map(ipaddress.ip_address, fixed):
        assert ip in subnet
        assert ip not in podman_range, f"{ip} could be handed out by podman's IPAM"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clients": 0}, "clients must be between 1"),
        ({"clients": topology.MAX_CLIENTS + 1}, "clients must be between 1"),
        ({"patients": 0}, "patients must be between 1"),
    ],
)
def test_spec_rejects_impossible_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LabSpec(**kwargs)


def test_committed_lab_inventory_is_what_the_lab_generates():
    committed = (REPO / "inventory/lab/hosts.yml").read_text()
    assert committed == topology.render_inventory(LabSpec())


def test_generated_inventory_groups_every_host_once():
    spec = LabSpec(clients=10)
    inv = yaml.safe_load(topology.render_inventory(spec))
    groups = inv["all"]["children"]
    assert list(groups["simrs_primary"]["hosts"]) == ["simrs-primary"]
    assert list(groups["simrs_standby"]["hosts"]) == ["simrs-standby"]
    clients = groups["simrs_clients"]["hosts"]
    assert len(clients) == 10
    assert all(v["simrs_unit"] for v in clients.values())
    assert inv["all"]["vars"]["ansible_connection"] == "simrs.downtime.podman"


def test_lab_secrets_in_inventory_match_what_the_lab_configures():
    secrets = yaml.safe_load((REPO / "inventory/lab/group_vars/all/secrets.yml").read_text())
    settings = yaml.safe_load((REPO / "inventory/lab/group_vars/all/simrs.yml").read_text())
    assert secrets["simrs_db_app_password"] == topology.LAB_DB_APP_PASSWORD
    assert secrets["simrs_app_login_user"] == topology.LAB_APP_LOGIN_USER
    assert secrets["simrs_app_login_password"] == topology.LAB_APP_LOGIN_PASSWORD
    assert settings["simrs_db_app_user"] == topology.LAB_DB_APP_USER
    spec = LabSpec()
    assert settings["simrs_service_ip"] == spec.service_ip
    assert settings["simrs_server_name"] == spec.server_name
    assert settings["backup_disk"]["label"] == spec.backup_disk_label
    assert settings["backup_disk"]["mount_point"] == spec.backup_mount


def test_client_files_point_the_simrs_name_at_the_service_ip():
    spec = LabSpec()
    kasir = topology.host_by_name(spec, "kasir-01")
    assert kasir is not None
    hosts_file = topology.client_hosts_file(spec, kasir)
    assert f"{spec.service_ip}\tsimrs-server" in hosts_file.splitlines()
    assert "server = simrs-server" in topology.client_conf(spec)
    assert topology.client_net_env(spec, kasir).startswith("ADDRESS=198.18.0.21/24\n")
    assert topology.service_ip_env(spec) == "SERVICE_IP=198.18.0.10/24\nDEV=eth0\n"


def test_lab_notification_channels_point_at_the_lab_receivers():
    settings = yaml.safe_load((REPO / "inventory/lab/group_vars/all/simrs.yml").read_text())
    channels = {c["type"]: c for c in settings["notify_channels"]}
    assert set(channels) == {"screen", "webhook", "email"}
    assert channels["webhook"]["url"].startswith(f"http://127.0.0.1:{lab.WEBHOOK_PORT}/")
    assert channels["email"]["host"] == "127.0.0.1"
    assert channels["email"]["port"] == lab.SMTP_PORT


def test_mac_addresses_are_fixed_unique_and_locally_administered():
    spec = topology.LabSpec(clients=90)
    macs = [topology.mac_address(h.ip) for h in topology.hosts(spec)]
    assert topology.mac_address("198.18.0.11") == "02:53:c6:12:00:0b"
    assert len(set(macs)) == len(macs)
    assert all(int(m[:2], 16) & 0b11 == 0b10 for m in macs)  # unicast, locally administered


def test_an_ssh_lab_is_reached_as_a_sudo_account_with_checked_host_keys():
    spec = LabSpec(connection="ssh")
    tree = yaml.safe_load(topology.render_inventory(spec, "/var/lib/lab/ssh"))
    settings = tree["all"]["vars"]
    assert settings["ansible_connection"] == "ssh"
    assert settings["ansible_user"] == topology.SSH_USER != "root"
    assert "ansible_become" not in settings  # the admin machine's own plays run without sudo
    assert {g: v["vars"]["ansible_become"] for g, v in tree["all"]["children"].items()} == dict.fromkeys(
        ("simrs_primary", "simrs_standby", "simrs_clients"), True
    )
    assert settings["ansible_ssh_private_key_file"] == "/var/lib/lab/ssh/id_ed25519"
    args = settings["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=/var/lib/lab/ssh/known_hosts" in args
    assert "StrictHostKeyChecking=yes" in args
    assert "StrictHostKeyChecking=no" not in args
    hosts = {h: v for g in tree["all"]["children"].values() for h, v in g["hosts"].items()}
    assert {h: v["ansible_host"] for h, v in hosts.items()} == {h.name: h.ip for h in topology.hosts(spec)}
    # Not the committed podman-exec inventory: an SSH lab writes its own.
    assert lab.inventory_path(spec) != lab.REPO_INVENTORY
    with pytest.raises(ValueError, match="key and known_hosts"):
        topology.render_inventory(spec)
    with pytest.raises(ValueError, match="connection must be one of podman, ssh"):
        LabSpec(connection="telnet")


def test_the_ssh_labs_sshd_takes_keys_only_for_the_one_account():
    config = topology.sshd_config()
    assert "PasswordAuthentication no" in config
    assert "PermitRootLogin no" in config
    assert f"AllowUsers {topology.SSH_USER}" in config
    assert "HostKey /etc/ssh/lab/ssh_host_ed25519_key" in config


def test_a_debian_11_lab_has_its_own_image_and_inventory():
    spec = LabSpec(os="bullseye")
    assert images.host_image_alias("bullseye") == "localhost/simrs-host:lab-bullseye"
    assert images.host_image_alias() == images.HOST_IMAGE_ALIAS  # Molecule and the benches use it
    assert images.os_recipe_hash("bullseye") != images.os_recipe_hash()
    # Not the committed inventory (that is the Debian 12 lab's), even in the default shape.
    assert lab.inventory_path(spec) != lab.REPO_INVENTORY
    with pytest.raises(ValueError, match="os must be one of bookworm, bullseye"):
        LabSpec(os="buster")


def test_a_large_lab_widens_its_network_and_keeps_every_address_unique():
    small, large = LabSpec(clients=topology.SMALL_LAB_CLIENTS), LabSpec(clients=200)
    assert small.subnet == topology.DEFAULT_SUBNET
    assert large.subnet == topology.WIDE_SUBNET
    ips = [h.ip for h in topology.hosts(large)]
    assert len(set(ips)) == len(ips) == 202
    # The first 90 PCs keep their addresses; the next ones start in the next /24.
    assert topology.hosts(large)[2 + 89].ip == "198.18.0.110"
    assert topology.hosts(large)[2 + 90].ip == "198.18.1.1"
    assert all(not ip.endswith((".0", ".255")) for ip in ips)
    # The spec read back from the lab's state keeps its network.
    assert LabSpec(clients=200, subnet=large.subnet).subnet == topology.WIDE_SUBNET
