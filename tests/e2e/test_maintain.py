"""`simrs maintain` end to end in the lab (SOP 5): the real CLI, real Ansible, real containers.

The check reads the real servers (the primary's start time is compared with podman's), the record
is the journal's, and the planned restart really stops and starts the primary's container: the
clients must be served by the primary again afterwards, the units must have been told before and
after, and a restart must not happen while a backup holds the external disk's lock."""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest

from orchestrator.journal import Journal
from orchestrator.lab import lab as lab_mod
from tests.e2e.conftest import clients, simrs, simrs_json, status

LOCK = "/media/simrs-backup/simrs-backups/simrs-primary/.lock"


@pytest.fixture
def healthy(lab):
    simrs("lab", "heal", timeout=300)  # whatever an earlier test left broken (exit 2: nothing was)
    yield
    simrs("lab", "heal", timeout=300)


def started_at(container: str) -> str:
    return subprocess.run(
        ["podman", "container", "inspect", "--format", "{{.State.StartedAt}}", container],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip


def podman_start_epoch(container: str) -> float:
    text = started_at(container)  # e.g. 2026-11-26 08:15:06.123456789 +0000 UTC
    day, clock, offset = text.split()[:3]
    stamp = dt.datetime.strptime(f"{day} {clock.split('.')[0]} {offset}", "%Y-%m-%d %H:%M:%S %z")
    return stamp.timestamp()


def items_of(view: dict) -> dict[tuple[str, str], dict]:
    return {(i["key"], i["host"]): i for i in view["items"]}


def test_check_reads_the_servers_and_says_what_is_due(home, healthy):
    rc, view, err = simrs_json("maintain", "check")
    assert rc == 3, err  # the lab's primary is past its service life: a person must act
    items = items_of(view)
    assert items[("age", "simrs-primary")]["state"] == "due"
    assert "since 2020-09-01" in items[("age", "simrs-primary")]["detail"]
    assert items[("age", "simrs-standby")]["state"] == "ok"
    assert items[("restart", "simrs-primary")]["state"] == "ok"  # the lab was started today
    assert items[("routine_genset", "")]["state"] == "due"  # this journal has no record yet
    assert {m["state"] for (k, _), m in items.items() if k == "disk"} == {"ok"}
    assert items[("backup_encryption", "simrs-primary")]["state"] == "ok"  # the lab encrypts to its age key

    primary = view["servers"]["simrs-primary"]
    assert primary["reachable"] is True
    up_since = dt.datetime.strptime(primary["up_since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs(up_since.timestamp() - podman_start_epoch("simrs-primary")) <= 5
    assert view["servers"]["simrs-standby"]["reachable"] is False  # cold standby: off, not a failure

    kinds = [e.kind for e in Journal(home / "journal.sqlite").events("MAINTENANCE")]
    assert kinds == ["maintenance_check"]


def test_recorded_upkeep_is_what_the_check_counts_from(home, healthy):
    assert simrs("maintain", "log", "genset", "--note", "uji beban 30 menit").returncode == 0
    hundred_days_ago = (dt.date.today() - dt.timedelta(days=100)).isoformat()
    assert simrs("maintain", "log", "ups", "--date", hundred_days_ago).returncode == 0
    assert simrs("maintain", "log", "server").returncode == 0  # both servers

    bad = simrs("maintain", "log", "ups", "--host", "simrs-primary")
    assert bad.returncode == 2
    assert "--host is for `log server`" in bad.stderr
    bad = simrs("maintain", "log", "server", "--date", "2999-01-01")
    assert bad.returncode == 2
    assert "in the future" in bad.stderr

    sent_before = len(lab_mod.inbox()["webhook"])
    rc, view, err = simrs_json("maintain", "check", "--notify")
    assert rc == 3, err  # the primary's age is still due
    assert view["notified"]["ok"], view["notified"]
    told = [p["json"] for p in lab_mod.inbox()["webhook"][sent_before:]]
    assert [t["event"] for t in told] == ["maintenance_due"]
    assert told[0]["incident"]["id"] == view["id"]
    assert "simrs-primary, age: 6." in told[0]["text"]
    assert "routine_ups" in told[0]["text"]
    assert "routine_genset" not in told[0]["text"]  # recorded today: not due
    items = items_of(view)
    assert items[("routine_genset", "")]["state"] == "ok"
    assert items[("routine_ups", "")]["state"] == "due"
    assert "overdue by 10 days" in items[("routine_ups", "")]["action"]
    assert items[("routine_server", "simrs-primary")]["state"] == "ok"
    assert items[("routine_server", "simrs-standby")]["state"] == "ok"


@pytest.fixture
def replugged(healthy):
    """The power role's own `podman start` copies the plugged-in backup disk's mount into the
    container, where the lab's disk-missing fault can no longer unplug it (orchestrator/lab/lab.py
    power_on). Afterwards the primary is started the lab's way, so later tests can unplug it."""
    yield
    subprocess.run(["podman", "stop", "--time", "30", "simrs-primary"], check=False, timeout=120)
    lab_mod.power_on("simrs-primary")
    deadline = time.time() + 180
    while time.time() < deadline:
        served = {c["served_by"] for c in clients(status()).values()}
        if served == {"simrs-primary"}:
            return
        time.sleep(3)
    raise AssertionError(f"the primary did not serve every PC again after its start: {served}")


def test_planned_restart_restarts_tells_the_units_and_verifies(home, replugged):
    before = started_at("simrs-primary")
    sent_before = len(lab_mod.inbox()["webhook"])
    rc, view, err = simrs_json("maintain", "restart", "--now", "--announce", "0")
    assert rc == 0, err
    assert view["ok"], view
    assert view["restarted"]
    assert view["up_since_after"] > view["up_since_before"]
    assert view["verify"]["admin"] is True
    assert view["verify"]["clients"] == {"kasir-01": True, "pendaftaran-01": True, "farmasi-01": True}
    assert started_at("simrs-primary") != before  # podman saw the container stop and start

    data = status()
    assert data["service_ip_owners"] == ["simrs-primary"]
    assert {n: c["served_by"] for n, c in clients(data).items()} == dict.fromkeys(
        ("kasir-01", "pendaftaran-01", "farmasi-01"), "simrs-primary"
    )
    sent = lab_mod.inbox()["webhook"][sent_before:]
    assert [p["json"]["event"] for p in sent] == ["planned_restart", "restored"]
    assert {p["json"]["incident"]["id"] for p in sent} == {view["id"]}

    kinds = [e.kind for e in Journal(home / "journal.sqlite").events(view["id"])]
    assert kinds == ["restart_started", "restart_finished"]


def test_no_restart_while_a_backup_writes_to_the_disk(home, healthy):
    before = started_at("simrs-primary")
    holder = subprocess.Popen(
        ["podman", "exec", "simrs-primary", "sh", "-c",
         f"mkdir -p {LOCK.rsplit('/', 1)[0]} && exec flock --exclusive {LOCK} sleep 120"],
    )  # fmt: skip
    try:
        time.sleep(2)
        rc, view, err = simrs_json("maintain", "restart", "--now", "--announce", "0")
        assert rc == 2, (view, err)
        assert view["refused"]
        assert not view["restarted"]
        assert "writing to the external disk" in view["detail"]
        assert started_at("simrs-primary") == before
    finally:
        holder.kill()
        holder.wait(timeout=60)
        subprocess.run(
            ["podman", "exec", "simrs-primary", "pkill", "-f", "sleep 120"], check=False, timeout=60
        )


def test_no_restart_outside_the_quiet_times_without_now(home, healthy):
    if 1 <= dt.datetime.now().hour < 4:
        pytest.skip("this machine's clock is inside the lab's quiet hours (01:00-04:00)")
    before = started_at("simrs-primary")
    rc, _, err = simrs_json("maintain", "restart", "--announce", "0")
    assert rc == 2
    assert started_at("simrs-primary") == before
    assert "is not a quiet time" in err
    assert "next quiet time starts" in err
