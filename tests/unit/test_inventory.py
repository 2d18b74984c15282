"""The inventory validated as a whole before anything runs (orchestrator/inventory.py): every
typo named with its variable, exit 2, no playbook run and no incident journaled. The shipped
inventories (lab, example) are read by the real ansible-inventory and must pass."""

from __future__ import annotations

import copy

import pytest
from click.testing import CliRunner

from orchestrator import cli
from orchestrator.ansible import AnsibleGateway
from orchestrator.cli import base
from orchestrator.cli.base import exit_code
from orchestrator.inventory import BadInventoryError, Hospital, load
from orchestrator.journal import Journal
from orchestrator.settings import REPO
from tests.unit.test_engine import INVENTORY, FakeGateway


def broken(**changes) -> dict:
    """The fake gateway's valid inventory with these variables changed on both servers."""
    inv = copy.deepcopy(INVENTORY)
    for host in ("simrs-primary", "simrs-standby"):
        inv["_meta"]["hostvars"][host].update(changes)
    return inv


@pytest.mark.parametrize("name", ["lab", "example"])
def test_the_shipped_inventories_pass_as_ansible_reads_them(name, tmp_path):
    raw = AnsibleGateway(REPO / "inventory" / name, tmp_path).inventory()
    site = load(raw)
    assert site.hospital.primary
    assert site.hospital.clients


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        (
            {"simrs_service_ip": "198.18.0.300"},
            "simrs_service_ip (simrs-primary): '198.18.0.300' is not an IPv4",
        ),
        ({"simrs_service_ip": ""}, "simrs_service_ip (simrs-primary): is not set"),
        ({"simrs_service_ip": "198.18.0.11"}, "is simrs-primary's own address"),
        ({"simrs_service_ip": "198.18.0.255"}, "network or broadcast address"),
        ({"simrs_service_prefix": 33}, "simrs_service_prefix (simrs-primary): must be a whole number"),
        (
            {"simrs_repair_window_minutes": -5},
            "simrs_repair_window_minutes: must be a whole number of minutes",
        ),
        ({"simrs_repair_window_minutes": "sixty"}, "simrs_repair_window_minutes"),
        ({"simrs_failover_policy": "yolo"}, "simrs_failover_policy: must be one of approve, auto"),
        ({"simrs_drill_ip": "198.18.0.10"}, "simrs_drill_ip (simrs-primary): 198.18.0.10 is already used"),
        ({"power_driver": "ipmy"}, "power_driver (simrs-primary): must be one of podman, wol, ipmi"),
        ({"power_driver": "wol"}, "power_wol_mac (simrs-primary): is not set"),
        ({"power_driver": "wol", "power_wol_mac": "zz", "power_wol_broadcast": "x"}, "'zz' is not a MAC"),
        ({"power_driver": "ipmi", "power_ipmi_host": "10.0.0.1"}, "power_ipmi_password (simrs-primary)"),
        ({"power_driver": "redfish"}, "power_redfish_baseuri (simrs-primary): is not set"),
        (
            {
                "power_driver": "wol",
                "power_wol_mac": "02:53:c6:12:00:0b",
                "power_wol_broadcast": "198.18.0.255",
                "power_wol_bmc": "ilo",
            },
            "power_wol_bmc (simrs-primary): must be one of ipmi, redfish",
        ),
        (
            {
                "power_driver": "wol",
                "power_wol_mac": "02:53:c6:12:00:0b",
                "power_wol_broadcast": "198.18.0.255",
                "power_wol_bmc": "redfish",
            },
            "power_redfish_baseuri (simrs-primary): is not set",
        ),
        ({"simrs_db_port": 0}, "simrs_db_port (simrs-primary)"),
        ({"notify_lang": "jv"}, "notify_lang: must be one of id, en"),
        ({"simrs_triage_per_unit": 0}, "simrs_triage_per_unit: must be a whole number of PCs from 1"),
        ({"notify_channels": [{"type": "sms"}]}, "notify_channels[0].type: must be one of screen"),
        ({"notify_channels": [{"type": "webhook", "url": "wa-gateway"}]}, "notify_channels[0].url"),
        ({"backup_disk": {"label": "X", "mount_point": "media"}}, "backup_disk.mount_point"),
        ({"simrs_maintenance": {"quiet_hours": ["25:00-26:00"]}}, "simrs_maintenance:"),
    ],
)
def test_each_typo_is_named_with_its_variable(changes, named):
    with pytest.raises(BadInventoryError) as caught:
        load(broken(**changes))
    assert named in str(caught.value)
    assert exit_code(caught.value) == 2


