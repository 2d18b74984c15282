"""SOP 4b end to end in the lab: the real CLI, real Ansible, real containers, real ARP.

Every test starts from a fresh lab (the one before it may have left the standby serving) and
leaves a fresh one behind. Each has its own journal (SIMRS_HOME). What is checked is the hospital
itself: who answers for the service IP, which server each PC's SIMRS client is served by, the
visits in the restored data against the registration desk's own record."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from orchestrator import procedure
from orchestrator.ansible import AnsibleGateway, PlayResult
from orchestrator.journal import Journal
from orchestrator.lab import lab as lab_mod
from orchestrator.lab import paths, podman
from orchestrator.runs import process_start
from orchestrator.secrets import secret_values
from tests.e2e.conftest import REPO, SIMRS, clients, fresh_lab, lab_left_dirty, simrs, simrs_json, status
from tests.e2e.test_failback import check_failback_with_the_data


@pytest.fixture
def fresh(lab):
    """A fresh lab for this test; the next test that needs the lab gets a fresh one first."""
    fresh_lab()
    yield
    lab_left_dirty()


def play(name: str, runs: Path, **extravars) -> PlayResult:
    """A playbook through the project's own gateway (as `simrs` runs them), against the lab."""
    gateway = AnsibleGateway(Path(status()["inventory"]), runs, envvars=podman.extra_env())
    result = gateway.run(name, extravars=extravars, timeout=900)
    assert result.ok, f"{name}: {result.explanation}"
    return result


def workload_record() -> list[dict]:
    return [r for r in lab_mod.workload_record(lab_mod.LabSpec()) if "no_rawat" in r]


