"""`simrs drill` end to end in the lab: the real CLI, real Ansible, real containers, real ARP.

A backup is taken while the registration desk works, then the drill restores it onto the cold
standby on the test address (198.18.0.13) and switches the standby off again. What is checked is
the hospital itself, polled all through the drill: every PC's SIMRS client is served by the
primary, the primary is the only owner of the service IP, the desk's registrations keep working."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from orchestrator.journal import Journal
from tests.e2e.conftest import REPO, SIMRS, clients, simrs, status

DRILL_IP = "198.18.0.13"


@pytest.fixture
def workload(lab):
    simrs("lab", "heal", timeout=300)  # whatever an earlier test left broken (exit 2: nothing was)
    res = simrs("lab", "workload", "start", "--interval", "0.5")
    assert res.returncode == 0, res.stderr
    yield
    simrs("lab", "workload", "stop")


class Poller:
    """`simrs lab status --json` again and again while the drill runs, in a thread."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            data = status()
            self.seen.append(
                {
                    "t": time.time(),
                    "owners": data["service_ip_owners"],
                    "standby": next(h for h in data["hosts"] if h["name"] == "simrs-standby"),
                    "clients": {n: (c["reaches_simrs"], c["served_by"]) for n, c in clients(data).items()},
                }
            )

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=180)


def test_drill_restores_on_the_test_address_while_the_primary_serves_everyone(home, workload, tmp_path):
    backup = simrs("backup", "run", "--initialize-disk", "--json", timeout=900)
    assert backup.returncode == 0, backup.stderr
    backup_set = json.loads(backup.stdout)["set"]
    before = status()["workload"]
    report = tmp_path / "drill.md"

    with Poller() as poller:
        drill = subprocess.run(
            [SIMRS, "drill", "--json", "--lang", "en", "-o", str(report)],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            cwd=REPO,
        )
    assert drill.returncode == 0, drill.stderr
    facts = json.loads(drill.stdout)

    # Restored and verified on the test address, then switched off.
    assert facts["ok"], facts["detail"]
    assert facts["restore"]["set"] == backup_set
    assert facts["restore"]["row_counts_ok"]
    assert facts["verify"]["address"] == DRILL_IP
    assert facts["verify"]["served_by"] == "simrs-standby"
    assert facts["primary_check"]["served_by"] == "simrs-primary"
    assert facts["rto_seconds"] > 0
    assert facts["rpo_seconds"] is not None
    assert set(facts["phases"]) == {"power_on", "restore", "start", "address", "verify", "power_off"}
    assert facts["powered_off"]
    assert "PASSED" in report.read_text()

    # Journaled as a drill, never as an incident.
    journal = Journal(home / "journal.sqlite")
    assert journal.drills() == [facts["id"]]
    assert journal.incidents() == []
    assert [e.kind for e in journal.events(facts["id"])] == ["drill_started", "drill_finished"]

    # The hospital throughout: only the primary owns the service IP and serves every PC.
    assert len(poller.seen) >= 3, "the drill ended before the hospital could be watched"
    assert any(p["standby"]["state"] == "running" for p in poller.seen), "never saw the standby on"
    for seen in poller.seen:
        assert seen["owners"] == ["simrs-primary"], seen
        assert all(c == (True, "simrs-primary") for c in seen["clients"].values()), seen

    after = status()
    assert next(h for h in after["hosts"] if h["name"] == "simrs-standby")["state"] == "off"
    assert after["service_ip_owners"] == ["simrs-primary"]
    # The registration desk kept registering: no failed attempt during the drill.
    assert after["workload"]["committed"] > before["committed"]
    assert after["workload"]["errors"] == before["errors"]


def test_drill_is_refused_while_an_incident_is_open(home, lab):
    journal = Journal(Path(home) / "journal.sqlite")
    journal.append("INC-20261126-001", "opened", {"reporter": "kasir-01", "window_s": 3600})
    res = simrs("drill", timeout=300)
    assert res.returncode == 2, res.stderr
    assert "incident INC-20261126-001 is open" in res.stderr
    assert journal.drills() == []
    assert next(h for h in status()["hosts"] if h["name"] == "simrs-standby")["state"] == "off"
