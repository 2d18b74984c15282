"""Ctrl-C in the real lab: at any moment the command stops within 10 s, exit 130, the journal says
where, and `incident resume` finishes verified (the repair window with pre-staging running; the
failover's restore). The SIGKILL case (a run that outlives its orchestrator) is in test_failover."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from orchestrator.journal import Journal
from tests.e2e.conftest import REPO, SIMRS, clients, simrs, simrs_json, status
from tests.e2e.test_failover import assert_no_half_restore, fresh, play  # noqa: F401  (the fixture)


def served_by() -> dict[str, str | None]:
    return {name: c.get("served_by") for name, c in clients(status()).items()}


def start(home, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [SIMRS, *args],
        cwd=REPO,
        env={**os.environ, "SIMRS_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(journal_path, predicate, limit: float = 600) -> str:
    """The incident id once an event matches (polled every 0.2 s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if journal_path.exists():
            journal = Journal(journal_path)
            for incident in journal.incidents():
                if any(predicate(e) for e in journal.events(incident)):
                    return incident
        time.sleep(0.2)
    raise AssertionError("the awaited step never started")


def ctrl_c(proc: subprocess.Popen) -> tuple[int, float, str]:
    """SIGINT as a terminal's Ctrl-C; (exit code, seconds to exit, stderr)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, time.monotonic() - sent, err


def test_ctrl_c_in_the_repair_window_with_prestaging_then_resume_repairs(home, fresh):  # noqa: F811
    play("backup", home / "e2e-runs")
    assert simrs("lab", "break", "primary-off").returncode == 0
    proc = start(home, "incident", "open", "--reporter", "kasir-01", "--window", "5m", "--policy", "auto")
    journal_path = home / "journal.sqlite"
    incident = wait_for(journal_path, lambda e: e.kind == "prestage_started")
    time.sleep(3)  # pre-staging and the repair attempts are both under way
    rc, took, err = ctrl_c(proc)
    assert rc == 130, err
    assert took < 10, f"{took:.1f} s"
    assert f"simrs incident resume {incident}" in err
    stop = [e for e in Journal(journal_path).events(incident) if e.kind == "interrupted"]
    assert stop, "the journal does not say where it stopped"
    assert stop[-1].data["phase"] == "SERVER_REPAIR"
    assert stop[-1].data["signal"] == "Ctrl-C"

    assert simrs("lab", "heal", "primary-off").returncode == 0
    rc, view, err = simrs_json("incident", "resume", incident, timeout=1200)
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert status()["service_ip_owners"] == ["simrs-primary"]
    assert set(served_by().values()) == {"simrs-primary"}


def test_ctrl_c_during_the_failover_restore_then_resume_ends_on_the_standby(home, fresh):  # noqa: F811
    play("backup", home / "e2e-runs")
    assert simrs("lab", "break", "primary-off").returncode == 0
    proc = start(home, "failover", "--reason", "e2e: Ctrl-C during the restore", "--yes")
    journal_path = home / "journal.sqlite"
    incident = wait_for(
        journal_path,
        lambda e: e.kind == "action_started" and e.data.get("event") == "restore",
    )
    time.sleep(1.5)  # inside the restore
    rc, took, err = ctrl_c(proc)
    assert rc == 130, err
    assert took < 10, f"{took:.1f} s"
    stop = [e for e in Journal(journal_path).events(incident) if e.kind == "interrupted"][-1]
    assert stop.data["step"] == "failover_step"
    assert "restore" in stop.data["where"]
    assert status()["service_ip_owners"] in ([], ["simrs-primary"])  # never moved by a half step

    rc, view, err = simrs_json("incident", "resume", incident, timeout=1200)
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert_no_half_restore()
    assert status()["service_ip_owners"] == ["simrs-standby"]
    assert set(served_by().values()) == {"simrs-standby"}
