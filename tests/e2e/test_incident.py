"""SOP steps 1-4a and 4c end to end: the real CLI, real Ansible, the lab's real faults.

Each test opens an incident against a broken lab and checks the outcome in the hospital
itself (a client reaching the SIMRS, rows still there, files on disk, notices received),
not only the exit code. Each test has its own journal (SIMRS_HOME)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.journal import Journal
from orchestrator.lab import lab as lab_mod
from tests.e2e.conftest import REPO, SIMRS, clients, simrs, simrs_json, status


@pytest.fixture
def healed(lab):
    """Whatever a test broke is healed afterwards, so the next test starts from a healthy lab."""
    yield
    simrs("lab", "heal", timeout=300)
    subprocess.run(["podman", "start", "farmasi-01"], capture_output=True, check=False)


def open_incident(*args: str, timeout: float = 900) -> tuple[int, dict, str]:
    return simrs_json("incident", "open", "--reporter", "kasir-01", *args, timeout=timeout)


def events(home: Path, incident: str) -> list:
    return Journal(home / "journal.sqlite").events(incident)


def inbox(kind: str) -> list[dict]:
    """What the lab's webhook receiver ("webhook") or mail server ("email") received."""
    return lab_mod.inbox()[kind]


def sql(query: str) -> str:
    return subprocess.run(
        ["podman", "exec", "simrs-primary", "mariadb", "-N", "-e", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def test_one_pc_broken_is_repaired_and_the_others_untouched(home, healed):
    assert simrs("lab", "break", "client-net", "kasir-01", "--mode", "dns").returncode == 0
    rc, view, err = open_incident()
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert view["verdict"] == "CLIENT_LOCAL"
    assert view["failing"] == ["kasir-01"]
    evs = events(home, view["id"])
    repair_runs = [
        e.data["hosts"] for e in evs if e.kind == "action_started" and e.data["action"] == "client_repair"
    ]
    assert repair_runs == [["kasir-01"]]  # only that PC was touched
    reach = clients(status())
    assert all(c["reaches_simrs"] for c in reach.values())
    assert simrs("lab", "heal").returncode in (0, 2)


def test_db_crash_paper_mode_then_repaired_verified_and_restored(home, healed):
    http_before, smtp_before = len(inbox("webhook")), len(inbox("email"))
    assert simrs("lab", "break", "db-crash").returncode == 0
    rc, view, err = open_incident("--window", "5m")
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert view["verdict"] == "SERVER"
    assert view["server"] == "SERVICE_DOWN"
    assert view["notices"] == ["outage_paper_mode", "restored"]
    evs = events(home, view["id"])
    notices = [e.data for e in evs if e.kind == "notice"]
    paper = notices[0]["channels"]
    for pc in ("kasir-01", "pendaftaran-01", "farmasi-01"):
        assert paper[f"screen:{pc}"]["ok"], paper
    # Reported delivered as they were (the record of delivered notices lives beside the journal,
    # whatever HOME is: CI runs with a HOME that is not the account's own).
    for notice in notices:
        assert notice["channels"]["webhook"]["ok"], notice
        assert notice["channels"]["email"]["ok"], notice
    assert list((home / "notify").glob("webhook-*")), "no record of the delivered webhook notices"
    # The real receivers got both notices, in order, in Bahasa Indonesia by default.
    posts = inbox("webhook")[http_before:]
    assert [p["json"]["event"] for p in posts] == ["outage_paper_mode", "restored"]
    assert "manual" in posts[0]["json"]["text"].lower() or "kertas" in posts[0]["json"]["text"].lower()
    mails = inbox("email")[smtp_before:]
    assert len(mails) == 2
    # The repair restarted the database; the clients reach the SIMRS again.
    attempts = [e.data for e in evs if e.kind == "repair_attempt"]
    assert attempts[-1]["healthy"] is True
    assert sql("SELECT COUNT(*) FROM sik.pasien") == "500"
    assert all(c["reaches_simrs"] for c in clients(status()).values())
    screen = subprocess.run(
        ["podman", "exec", "kasir-01", "cat", "/var/lib/simrs/notice.txt"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert view["id"] in screen


def datadir_files() -> set[str]:
    out = subprocess.run(
        ["podman", "exec", "simrs-primary", "find", "/data/mysql", "-type", "f"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_disk_full_is_repaired_by_freeing_safe_space_only(home, healed):
    datadir_before = datadir_files()
    visits_before = sql("SELECT COUNT(*) FROM sik.reg_periksa")
    assert simrs("lab", "break", "disk-full").returncode == 0
    rc, view, err = open_incident("--window", "5m")
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert "disk_full" in view["problems"]
    datadir_after = datadir_files()
    assert datadir_before <= datadir_after  # no database file was removed
    assert sql("SELECT COUNT(*) FROM sik.reg_periksa") == visits_before
    leftovers = subprocess.run(
        ["podman", "exec", "simrs-primary", "ls", "/data/log/simrs", "/data/tmp"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "simrs-web.log.1" not in leftovers
    assert "simrs-export.tmp" not in leftovers
    freed = [e.data.get("bytes_freed", 0) for e in events(home, view["id"]) if e.kind == "repair_attempt"]
    assert max(freed) > 100 * 1024 * 1024


def test_primary_off_runs_out_the_window_and_resume_keeps_the_deadline(home, healed):
    assert simrs("lab", "break", "primary-off").returncode == 0
    env = {**os.environ, "SIMRS_HOME": str(home)}
    proc = subprocess.Popen(
        [SIMRS, "incident", "open", "--reporter", "kasir-01", "--window", "90s", "--no-prestage"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = Journal(home / "journal.sqlite")
    deadline = time.monotonic() + 300
    incident = None
    while time.monotonic() < deadline:
        ids = journal.incidents() if (home / "journal.sqlite").exists() else []
        if ids and any(e.kind == "repair_attempt" for e in journal.events(ids[0])):
            incident = ids[0]
            break
        time.sleep(0.5)
    assert incident, "no repair attempt was journaled"
    os.kill(proc.pid, signal.SIGKILL)  # the orchestrator dies mid-repair
    proc.wait()
    before = json.loads(simrs("incident", "status", "--json").stdout)
    assert before["phase"] == "SERVER_REPAIR"
    assert before["server"] == "HOST_DOWN"

    # While it is down another operator cannot open a second incident.
    second = simrs("incident", "open", "--reporter", "farmasi-01")
    assert second.returncode == 2
    assert f"incident {incident}" in second.stderr

    res = simrs("incident", "resume", "--json", timeout=600)
    assert res.returncode == 3, res.stderr  # waiting for an operator: approve the failover
    after = json.loads(res.stdout)
    assert after["phase"] == "FAILOVER_PENDING"
    assert after["deadline"] == before["deadline"]  # the original deadline, not a new hour
    last_event = journal.events(incident)[-1]
    assert last_event.kind == "pending_failover"
    assert last_event.ts >= before["deadline"]
    assert "not repaired within 90 s" in after["reason"]
    assert simrs("incident", "close", incident, "--cause", "e2e: power cut").returncode == 0


def test_bad_input_is_refused_clearly(home, healed, tmp_path):
    res = simrs("incident", "open", "--reporter", "kasir-99")
    assert res.returncode == 2
    assert "'kasir-99' is not a client PC in the inventory" in res.stderr
    res = simrs("incident", "open", "--reporter", "kasir-01", "--window", "soon")
    assert res.returncode == 2
    assert "cannot read the duration 'soon'" in res.stderr
    res = simrs("-i", str(tmp_path / "nowhere"), "incident", "status")
    assert res.returncode == 2
    assert "does not exist" in res.stderr
    # A wrong inventory variable: the role's preflight names it, and no fact is made up.
    inv = tmp_path / "inv"
    shutil.copytree(REPO / "inventory" / "lab", inv, symlinks=True)
    settings = inv / "group_vars" / "all" / "simrs.yml"
    settings.write_text(
        settings.read_text().replace("simrs_service_ip: 198.18.0.10", "simrs_service_ip: 198.18.0")
    )
    res = simrs("-i", str(inv), "incident", "open", "--reporter", "kasir-01")
    assert res.returncode == 2
    assert "the inventory needs fixing before anything runs" in res.stderr
    assert "simrs_service_ip (simrs-primary): '198.18.0' is not an IPv4 address" in res.stderr
    # Checked before anything is journaled: no incident was opened to block the next one.
    journal = home / "journal.sqlite"
    assert not journal.exists() or Journal(journal).incidents() == []
    res = simrs("-i", str(inv), "incident", "status", "--json")
    assert res.returncode == 2
    assert "simrs_service_ip" in res.stderr


def test_an_unreachable_pc_is_reported_not_a_crash(home, healed):
    subprocess.run(["podman", "stop", "-t", "0", "farmasi-01"], check=True, capture_output=True)
    rc, view, err = open_incident()
    assert rc == 3, err  # a person must look at that PC
    assert view["verdict"] == "CLIENT_LOCAL"
    assert view["failing"] == ["farmasi-01"]
    assert "unreachable" in view["evidence"]["farmasi-01"]
    assert view["phase"] == "ESCALATED"
    assert simrs("incident", "close", view["id"], "--cause", "farmasi PC was switched off").returncode == 0
