"""Power and fencing through the lab's BMCs (orchestrator/lab/bmc.py), end to end, in one failover.

The lab runs with the example inventory's power shape (`simrs lab up --power mixed`, the lab's
default): the primary by IPMI, the standby woken by Wake-on-LAN with its Redfish BMC for the state.
A person has decided to move the SIMRS to the standby (`simrs failover`): the primary still answers,
so the fence releases its service IP and must then switch it off through its BMC and read it back
off. Its BMC first accepts the power-off and keeps saying "on", then refuses the inventory's
password, then does not answer at all: each time the failover stops at the fence with "fence not
confirmed" and the BMC's own reason (exit 3: waiting for a person), the standby stays off and the
service IP is not moved. Once the BMC is fixed, `incident resume` finishes the failover: the fence
switches the primary off through IPMI and reads it off, Wake-on-LAN wakes the standby, it serves.
No BMC password appears in anything the run wrote.

Cost: 238 s in its first passing run (session 8, load average ~10, 5 helpers on 2 cores): the test
205 s (one backup, three stops at the fence, each bounded by power_bmc_timeout_seconds, and one
failover to the end), a `lab up --power mixed` before it when the session's lab is podman-switched
(15 s here with the images cached), and one fresh `lab up` after it for the tests that follow (16 s),
as tests/e2e/test_failover.py does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator.journal import Journal
from orchestrator.lab import lab as lab_mod
from tests.e2e.conftest import lab_up_options, simrs, simrs_json, status
from tests.e2e.test_failover import files_the_run_wrote, play, served_by

PRIMARY_BMC = "127.0.1.11"
STANDBY_BMC = "127.0.1.12"
STANDBY_MAC = "02:53:c6:12:00:0c"


def mixed_lab() -> None:
    assert simrs("lab", "down", timeout=300).returncode in (0, 2)
    res = simrs("lab", "up", "--power", "mixed", timeout=900)
    assert res.returncode == 0, res.stderr


@pytest.fixture
def bmc_lab(lab):
    """A lab switched by its BMCs (the session's lab when it already is); a fresh session lab after."""
    inventory = Path(status()["inventory"]) / "hosts.yml"
    text = inventory.read_text()
    already = "power_driver: ipmi" in text and "power_wol_bmc: redfish" in text
    if not already or lab_mod.current()[1]["faults"]:
        mixed_lab()
    yield
    simrs("lab", "down", timeout=300)
    assert simrs("lab", "up", *lab_up_options(), timeout=900).returncode == 0


def blocked_at_fence(view: dict) -> str:
    """The failover stopped at the fence, nothing after it done, the standby off, the IP unmoved."""
    assert view.get("phase") == "FAILOVER", view
    blocked = view["failover"]["blocked"]
    assert blocked, view["failover"]
    assert blocked["step"] == "fence", blocked
    assert "fence not confirmed: " in blocked["detail"], blocked
    assert view["failover"]["done"] == [], view["failover"]
    assert lab_mod.container_state("simrs-standby") != "running"  # no Wake-on-LAN sent
    assert "simrs-standby" not in status()["service_ip_owners"]
    return blocked["detail"]


def test_a_bmc_that_cannot_confirm_the_fence_stops_the_failover_until_it_is_fixed(home, bmc_lab):
    began = time.time()
    runs = home / "e2e-runs"
    play("backup", runs)
    secret = lab_mod.bmc_login()["password"]
    assert len(secret) >= 16

    # 1. The BMC accepts the power-off and does nothing: it still says "on".
    assert simrs("lab", "break", "bmc-liar").returncode == 0
    rc, view, err = simrs_json("failover", "--yes", "--reason", "e2e: fence through the BMC", timeout=900)
    assert rc == 3, err
    detail = blocked_at_fence(view)
    assert f"power off not confirmed: the IPMI BMC at {PRIMARY_BMC}" in detail, detail
    assert lab_mod.container_state("simrs-primary") == "running"  # the lie: it was never switched off
    assert status()["service_ip_owners"] == []  # the fence took the service IP off it first

    # 2. The BMC's password was changed: the inventory's is refused.
    assert simrs("lab", "heal", "bmc-liar").returncode == 0
    assert simrs("lab", "break", "bmc-password").returncode == 0
    rc, view, err = simrs_json("incident", "resume", timeout=900)
    assert rc == 3, err
    detail = blocked_at_fence(view)
    assert f"power status not read: the IPMI BMC at {PRIMARY_BMC} answered:" in detail, detail
    assert "password" in detail.lower(), detail

    # 3. The BMC does not answer at all.
    assert simrs("lab", "heal", "bmc-password").returncode == 0
    assert simrs("lab", "break", "bmc-silent").returncode == 0
    rc, view, err = simrs_json("incident", "resume", timeout=900)
    assert rc == 3, err
    detail = blocked_at_fence(view)
    assert f"power status not read: the IPMI BMC at {PRIMARY_BMC} answered:" in detail, detail
    assert lab_mod.container_state("simrs-primary") == "running"

    # Fixed: the fence switches the primary off through IPMI and reads it off; Wake-on-LAN wakes the
    # standby (its Redfish BMC reads it off before), and the failover finishes.
    assert simrs("lab", "heal", "bmc-silent").returncode == 0
    rc, view, err = simrs_json("incident", "resume", timeout=1200)
    assert rc == 0, err
    assert view["phase"] in ("RESOLVED", "RUNNING_ON_STANDBY"), view
    assert view["failover"]["blocked"] is None
    assert lab_mod.container_state("simrs-primary") != "running"
    assert status()["service_ip_owners"] == ["simrs-standby"]
    assert set(served_by().values()) == {"simrs-standby"}

    # The journal holds the BMCs' answers.
    events = Journal(home / "journal.sqlite").events(view["id"])
    journaled = json.dumps([e.data for e in events])
    for answer in (
        f"IPMI: the BMC at {PRIMARY_BMC} reports the server on",
        f"switched with IPMI power off at {PRIMARY_BMC}, now off",
        f"Redfish: the BMC at {STANDBY_BMC} reports PowerState Off",
        f"a Wake-on-LAN packet to {STANDBY_MAC} via 127.255.255.255",
        f"power status not read: the IPMI BMC at {PRIMARY_BMC}",
        f"power off not confirmed: the IPMI BMC at {PRIMARY_BMC}",
    ):
        assert answer in journaled, answer
    # The BMCs' own log saw the requests (the drivers reached them over the network).
    bmc_log = (lab_mod.bmc_dir() / "bmc.log").read_text()
    assert "ipmi simrs-primary: chassis control off" in bmc_log
    assert "wol: magic packet for simrs-standby" in bmc_log

    # The BMC password is nowhere the run wrote: journal, runner artifacts, reports, the BMCs' log.
    for lang, fmt in (("id", "md"), ("en", "html")):
        out = str(home / f"report.{lang}.{fmt}")
        res = simrs("report", view["id"], "--lang", lang, "--format", fmt, "-o", out)
        assert res.returncode == 0, res.stderr
    files = files_the_run_wrote(home, began)
    assert any(p.name == "journal.sqlite" for p in files)
    assert any("artifacts" in p.parts for p in files), "no runner artifacts"
    assert lab_mod.bmc_dir() / "bmc.log" in files
    leaks = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaks == []
    assert secret not in json.dumps(view)