def test_every_problem_is_named_at_once_and_templates_are_left_to_ansible():
    with pytest.raises(BadInventoryError) as caught:
        load(broken(simrs_service_ip="10.0.0.300", simrs_repair_window_minutes=-5, notify_lang="xx"))
    assert len(caught.value.problems) == 4  # the service IP on both servers, the window, the language
    assert "nothing was changed on any host" in str(caught.value)
    load(
        broken(
            power_driver="ipmi",
            power_ipmi_host="{{ bmc }}",
            power_ipmi_user="u",
            power_ipmi_password="{{ v }}",  # noqa: S106  (a vault reference, not a secret)
        )
    )


def test_groups_are_checked():
    inv = copy.deepcopy(INVENTORY)
    inv["simrs_clients"] = {"hosts": ["simrs-primary"]}
    inv["simrs_standby"] = {"hosts": ["simrs-standby", "kasir-01"]}
    with pytest.raises(BadInventoryError) as caught:
        Hospital.from_inventory(inv)
    text = str(caught.value)
    assert "simrs_standby: must hold at most one host" in text
    assert "groups (simrs-primary): is in more than one of" in text


@pytest.fixture
def bad(tmp_path, monkeypatch):
    """Every command against an inventory with a typo in the service IP; any playbook run fails."""
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    monkeypatch.delenv("SIMRS_JOURNAL", raising=False)
    gateway = FakeGateway({})
    monkeypatch.setattr(gateway, "inventory", lambda: broken(simrs_service_ip="198.18.0.300"))
    monkeypatch.setattr(base, "make_gateway", lambda ctx: gateway)
    return gateway


@pytest.mark.parametrize(
    "args",
    [
        ["incident", "open", "--reporter", "kasir-01"],
        ["failover", "--dry-run"],
        ["failover", "--reason", "dead", "--yes"],
        ["guard"],
        ["backup", "run"],
        ["backup", "list"],
        ["drill"],
        ["maintain", "check"],
        ["maintain", "restart", "--now"],
    ],
)
def test_every_command_refuses_a_bad_inventory_before_anything_runs(bad, tmp_path, args):
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 2, res.output
    assert "simrs_service_ip (simrs-primary): '198.18.0.300' is not an IPv4 address" in res.output
    assert bad.calls == []  # no playbook ran
    journal = tmp_path / "simrs" / "journal.sqlite"
    assert not journal.exists() or Journal(journal).incidents() == []


@pytest.mark.parametrize(
    ("clients", "connection", "power"),
    [(3, "podman", "mixed"), (20, "podman", "podman"), (3, "ssh", "mixed")],
)
def test_the_lab_inventory_lab_up_writes_passes(clients, connection, power, tmp_path):
    """`simrs lab up --clients N` writes its own inventory (hosts.yml beside the lab's group_vars,
    and with BMC power the BMC password in host_vars): it must pass the same check, read by the
    real ansible-inventory."""
    import shutil  # noqa: PLC0415

    from orchestrator.lab import lab, topology  # noqa: PLC0415
    from orchestrator.lab.lab import LabSpec  # noqa: PLC0415

    target = tmp_path / "inventory"
    shutil.copytree(REPO / "inventory" / "lab" / "group_vars", target / "group_vars")
    spec = LabSpec(clients=clients, connection=connection, power=power)
    hosts = topology.render_inventory(spec, str(tmp_path / "ssh"), ca_path=str(tmp_path / "ca.pem"))
    (target / "hosts.yml").write_text(hosts)
    if power != "podman":
        lab.write_bmc_host_vars(target, spec, "lab-bmc-secret")
    site = load(AnsibleGateway(target, tmp_path / "runs").inventory())
    assert len(site.hospital.clients) == clients
    if connection == "ssh":
        pc = site.hostvars["kasir-01"]
        how = [pc[k] for k in ("ansible_connection", "ansible_user", "ansible_become")]
        assert how == ["ssh", "simrs-ops", True]
