"""The lab BMCs' pure parts: magic packets, the Redfish tree and Reset mapping, the login check,
and the inventory lines of each power mode."""

from __future__ import annotations

import base64

import pytest

from orchestrator.lab import bmc, topology


def magic(mac: str) -> bytes:
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16


def test_magic_packet_names_the_mac():
    assert bmc.parse_magic_packet(magic("02:53:C6:12:00:0C")) == "02:53:c6:12:00:0c"
    # A SecureOn password (6 bytes) may follow.
    assert bmc.parse_magic_packet(magic("02:53:c6:12:00:0c") + b"secret") == "02:53:c6:12:00:0c"
    # community.general.wakeonlan repeats the MAC 20 times; some senders pad in front.
    twenty = b"\xff" * 6 + bytes.fromhex("0253c612000c") * 20
    assert bmc.parse_magic_packet(twenty) == "02:53:c6:12:00:0c"
    assert bmc.parse_magic_packet(b"\x00" * 8 + magic("02:53:c6:12:00:0c")) == "02:53:c6:12:00:0c"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff" * 102,  # the header, then a MAC of ff... is fine only if repeated: this one is
        b"\x00" * 6 + bytes.fromhex("0253c612000c") * 16,
        b"\xff" * 6 + bytes.fromhex("0253c612000c") * 15,
        b"\xff" * 6 + bytes.fromhex("0253c612000c") * 15 + bytes.fromhex("0253c612000d"),
    ],
)
def test_not_a_magic_packet(data):
    if data == b"\xff" * 102:
        assert bmc.parse_magic_packet(data) == "ff:ff:ff:ff:ff:ff"
    else:
        assert bmc.parse_magic_packet(data) is None


def auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth():
    assert bmc.basic_auth_ok(auth("simrs-power", "s3cret"), "simrs-power", "s3cret")
    assert not bmc.basic_auth_ok(auth("simrs-power", "wrong"), "simrs-power", "s3cret")
    assert not bmc.basic_auth_ok(auth("admin", "s3cret"), "simrs-power", "s3cret")
    assert not bmc.basic_auth_ok(None, "simrs-power", "s3cret")
    assert not bmc.basic_auth_ok("Basic !!notbase64", "simrs-power", "s3cret")
    assert not bmc.basic_auth_ok("Bearer x", "simrs-power", "s3cret")


def test_redfish_tree():
    status, root = bmc.redfish_get("/redfish/v1/", "simrs-primary", "running")
    assert status == 200
    assert root["Systems"]["@odata.id"] == "/redfish/v1/Systems"
    status, members = bmc.redfish_get("/redfish/v1/Systems", "simrs-primary", "running")
    assert [m["@odata.id"] for m in members["Members"]] == ["/redfish/v1/Systems/1"]
    status, system = bmc.redfish_get("/redfish/v1/Systems/1", "simrs-primary", "running")
    assert system["PowerState"] == "On"
    assert system["Actions"]["#ComputerSystem.Reset"]["target"].endswith("/Actions/ComputerSystem.Reset")
    assert bmc.redfish_get("/redfish/v1/Systems/1", "x", "exited")[1]["PowerState"] == "Off"
    assert bmc.redfish_get("/redfish/v1/Systems/1", "x", "starting")[1]["PowerState"] == "PoweringOn"
    assert bmc.redfish_get("/redfish/v1/Managers", "x", "running")[0] == 404


@pytest.mark.parametrize(
    ("reset", "action"),
    [("On", "on"), ("ForceOff", "off"), ("GracefulShutdown", "soft"), ("ForceRestart", "cycle")],
)
def test_reset_mapping(reset, action):
    target = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
    assert bmc.reset_action(target, {"ResetType": reset})[:2] == (204, action)


def test_reset_refuses_unknown():
    target = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
    assert bmc.reset_action(target, {"ResetType": "Nmi"})[:2] == (400, None)
    assert bmc.reset_action(target, {})[:2] == (400, None)
    assert (
        bmc.reset_action("/redfish/v1/Systems/2/Actions/ComputerSystem.Reset", {"ResetType": "On"})[0] == 404
    )


def test_login_is_random():
    one, two = bmc.new_login(), bmc.new_login()
    assert one["user"] == two["user"] == topology.BMC_USER
    assert one["password"] != two["password"]
    assert len(one["password"]) >= 20


def test_bmc_addresses_are_loopback():
    assert topology.bmc_address("198.18.0.11") == "127.0.1.11"


def test_inventory_by_power_mode():
    assert topology.render_inventory(topology.LabSpec()) == (
        topology.render_inventory(topology.LabSpec(power="podman"))
    )
    mixed = topology.render_inventory(topology.LabSpec(power="mixed"), ca_path="/state/bmc/ca.pem")
    assert "power_driver: ipmi" in mixed
    assert "power_ipmi_host: 127.0.1.11" in mixed
    assert "power_driver: wol" in mixed
    assert "power_wol_bmc: redfish" in mixed
    assert 'power_wol_mac: "02:53:c6:12:00:0c"' in mixed
    assert "power_redfish_ca_path: /state/bmc/ca.pem" in mixed
    assert "password" not in mixed  # the BMC password lives in host_vars (0600)
    with pytest.raises(ValueError, match="power must be one of"):
        topology.LabSpec(power="ilo")
