"""Power and fencing through the lab's BMCs (orchestrator/lab/bmc.py), end to end.

The lab runs with the example inventory's power shape (`simrs lab up --power mixed`: the primary by
IPMI, the standby woken by Wake-on-LAN with its Redfish BMC for the state). The main server loses
power; its BMC first refuses the inventory's password, then does not answer at all: each time the
failover stops at the fence with "fence not confirmed" and the BMC's own reason, and the service IP
stays where it was. Once the BMC is fixed, `incident resume` finishes the failover: the standby is
woken by Wake-on-LAN and serves. No BMC password appears in anything the run wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.lab import lab as lab_mod
from tests.e2e.conftest import lab_up_options, simrs, simrs_json, status
from tests.e2e.test_failover import play

# Not yet run to the end on the merged tree (issue 12 is open): its one run found the gateway's
# hidden-failure bug, fixed since. Run it by hand with SIMRS_E2E_BMC=1 until it has passed; CI
# covers the BMC drivers in Molecule (power_bmc) meanwhile.
pytestmark = pytest.mark.skipif(
    os.environ.get("SIMRS_E2E_BMC") != "1", reason="issue 12: not yet passed end to end (SIMRS_E2E_BMC=1)"
)


def mixed_lab() -> None:
    assert simrs("lab", "down", timeout=300).returncode in (0, 2)
    res = simrs("lab", "up", "--power", "mixed", timeout=900)
    assert res.returncode == 0, res.stderr


@pytest.fixture
def bmc_lab(lab):
    """A lab switched by its BMCs (unless the session's lab already is); a fresh session lab after."""
    inventory = Path(status()["inventory"]) / "hosts.yml"
    already = "power_driver: ipmi" in inventory.read_text() and not lab_mod.current()[1]["faults"]
    if not already:
        mixed_lab()
    yield
    simrs("lab", "down", timeout=300)
    assert simrs("lab", "up", *lab_up_options(), timeout=900).returncode == 0


def blocked_at_fence(view: dict) -> str:
    blocked = view["failover"]["blocked"]
    assert blocked["step"] == "fence", blocked
    assert "fence not confirmed" in blocked["detail"], blocked
    assert "simrs-standby" not in status()["service_ip_owners"]
    return blocked["detail"]


def test_a_bmc_that_cannot_confirm_the_fence_stops_the_failover_until_it_is_fixed(home, bmc_lab):
    runs = home / "e2e-runs"
    play("backup", runs)
    secret = lab_mod.bmc_login()["password"]
    assert simrs("lab", "break", "primary-off").returncode == 0
    assert simrs("lab", "break", "bmc-password").returncode == 0

    rc, view, err = simrs_json(
        "incident", "open", "--reporter", "kasir-01", "--window", "10s", "--policy", "auto", "--no-prestage"
    )
    assert rc == 3, err  # stopped, waiting for a person
    assert "Incorrect password" in blocked_at_fence(view)
    assert "fence" not in view["failover"]["done"]

    # The BMC's network is down now: no answer at all.
    assert simrs("lab", "heal", "bmc-password").returncode == 0
    assert simrs("lab", "break", "bmc-silent").returncode == 0
    rc, view, err = simrs_json("incident", "resume")
    assert rc == 3, err
    detail = blocked_at_fence(view)
    assert "power status not read" in detail
    assert "simrs-standby" not in status()["service_ip_owners"]

    # Fixed: the fence reads the primary off through IPMI, Wake-on-LAN wakes the standby.
    assert simrs("lab", "heal", "bmc-silent").returncode == 0
    rc, view, err = simrs_json("incident", "resume", timeout=1200)
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert status()["service_ip_owners"] == ["simrs-standby"]
    journal = (home / "journal.sqlite").read_bytes()
    assert b"IPMI: the BMC at 127.0.1.11 reports the server not on" in journal
    assert b"Wake-on-LAN packet to 02:53:c6:12:00:0c" in journal

    # The BMC password is nowhere in what the run wrote: journal, runner artifacts, reports.
    leaks = [str(path) for path in home.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]
    assert leaks == []
    assert json.dumps(view).find(secret) == -1
