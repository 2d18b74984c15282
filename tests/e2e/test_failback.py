"""Issue 13 end to end: the failback to the repaired primary with nothing lost, in the lab.

Folded into test_failover's first test, which already ends with the hospital on the standby and
the registration workload running (a lab up and a failover less in CI): check_failback_with_the_data
runs there. What is checked is the hospital itself: the workload's own record of every visit it
committed on the standby against the primary's rows, the per-table comparison, and who holds the
service IP, sampled every 200 ms from the servers' own network namespaces."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from orchestrator.failback import FAILBACK_STEPS
from orchestrator.journal import Journal
from orchestrator.lab import lab as lab_mod
from tests.e2e.conftest import clients, simrs, simrs_json, status

SERVERS = ("simrs-primary", "simrs-standby")


def service_ip() -> str:
    return str(status()["service_ip"])


class IpSampler:
    """Who holds the service IP, every 200 ms: `ip addr` in each server's network namespace
    (nsenter from the host: milliseconds, where a podman exec would take a good part of the 200)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.samples: list[tuple[float, list[str]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def pid(self, host: str) -> str | None:
        res = subprocess.run(
            ["podman", "inspect", "-f", "{{.State.Pid}}", host], capture_output=True, text=True, check=False
        )
        pid = res.stdout.strip()
        return pid if res.returncode == 0 and pid not in ("", "0") else None

    def holds(self, pid: str | None) -> bool:
        if pid is None:
            return False
        res = subprocess.run(
            ["nsenter", "-t", pid, "-n", "ip", "-o", "-4", "addr", "show"],
            capture_output=True,
            text=True,
            check=False,
        )
        return f" {self.address}/" in res.stdout

    def run(self) -> None:
        pids = {h: self.pid(h) for h in SERVERS}
        refreshed = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - refreshed > 5:  # a server switched off (the standby back to cold)
                pids = {h: self.pid(h) for h in SERVERS}
                refreshed = time.monotonic()
            self.samples.append((time.time(), [h for h in SERVERS if self.holds(pids[h])]))
            self.stop.wait(0.2)

    def __enter__(self) -> IpSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def mariadb(host: str, query: str) -> list[str]:
    res = subprocess.run(
        ["podman", "exec", host, "mariadb", "-N", "-B", "-e", query],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in res.stdout.splitlines() if line]


def hosts_state() -> dict:
    """What a refusal or a dry run must leave as it was."""
    return {
        "owners": status()["service_ip_owners"],
        "replica": mariadb("simrs-primary", "SHOW SLAVE STATUS"),
        "primary_visits": mariadb("simrs-primary", "SELECT COUNT(*) FROM sik.reg_periksa"),
        "standby_read_only": mariadb("simrs-standby", "SELECT @@read_only"),
        "standby_accounts": mariadb("simrs-standby", "SELECT user FROM mysql.user WHERE user = 'simrs_repl'"),
    }


def check_refusals_change_nothing() -> None:
    """The primary came back with visits the failover could not restore: the failback refuses
    (exit 2, what differs shown); the dry run says the same and changes nothing."""
    assert status()["service_ip_owners"] == ["simrs-standby"]
    res = simrs("failback", "--yes", timeout=600)  # it starts the primary's MariaDB (no IP) to look
    assert res.returncode == 2, res.stderr
    assert "--discard-primary-data" in res.stderr
    assert "visit(s) registered after" in res.stderr
    before = hosts_state()
    assert before["owners"] == ["simrs-standby"]
    assert before["replica"] == []
    assert before["standby_read_only"] == ["0"]
    assert before["standby_accounts"] == []
    rc, plan, err = simrs_json("failback", "--dry-run", timeout=600)
    assert rc == 1, err
    assert plan["seed"]["source"] == "simrs-standby"
    assert plan["seed"]["tables"] > 0
    assert "CHECKSUM TABLE" in plan["compared"]
    assert plan["primary_newer"]["count"] > 0, plan
    assert "--discard-primary-data" in plan["refusal"]
    assert "expected_freeze" in plan
    assert hosts_state() == before


def check_failback_with_the_data(home: Path, incident: str) -> dict:
    """The hospital runs on the standby, the workload registering visits there, the repaired
    primary on and silent (it came back with the visits the failover could not restore)."""
    check_refusals_change_nothing()
    time.sleep(3)  # more visits on the standby
    with IpSampler(service_ip()) as sampler:
        began = time.time()
        rc, facts, err = simrs_json("failback", "--yes", "--discard-primary-data", timeout=1200)
        took = time.time() - began
        time.sleep(3)  # the workload registers on the primary now
    assert rc == 0, err
    assert facts["ok"], facts
    assert facts["served_by"] == "simrs-primary"
    assert facts["comparison"]["same"], facts["comparison"]
    assert facts["comparison"]["tables"] > 0
    assert facts["comparison"]["differ"] == []
    assert facts["freeze_seconds"] is not None
    assert facts["freeze_seconds"] < 30, facts
    assert [s["step"] for s in facts["steps"] if s["ok"]] == list(FAILBACK_STEPS)
    # Never two hosts holding the service IP at any 200 ms sample: the standby, then the primary.
    assert len(sampler.samples) > took * 2, len(sampler.samples)
    two = [s for s in sampler.samples if len(s[1]) > 1]
    assert not two, two[:5]
    owners = [tuple(s[1]) for s in sampler.samples]
    assert owners[0] == ("simrs-standby",)
    assert owners[-1] == ("simrs-primary",)
    check_the_hospital_after(home, incident, began)
    print(json.dumps({"freeze_seconds": facts["freeze_seconds"], "steps": facts["steps"], "took": took}))
    return facts


def check_the_hospital_after(home: Path, incident: str, began: float) -> None:
    data = status()
    assert data["service_ip_owners"] == ["simrs-primary"]
    assert {c.get("served_by") for c in clients(data).values()} == {"simrs-primary"}
    assert lab_mod.container_state("simrs-standby") != "running"  # back to cold
    assert mariadb("simrs-primary", "SHOW SLAVE STATUS") == []  # replication removed

    # Every visit the workload committed on the standby is on the primary (its own record against
    # the primary's rows); the restored ones too (the comparison covered every table).
    record = [r for r in lab_mod.workload_record(lab_mod.LabSpec()) if "no_rawat" in r]
    on_standby = {r["no_rawat"] for r in record if r.get("server") == "simrs-standby"}
    assert on_standby, "the workload committed nothing on the standby"
    rows = set(mariadb("simrs-primary", "SELECT no_rawat FROM sik.reg_periksa"))
    assert on_standby <= rows, sorted(on_standby - rows)[:10]
    assert [r for r in record if r.get("server") == "simrs-primary" and r["t"] > began], "no visit after"

    # Journaled step by step; the report has the failback section; the units were told.
    events = Journal(home / "journal.sqlite").events(incident)
    steps = [e.data["step"] for e in events if e.kind == "failback_step"]
    assert steps == list(FAILBACK_STEPS), steps
    res = simrs("report", incident, "--lang", "en", "--format", "md", "-o", str(home / "fb.en.md"))
    assert res.returncode == 0, res.stderr
    text = (home / "fb.en.md").read_text()
    assert "Write freeze" in text, text[-2000:]
    sent = [p["json"]["event"] for p in lab_mod.inbox()["webhook"] if p.get("json")]
    assert "failback_freeze" in sent
    assert "back_on_main" in sent