def assert_no_half_restore() -> None:
    """A restore that was cut off (SIGKILL, Ctrl-C) left no scratch database on the standby."""
    dbs = subprocess.run(
        ["podman", "exec", "simrs-standby", "mariadb", "-N", "-e", "SHOW DATABASES"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [d for d in dbs if "__restore" in d], dbs


def served_by() -> dict[str, str | None]:
    return {name: c.get("served_by") for name, c in clients(status()).items()}


def check_rpo_against_the_desk_record(
    view: dict, fo: dict, shipping: tuple[float, float], outage_at: float
) -> None:
    # The restored data against the desk's own record: every visit committed before the binlogs
    # were shipped is there; only visits of the last shipping interval are lost.
    record = workload_record()
    last = fo["last_visit"]["no_rawat"]
    before_outage = [r for r in record if r["t"] < outage_at and r.get("server") == "simrs-primary"]
    lost = [r for r in before_outage if r["no_rawat"] > last]
    kept = [r for r in before_outage if r["no_rawat"] <= last]
    assert kept, "nothing of the workload was restored"
    assert all(r["t"] >= shipping[0] - 1.5 for r in lost), "a visit shipped before the outage was lost"
    assert all(r["t"] <= shipping[1] + 1.5 for r in kept), "a visit never shipped was restored?"
    assert lost, "the visits after the last shipping must be missing (no log left the dead server)"
    # The reported RPO is the earliest evidence of the outage (the report that opened the incident)
    # against the newest restored visit (jam_reg: 1 s steps): an upper bound of the true loss.
    last_t = next(r["t"] for r in record if r["no_rawat"] == last)
    assert abs((view["opened_at"] - last_t) - fo["rpo_seconds"]) <= 2.5
    assert fo["rpo_seconds"] >= outage_at - last_t - 2.5
    # Then the desk types the lost visits back in, and the ledger shows the SIMRS's own count.
    check_the_simrs_counts_the_paper_records_typed_in(view["id"], outage_at)


def check_the_simrs_counts_the_paper_records_typed_in(incident: str, outage_at: float) -> None:
    """Issue 14.1's last sentence: the ledger shows the SIMRS's own count of the range's visits typed
    in afterwards. The desk types in, on the standby, the visits the outage lost (the desk's own
    record has them) and three registered on paper; the count comes from a real query on the
    serving database (admin_check.yml through the service IP). The workload's own visits that the
    standby took before it was verified are in the range too: counted from the desk's record."""
    rc, before, err = simrs_json("incident", "backfill", incident)
    assert rc == 0, err
    assert before["units"], "no unit was sent to paper"
    start, end = before["units"][0]["range_from"], before["units"][0]["range_to"]
    assert before["simrs_count"]["count"] is not None, before["simrs_count"]
    record = workload_record()
    lost = [r["t"] for r in record if r.get("server") == "simrs-primary" and start + 1.5 < r["t"] < outage_at]
    paper = [outage_at + (end - outage_at) * k / 4 for k in (1, 2, 3)]
    typed = [int(t) for t in lost + paper if start + 1.5 < t < end - 1.5]
    assert len(typed) >= 3
    rows = ",".join(
        f"('9{i:02d}', CONCAT(DATE_FORMAT(FROM_UNIXTIME({t}), '%Y/%m/%d/'), '9{i:05d}'),"
        f" DATE(FROM_UNIXTIME({t})), TIME(FROM_UNIXTIME({t})), 'D0001', @rm, 'U0001', '-', 15000,"
        " 'Sudah', 'Lama', 'Ralan', 'UMU', 'Sudah Bayar')"
        for i, t in enumerate(typed)
    )
    sql = f"SET @rm = (SELECT MIN(no_rkm_medis) FROM pasien); INSERT INTO reg_periksa VALUES {rows};"  # noqa: S608
    podman.run("exec", "simrs-standby", "mariadb", "sik", "-e", sql)
    rc, after, err = simrs_json("incident", "backfill", incident)
    assert rc == 0, err
    counted = after["simrs_count"]
    assert counted["table"] == "reg_periksa"
    assert counted["served_by"] == "simrs-standby"
    # The standby's own visits before it was verified: between the strict count (a second inside
    # the range's ends: jam_reg holds whole seconds) and the loose one. The desk records a visit when
    # its commit returns, which on a busy machine is seconds after the server stamped jam_reg (the
    # CI rehearsal counted 2 more than a 1-second margin allowed), so the loose count takes 5 s.
    live = [r["t"] for r in record if r.get("server") == "simrs-standby"]
    strict = sum(1 for t in live if start + 1 < t <= end - 1)
    loose = sum(1 for t in live if start - 5 < t <= end + 5)
    assert counted["count"] - before["simrs_count"]["count"] == len(typed), (counted, before)
    assert len(typed) + strict <= counted["count"] <= len(typed) + loose, (counted, strict, loose)
    res = simrs("incident", "backfill", incident)
    assert f"the SIMRS itself holds {counted['count']} visits (reg_periksa)" in res.stdout


def check_the_old_primary_comes_back_without_the_ip(home: Path, incident: str) -> None:
    # The old primary comes back: it must not take the service IP; the guard says what it saw and did.
    assert simrs("lab", "heal", "primary-off", timeout=300).returncode == 0
    assert status()["service_ip_owners"] == ["simrs-standby"]
    res = simrs("guard", "--json", timeout=300)
    assert res.returncode == 0, res.stderr
    guard = json.loads(res.stdout)
    assert guard["incident"] == incident
    assert guard["owners"] == ["simrs-standby"]
    primary = guard["servers"]["simrs-primary"]
    assert primary["answers"]
    assert not primary["holds_service_ip"]
    assert primary["service_ip_unit"] == "failed"  # its boot-time duplicate check refused the address
    assert "stopped the SIMRS (not the owner)" in primary["done"]
    entry = [e for e in Journal(home / "journal.sqlite").events(incident) if e.kind == "ip_guard"]
    assert entry
    assert entry[-1].data["owners"] == ["simrs-standby"]
    assert set(served_by().values()) == {"simrs-standby"}


PS_SNAPSHOTS = "/run/e2e-ps-snapshots.txt"


def start_ps_snapshots(host: str) -> None:
    """`ps` with every process's command line and environment (BSD e), about fifty times a second,
    on the host itself (a podman exec per sample would miss a short-lived process), until stopped."""
    loop = f"echo $$ > {PS_SNAPSHOTS}.pid; while :; do ps axeww -o pid,args; echo ----; sleep 0.02; done"
    podman.run("exec", "-d", host, "sh", "-c", f"{loop} > {PS_SNAPSHOTS} 2>&1")


def stop_ps_snapshots(host: str, dest: Path) -> str:
    """Stop the sampler and keep what it saw in dest (a file the run wrote, grepped with the rest)."""
    podman.run("exec", host, "sh", "-c", f"kill $(cat {PS_SNAPSHOTS}.pid)", check=False)
    text = subprocess.run(
        ["podman", "exec", host, "cat", PS_SNAPSHOTS], capture_output=True, text=True, check=True
    ).stdout
    dest.write_text(text)
    return text


def files_the_run_wrote(home: Path, since: float) -> list[Path]:
    """Everything this test's run wrote on the admin machine: its SIMRS_HOME (the journal with its
    WAL and shared memory, the runner artifacts of every playbook, the reports, the ps snapshots),
    and what it wrote in the lab's state since it began (the inbox of the message gateway and mail
    server, the receivers' and the BMC's logs, the external disk's sets); not the disk images (the
    hosts' own filesystems), nor what `lab up` wrote before (the lab's own configuration)."""
    state = paths.state_dir()
    roots = [
        home,
        *(p for p in state.iterdir() if p.name not in ("mnt", "attach") and not p.name.endswith(".img")),
    ]
    roots.append(state / "mnt" / "backup-disk")
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found += [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return [p for p in found if p.is_relative_to(home) or p.stat().st_mtime >= since]


def check_no_secret_anywhere(home: Path, since: float, ps_text: str, incident: str) -> None:
    """Issue 18.4: no lab secret (passwords, the webhook token, the backup private key) in any file
    the run wrote (the incident's reports included), nor in any command line or environment on the
    standby while it restored."""
    for lang, fmt in (("id", "md"), ("en", "html")):
        out = str(home / f"report.{lang}.{fmt}")
        res = simrs("report", incident, "--lang", lang, "--format", fmt, "-o", out)
        assert res.returncode == 0, res.stderr
    # The lab's own inventory: the default lab's (generated) holds its BMCs' password too.
    inventory = AnsibleGateway(
        Path(status()["inventory"]), home / "inv-runs", envvars=podman.extra_env()
    ).inventory()
    secrets = {s for s in secret_values(inventory) if len(s) >= 8}
    private = [s for s in secrets if s.startswith("AGE-SECRET-KEY-")]
    assert private, "the lab's backup private key is not in its inventory: is backup_key.yml made by lab up?"
    assert any("webhook" in s for s in secrets), secrets
    files = files_the_run_wrote(home, since)
    assert any(p.name == "journal.sqlite" for p in files)
    assert any(p.parent.name == "artifacts" or "artifacts" in p.parts for p in files), "no runner artifacts"
    assert any(p.parent.name == "inbox" for p in files), "no inbox"
    hits = []
    for path in files:
        data = path.read_bytes()
        hits += [f"{path}: {name}" for name, s in enumerate(sorted(secrets)) if s.encode() in data]
    assert hits == [], (
        f"{len(hits)} secret(s) in files the run wrote (secret index shown, not the value): {hits[:10]}"
    )
    # The snapshots ran while the restore read the set: a lab set is small, so its decrypt (age) and
    # unpack live for milliseconds; seen by their command line or as a process just ending.
    seen = re.findall(
        r"age --decrypt --identity /dev/fd/|\[age\]|\bzstd -dc\b|mariadb-binlog|mariadb --batch", ps_text
    )
    assert seen, "the snapshots never saw the restore (age, zstd, mariadb-binlog or the load)"
    assert not [i for i, s in enumerate(sorted(secrets)) if s in ps_text]


def test_failover_restores_the_last_good_backup_replays_binlogs_and_never_shares_the_ip(home, fresh):
    """Also issue 18.4, at no extra lab run: every file this run wrote and `ps` on the standby while
    it restores hold no lab secret (check_no_secret_anywhere); the sets are encrypted to the lab's
    age key, so the failover restores with the private key."""
    began = time.time()
    runs = home / "e2e-runs"
    good = play("backup", runs).data["simrs-primary"]["set"]
    # Verified, so the retention (one set a day) keeps it when the next backup of the day is taken.
    play("backup_verify", runs)
    assert simrs("lab", "workload", "start").returncode == 0
    time.sleep(4)
    newest = play("backup", runs).data["simrs-primary"]["set"]
    assert newest != good
    assert simrs("lab", "break", "backup-corrupt").returncode == 0  # the newest set is damaged
    time.sleep(4)
    ship_started = time.time()
    play("binlog_ship", runs)
    shipped_at = time.time()  # the logs were flushed and copied at some moment in between
    time.sleep(3)
    assert simrs("lab", "break", "primary-off").returncode == 0
    outage_at = time.time()
    assert simrs("lab", "break", "disk-missing").returncode == 0  # and nobody plugged the disk in

    rc, view, err = simrs_json(
        "incident", "open", "--reporter", "kasir-01", "--window", "20s", "--policy", "auto"
    )
    assert rc == 3, err  # stopped, waiting for a person
    assert view["phase"] == "FAILOVER"
    assert view["standby"]["state"] == "not_ready"  # the pre-staging could not restore either
    blocked = view["failover"]["blocked"]
    assert blocked["step"] == "restore"
    assert "disk" in blocked["detail"].lower()
    assert view["failover"]["done"] == ["fence", "power_on"]
    assert "simrs-standby" not in served_by().values()

    assert simrs("lab", "heal", "disk-missing").returncode == 0
    start_ps_snapshots("simrs-standby")  # powered on by the failover above; it restores now
    rc, view, err = simrs_json("incident", "resume", timeout=1200)
    ps_text = stop_ps_snapshots("simrs-standby", home / "ps-snapshots-standby.txt")
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    fo = view["failover"]
    assert fo["done"] == list(procedure.FAILOVER_STEPS)
    # The corrupt newest set was skipped, loudly; the good one restored; the binlogs replayed.
    assert fo["restored_set"] == good
    assert [b["set"] for b in fo["skipped_bad"]] == [newest]
    assert fo["rpo_anchor"]["source"] == "binlog"

    check_rpo_against_the_desk_record(view, fo, (ship_started, shipped_at), outage_at)

    # Every PC's own SIMRS client is served by the standby through the service IP.
    data = status()
    assert data["service_ip_owners"] == ["simrs-standby"]
    assert set(served_by().values()) == {"simrs-standby"}
    # Users were told, on every channel.
    events = [p["json"]["event"] for p in lab_mod.inbox()["webhook"] if p.get("json")]
    assert events.count("restored_on_standby") == 1

    # failover.yml a second time changes nothing.
    again = play("failover", runs)
    assert sum(again.changed.values()) == 0, again.changed

    check_the_old_primary_comes_back_without_the_ip(home, view["id"])
    check_failback_with_the_data(home, view["id"])  # issue 13 (tests/e2e/test_failback.py)
    simrs("lab", "workload", "stop")
    check_no_secret_anywhere(home, began, ps_text, view["id"])


def test_killed_at_every_failover_step_and_a_dead_standby_still_end_verified(home, fresh):
    runs = home / "e2e-runs"
    play("backup", runs)
    assert simrs("lab", "break", "primary-off").returncode == 0
    assert simrs("lab", "break", "standby-dead").returncode == 0

    # The standby does not come up: the failover stops at power_on and says so.
    rc, view, err = simrs_json(
        "incident", "open", "--reporter", "kasir-01", "--window", "10s", "--policy", "auto", "--no-prestage"
    )
    assert rc == 3, err
    assert view["failover"]["blocked"]["step"] == "power_on"
    assert "simrs-standby" in view["failover"]["blocked"]["detail"]
    incident = view["id"]
    assert simrs("lab", "heal", "standby-dead").returncode == 0

    # Then the orchestrator is killed (SIGKILL) while each remaining step runs, and resumed.
    journal = Journal(home / "journal.sqlite")
    env = {**os.environ, "SIMRS_HOME": str(home)}
    killed_at: list[str] = []
    orphans: list[dict] = []
    for step in ("power_on", "restore", "ip_takeover", "start", "verify"):
        inc = procedure.replay(incident, journal.events(incident))
        if step in inc.failover_done:
            continue
        proc = subprocess.Popen(
            [SIMRS, "incident", "resume", incident],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            started = [e for e in journal.events(incident) if e.kind == "action_started"]
            if (
                started
                and started[-1].data.get("event") == step
                and started[-1].data.get("action") == "failover_step"
            ):
                time.sleep(1.5)  # well inside the step
                break
            time.sleep(0.2)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at.append(step)
            orphans.append(watch_the_orphan(journal, incident, time.time()))
        proc.wait()
        # No pause: the next resume starts at once, beside the killed run's ansible-playbook.
    assert len(killed_at) >= 3, killed_at

    rc, view, err = simrs_json("incident", "resume", incident, timeout=1200)
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert view["failover"]["done"] == list(procedure.FAILOVER_STEPS)
    # No restore on top of a partial one: a restore that was cut off left nothing behind.
    assert_no_half_restore()
    assert status()["service_ip_owners"] == ["simrs-standby"]
    assert set(served_by().values()) == {"simrs-standby"}
    # Never two runs of a step at once: after each kill, the next step began only once the killed
    # run's ansible-playbook had ended.
    events = journal.events(incident)
    for orphan in orphans:
        orphan["thread"].join(timeout=900)
        if orphan["pid"] is None:
            continue
        nxt = [e for e in events if e.kind == "action_started" and e.ts > orphan["killed"]]
        assert nxt, orphan
        assert nxt[0].ts >= orphan["dead"] - 0.5, (orphan, nxt[0])
    # (A killed orchestrator's ansible-playbook ends with it (PR_SET_PDEATHSIG), so the resume
    # usually finds nothing left to wait for; when it does, it journals waited_for_earlier_run.)


def watch_the_orphan(journal: Journal, incident: str, killed: float) -> dict:
    """The killed orchestrator's last ansible-playbook (run_started without run_finished): a
    thread notes when it ends."""
    started = {e.data["pid"]: e for e in journal.events(incident) if e.kind == "run_started"}
    for e in journal.events(incident):
        if e.kind == "run_finished":
            started.pop(e.data.get("pid"), None)
    pid = max(started, key=lambda p: started[p].seq) if started else None
    orphan: dict = {"pid": pid, "killed": killed, "dead": killed}

    def watch() -> None:
        while pid is not None and process_start(pid) is not None:  # a zombie counts as ended
            time.sleep(0.05)
        orphan["dead"] = time.time()

    orphan["thread"] = threading.Thread(target=watch, daemon=True)
    orphan["thread"].start()
    return orphan


def test_dry_run_then_a_repair_that_works_returns_the_prestaged_standby_to_cold(home, fresh):
    runs = home / "e2e-runs"
    play("backup", runs)
    # The plan, in check mode: nothing moves.
    res = simrs("failover", "--dry-run", "--json", timeout=600)
    plan = json.loads(res.stdout)
    assert [s["step"] for s in plan["steps"]] == list(procedure.FAILOVER_STEPS)
    assert plan["steps"][0]["check"]["ok"], plan
    assert any("off" in n for n in plan["notes"])  # the cold standby stays off in check mode
    assert status()["service_ip_owners"] == ["simrs-primary"]
    assert lab_mod.container_state("simrs-primary") == "running"
    assert lab_mod.container_state("simrs-standby") != "running"

    # The database crashes; the repair fixes it while the standby is being pre-staged.
    owners: list[list[str]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            owners.append(status()["service_ip_owners"])
            stop.wait(2)

    watcher = threading.Thread(target=watch, daemon=True)
    assert simrs("lab", "break", "db-crash").returncode == 0
    watcher.start()
    try:
        rc, view, err = simrs_json(
            "incident", "open", "--reporter", "kasir-01", "--window", "5m", "--policy", "approve"
        )
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert rc == 0, err
    assert view["phase"] == "RESOLVED"
    assert view["standby"]["state"] == "cold", view["standby"]
    events = [e.kind for e in Journal(home / "journal.sqlite").events(view["id"])]
    assert "prestage_started" in events
    assert "prestage" in events
    assert events.index("standby_cold") > events.index("prestage")
    assert "failover_step" not in events
    assert lab_mod.container_state("simrs-standby") != "running"
    assert owners
    assert all(o == ["simrs-primary"] for o in owners if o), owners  # the standby never held it
    assert set(served_by().values()) == {"simrs-primary"}
