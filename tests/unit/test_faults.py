from __future__ import annotations

import pytest

from orchestrator.lab import faults
from orchestrator.lab.podman import LabError
from orchestrator.lab.topology import LabSpec


@pytest.mark.parametrize(
    ("fault", "host", "message"),
    [
        ("meteor", None, "unknown fault 'meteor'; choose one of: primary-off"),
        ("client-net", None, "client-net needs a client PC, one of: kasir-01, pendaftaran-01"),
        ("client-net", "simrs-primary", "'simrs-primary' is not a client PC of the lab"),
        ("client-net", "kasir-99", "'kasir-99' is not a client PC"),
        ("primary-off", "kasir-01", "fault primary-off takes no host"),
    ],
)
def test_bad_fault_requests_are_usage_errors(fault, host, message):
    with pytest.raises(LabError, match=message) as info:
        faults.validate(fault, host, LabSpec())
    assert info.value.exit_code == 2


@pytest.mark.parametrize("fault", ["primary-off", "db-crash", "disk-full", "backup-corrupt"])
def test_server_faults_need_no_host(fault):
    faults.validate(fault, None, LabSpec())


def test_client_net_accepts_any_lab_client():
    faults.validate("client-net", "farmasi-01", LabSpec())
    faults.validate("client-net", "kasir-02", LabSpec(clients=12))


def test_fault_keys_name_the_host():
    assert faults.fault_key("client-net", "kasir-01") == "client-net:kasir-01"
    assert faults.fault_key("db-crash", None) == "db-crash"
