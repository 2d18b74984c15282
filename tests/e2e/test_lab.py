"""The built-in hospital behaves like one: clients reach the SIMRS through the service IP, and the
faults the SOP must handle really break it, visibly and boundedly, and heal."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from orchestrator.lab import lab as lab_mod
from tests.e2e.conftest import clients, simrs, status

CLIENTS = ["kasir-01", "pendaftaran-01", "farmasi-01"]


def probe(host: str) -> tuple[dict, float]:
    """The client's own SIMRS check, timed from outside."""
    start = time.monotonic()
    res = subprocess.run(
        ["podman", "exec", host, "simrs-probe", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return json.loads(res.stdout), time.monotonic() - start


def test_every_client_reaches_the_simrs_through_the_service_ip(lab):
    data = status()
    assert data["service_ip_owners"] == ["simrs-primary"]
    hosts = {h["name"]: h for h in data["hosts"]}
    assert hosts["simrs-standby"]["state"] == "off"  # a cold standby
    assert data["service_ip"] in hosts["simrs-primary"]["ips"]
    for name in CLIENTS:
        result, _ = probe(name)
        assert result["ok"], result
        assert result["address"] == data["service_ip"]
        assert result["served_by"] == "simrs-primary"
        assert [c["name"] for c in result["checks"]] == ["resolve", "tcp_db", "login", "web"]


def test_seeded_patients_are_in_the_database(lab):
    res = subprocess.run(
        [
            "podman",
            "exec",
            "simrs-primary",
            "mariadb",
            "-N",
            "-e",
            "SELECT COUNT(*) FROM sik.pasien; SELECT COUNT(*) FROM sik.reg_periksa",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert res.stdout.split() == ["500", "1000"]


def test_primary_off_fails_every_client_within_5_seconds_and_heals(lab):
    res = simrs("lab", "break", "primary-off")
    assert res.returncode == 0, res.stderr
    try:
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(probe, CLIENTS))
        for result, seconds in results:
            assert not result["ok"]
            assert result["failed"] == "tcp_db"
            assert seconds < 5, f"a dead server must be reported within 5 s, took {seconds:.1f}"
        data = status()
        assert data["service_ip_owners"] == []
        assert not any(c["reaches_simrs"] for c in clients(data).values())
        assert "primary-off" in data["faults"]
    finally:
        healed = simrs("lab", "heal", "primary-off")
    assert healed.returncode == 0, healed.stderr
    data = status()
    assert all(c["reaches_simrs"] for c in clients(data).values())
    assert data["service_ip_owners"] == ["simrs-primary"]
    assert data["faults"] == {}


def test_client_net_breaks_only_that_client(lab):
    for mode, failing_check in (("route", "tcp_db"), ("dns", "resolve"), ("address", "tcp_db")):
        res = simrs("lab", "break", "client-net", "kasir-01", "--mode", mode)
        assert res.returncode == 0, res.stderr
        try:
            reach = clients(status())
            assert not reach["kasir-01"]["reaches_simrs"]
            assert reach["kasir-01"]["failed_check"] == failing_check
            assert reach["pendaftaran-01"]["reaches_simrs"]
            assert reach["farmasi-01"]["reaches_simrs"]
        finally:
            assert simrs("lab", "heal", "client-net", "kasir-01").returncode == 0
        assert probe("kasir-01")[0]["ok"]


def test_db_crash_keeps_the_host_up_but_not_the_simrs(lab):
    assert simrs("lab", "break", "db-crash").returncode == 0
    try:
        result, _ = probe("farmasi-01")
        assert not result["ok"]
        assert "refused" in result["checks"][1]["detail"].lower()
        web = next(c for c in result["checks"] if c["name"] == "web")
        assert "503" in web["detail"]  # the web app is up and says the database is not
    finally:
        assert simrs("lab", "heal", "db-crash").returncode == 0
    assert probe("farmasi-01")[0]["ok"]


def test_disk_full_is_a_real_full_filesystem_and_blocks_writes(lab):
    assert simrs("lab", "break", "disk-full").returncode == 0
    try:
        df = subprocess.run(
            ["podman", "exec", "simrs-primary", "df", "--output=avail", "-B1", "/data"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert int(df.stdout.split()[-1]) == 0
        result, seconds = probe("kasir-01")
        assert not result["ok"]
        assert result["failed"] == "login"  # Khanza's login writes a record: it cannot
        assert seconds < 10
    finally:
        healed = simrs("lab", "heal", "disk-full", timeout=300)
    assert healed.returncode == 0, healed.stderr
    assert probe("kasir-01")[0]["ok"]


def test_workload_registers_visits_through_the_service_ip(lab):
    assert simrs("lab", "workload", "start", "--interval", "0.1").returncode == 0
    time.sleep(3)
    assert simrs("lab", "workload", "stop").returncode == 0
    res = simrs("lab", "workload", "status", "--json")
    summary = json.loads(res.stdout)
    assert summary["committed"] >= 5
    assert summary["last_committed"]["server"] == "simrs-primary"
    last = summary["last_committed"]["no_rawat"]
    row = subprocess.run(
        [
            "podman",
            "exec",
            "simrs-primary",
            "mariadb",
            "-N",
            "-e",
            f"SELECT COUNT(*) FROM sik.reg_periksa WHERE no_rawat = '{last}'",  # noqa: S608 (our own value)
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert row.stdout.strip() == "1"


def test_backup_corrupt_flips_bytes_and_heal_restores_them(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMRS_HOME", str(tmp_path / "simrs"))
    spec_dir = json.loads(simrs("lab", "status", "--json").stdout)
    assert spec_dir["faults"] == {}
    res = simrs("backup", "run", "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    data_file = json.loads(res.stdout)["path"] + "/data.sql.zst.age"  # the lab encrypts to its age key

    def digest() -> str:
        return subprocess.run(
            ["podman", "exec", "simrs-primary", "sha256sum", data_file],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[0]

    before = digest()
    assert simrs("lab", "break", "backup-corrupt").returncode == 0
    assert digest() != before  # the newest set's data file, the one a restore would read
    test_zst = subprocess.run(
        ["podman", "exec", "simrs-primary", "zstd", "-t", "-q", data_file], capture_output=True, check=False
    )
    assert test_zst.returncode != 0
    assert simrs("lab", "heal", "backup-corrupt").returncode == 0
    assert digest() == before


def test_bad_input_is_refused_with_exit_code_2(lab):
    cases = [
        (("lab", "up"), "already up"),
        (("lab", "break", "meteor"), "unknown fault 'meteor'"),
        (("lab", "break", "client-net", "simrs-primary"), "not a client PC"),
        (("lab", "heal", "db-crash"), "db-crash is not broken"),
    ]
    for args, message in cases:
        res = simrs(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr
    assert status()["faults"] == {}


def test_external_disk_can_move_from_primary_to_standby(lab):
    def sees(host: str) -> bool:
        res = subprocess.run(["podman", "exec", host, "test", "-e", "/media/simrs-backup/moved"], check=False)
        return res.returncode == 0

    subprocess.run(
        ["podman", "exec", "simrs-primary", "sh", "-c", "echo x > /media/simrs-backup/moved"], check=True
    )
    lab_mod.detach_backup_disk("simrs-primary")
    assert not sees("simrs-primary")
    lab_mod.detach_backup_disk("simrs-standby")
    lab_mod.power_on("simrs-standby")
    try:
        assert not sees("simrs-standby")
        lab_mod.attach_backup_disk("simrs-standby")
        assert sees("simrs-standby")  # the same disk, with what the primary wrote
        label = subprocess.run(
            ["blkid", "-s", "LABEL", "-o", "value", str(lab_mod.paths.state_dir() / "backup-disk.img")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert label == "SIMRS-BACKUP"
        lab_mod.detach_backup_disk("simrs-standby")
        assert not sees("simrs-standby")
    finally:
        subprocess.run(["podman", "stop", "-t", "5", "simrs-standby"], check=True, capture_output=True)
        lab_mod.attach_backup_disk("simrs-primary")
        lab_mod.attach_backup_disk("simrs-standby")
    assert sees("simrs-primary")
    subprocess.run(["podman", "exec", "simrs-primary", "rm", "/media/simrs-backup/moved"], check=True)
    assert status()["hosts"][1]["state"] == "off"
