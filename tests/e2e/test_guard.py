"""`simrs guard` against the real lab: it must never take a healthy hospital's SIMRS down.

The journal holds an older failover that ended on the standby (undone since: the lab was rebuilt,
or a failback was done by hand, as the tool itself advises); the hosts show the primary serving
alone. The guard looks, changes nothing and exits 0. During a failover it refuses."""

from __future__ import annotations

import json

from orchestrator import procedure
from orchestrator.journal import Journal
from tests.e2e.conftest import clients, simrs, status


def journal_a_failover(journal: Journal, incident: str, ts: float) -> None:
    """The events a `simrs failover` journals, up to an incident that ended on the standby."""
    journal.append(
        incident,
        "opened",
        {"reporter": "ops", "manual_failover": {"by": "ops", "reason": "test"}, "window_s": 60},
        ts=ts,
    )
    journal.append(incident, "approved", {"by": "ops"}, ts=ts + 1)
    for i, step in enumerate(procedure.FAILOVER_STEPS):
        journal.append(incident, "failover_step", {"step": step, "ok": True}, ts=ts + 2 + i)
    journal.append(incident, "resolved", {"reason": "running on the standby"}, ts=ts + 10)


def served_by() -> dict[str, str | None]:
    return {name: c.get("served_by") for name, c in clients(status()).items()}


def test_the_guard_leaves_a_healthy_hospital_alone_and_refuses_during_a_failover(home, lab):
    journal = Journal(home / "journal.sqlite")
    journal_a_failover(journal, "INC-20260101-001", 1_767_225_600.0)
    journal_a_failover(journal, "INC-20260102-001", 1_767_312_000.0)
    before = status()
    assert before["service_ip_owners"] == ["simrs-primary"]

    res = simrs("guard", "--json", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    guard = json.loads(res.stdout)
    assert guard["kept"] == "simrs-primary"
    assert guard["done"] == []
    assert guard["owners"] == ["simrs-primary"]
    assert guard["servers"]["simrs-primary"]["serving"]
    # The hosts themselves: the address where it was, every PC served by the primary.
    assert status()["service_ip_owners"] == ["simrs-primary"]
    assert set(served_by().values()) == {"simrs-primary"}

    # A failover in progress (approved, its steps running): the guard refuses, naming it.
    journal.append("INC-20260103-001", "opened", {"reporter": "ops", "manual_failover": {"by": "ops"}})
    journal.append("INC-20260103-001", "approved", {"by": "ops"})
    res = simrs("guard", timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "INC-20260103-001 is failing over" in res.stderr
    assert status()["service_ip_owners"] == ["simrs-primary"]
    assert not [e for e in journal.events("INC-20260103-001") if e.kind == "ip_guard"]
